/**
 * Closed-loop load generation and the statistics the benchmarks print.
 * Every run is bounded by its duration; nothing here asserts.
 */
import { call, type Echo } from "../../packages/cli/src/echo/echo.js"

export interface LoadResult {
  readonly calls: number
  readonly failed: number
  readonly seconds: number
  readonly callsPerSecond: number
  readonly p50Ms: number
  readonly p90Ms: number
  readonly p99Ms: number
  /** Answers per replying server name (the echo server answers with its name). */
  readonly byServer: ReadonlyMap<string, number>
}

export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/**
 * Keeps `inFlight` calls running for `durationMs`, choosing the client of
 * each call with `pick` (one client for a channel, a rotation for a naive
 * pool). Returns throughput and latency percentiles.
 */
export const runLoad = async (options: {
  readonly pick: () => Echo
  readonly inFlight: number
  readonly durationMs: number
  readonly delayMs?: number
}): Promise<LoadResult> => {
  const latencies: Array<number> = []
  const byServer = new Map<string, number>()
  let failed = 0
  const started = performance.now()
  const stopAt = started + options.durationMs
  const worker = async () => {
    while (performance.now() < stopAt) {
      const t0 = performance.now()
      try {
        const name = await call(options.pick(), { delayMs: options.delayMs ?? 0, deadlineMs: 30_000 })
        latencies.push(performance.now() - t0)
        byServer.set(name, (byServer.get(name) ?? 0) + 1)
      } catch {
        failed++
      }
    }
  }
  await Promise.all(Array.from({ length: options.inFlight }, worker))
  const seconds = (performance.now() - started) / 1000
  latencies.sort((a, b) => a - b)
  return {
    calls: latencies.length,
    failed,
    seconds,
    callsPerSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p90Ms: percentile(latencies, 90),
    p99Ms: percentile(latencies, 99),
    byServer
  }
}

export const fmt = (value: number, digits = 0): string =>
  Number.isFinite(value) ? value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "n/a"

/** Prints rows as an aligned text table. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n")
}
