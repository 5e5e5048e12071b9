/**
 * npm run bench:grpc — grpc-anchor against plain grpc-js round_robin (one
 * connection per address) and a naive pool (N clients with distinct channel
 * options, rotated by the caller), side by side in one run, servers in
 * separate processes on loopback.
 *
 * Scenario "stream-limited": 1 server allowing 4 concurrent streams per
 * connection, each call taking 1 ms of server time, 200 calls in flight:
 * one connection caps the client at 4 calls at a time; `#4` opens 4.
 * Scenario "no gain possible": 2 servers, no stream limit, no server delay,
 * `#1` each: the same connections as round_robin, so any difference is the
 * policy's own cost.
 *
 * Variants run in alternating rounds and the figures are medians over the
 * rounds: this machine is shared and noisy.
 */
import { startEchoProcess, type EchoProcess } from "../packages/cli/src/echo/echoProcess.js"
import { register } from "../src/main/index.js"
import { fmt, median, runLoad, table, type LoadResult } from "./support/load.js"
import { anchored, naivePool, roundRobin, type Variant } from "./support/variants.js"

register()

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)

export interface ScenarioResult {
  readonly scenario: string
  readonly description: string
  readonly baseline: string
  readonly rows: ReadonlyArray<{ readonly variant: string; readonly median: LoadResult; readonly rounds: ReadonlyArray<LoadResult> }>
  readonly goal: { readonly variant: string; readonly ratio: number; readonly target: number }
}

const runScenario = async (options: {
  readonly scenario: string
  readonly description: string
  readonly variants: ReadonlyArray<Variant>
  readonly inFlight: number
  readonly delayMs: number
  readonly goal: { readonly variant: string; readonly target: number }
}): Promise<ScenarioResult> => {
  const made = options.variants.map((variant) => ({ variant, ...variant.make() }))
  try {
    // Warm up: connect and JIT every variant before measuring.
    for (const m of made) await runLoad({ pick: m.pick, inFlight: options.inFlight, durationMs: 1_000, delayMs: options.delayMs })
    const rounds = new Map<string, Array<LoadResult>>(made.map((m) => [m.variant.name, []]))
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate the order each round so drift on the machine hits every variant alike.
      const order = round % 2 === 0 ? made : [...made].reverse()
      for (const m of order) {
        rounds.get(m.variant.name)!.push(
          await runLoad({ pick: m.pick, inFlight: options.inFlight, durationMs: SECONDS * 1_000, delayMs: options.delayMs })
        )
      }
    }
    const rows = made.map((m) => {
      const results = rounds.get(m.variant.name)!
      const med: LoadResult = {
        calls: median(results.map((r) => r.calls)),
        failed: results.reduce((s, r) => s + r.failed, 0),
        seconds: median(results.map((r) => r.seconds)),
        callsPerSecond: median(results.map((r) => r.callsPerSecond)),
        p50Ms: median(results.map((r) => r.p50Ms)),
        p90Ms: median(results.map((r) => r.p90Ms)),
        p99Ms: median(results.map((r) => r.p99Ms)),
        byServer: new Map()
      }
      return { variant: m.variant.name, median: med, rounds: results }
    })
    const baseline = rows[0]!
    const goalRow = rows.find((r) => r.variant === options.goal.variant)!
    return {
      scenario: options.scenario,
      description: options.description,
      baseline: baseline.variant,
      rows,
      goal: { variant: options.goal.variant, ratio: goalRow.median.callsPerSecond / baseline.median.callsPerSecond, target: options.goal.target }
    }
  } finally {
    for (const m of made) m.close()
  }
}

export const printScenario = (result: ScenarioResult): string => {
  const base = result.rows[0]!.median.callsPerSecond
  const body = table(
    ["variant", "calls/s", "p50 ms", "p99 ms", "failed", `ratio vs ${result.baseline}`],
    result.rows.map((r) => [
      r.variant,
      fmt(r.median.callsPerSecond),
      fmt(r.median.p50Ms, 2),
      fmt(r.median.p99Ms, 2),
      String(r.median.failed),
      `${fmt(r.median.callsPerSecond / base, 2)}x`
    ])
  )
  const verdict = result.goal.ratio >= result.goal.target ? "met" : "NOT met"
  return `${result.scenario}: ${result.description}\n${body}\ngoal: ${result.goal.variant} >= ${result.goal.target}x ${result.baseline}: ${fmt(result.goal.ratio, 2)}x (${verdict})\n`
}

export const runGrpcBench = async (): Promise<ReadonlyArray<ScenarioResult>> => {
  const results: Array<ScenarioResult> = []
  const servers: Array<EchoProcess> = []
  try {
    const limited = await startEchoProcess({ name: "limited", maxStreams: 4 })
    servers.push(limited)
    results.push(
      await runScenario({
        scenario: "stream-limited",
        description: "1 server, max 4 concurrent streams per connection, 1 ms server time per call, 200 calls in flight",
        variants: [roundRobin([limited.port]), anchored([limited.port], 4), naivePool([limited.port], 4)],
        inFlight: 200,
        delayMs: 1,
        goal: { variant: "grpc-anchor #4", target: 1.4 }
      })
    )
    const a = await startEchoProcess({ name: "a" })
    const b = await startEchoProcess({ name: "b" })
    servers.push(a, b)
    results.push(
      await runScenario({
        scenario: "no gain possible",
        description: "2 servers, no stream limit, no server delay, 64 calls in flight, one connection per server in every variant",
        variants: [roundRobin([a.port, b.port]), anchored([a.port, b.port], 1)],
        inFlight: 64,
        delayMs: 0,
        goal: { variant: "grpc-anchor #1", target: 0.97 }
      })
    )
  } finally {
    await Promise.all(servers.map((s) => s.stop()))
  }
  return results
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`bench:grpc — ${ROUNDS} rounds of ${SECONDS} s per variant, medians over rounds, node ${process.version}\n`)
  for (const result of await runGrpcBench()) console.log(printScenario(result))
}
