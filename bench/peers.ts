/**
 * npm run bench:peers — grpc-anchor side by side with its peers, in one run:
 * grpc-js's own channel (pick_first on one address, round_robin on several),
 * grpc-gcp's channel pool (Google's, for grpc-js), N grpc-js clients rotated
 * by the caller, and grpc-anchor (`pass:///...#N`).
 *
 * Every variant is a separate client process (its CPU time is its own), every
 * backend a grpc-js server in its own process (bench/support/peers/server.ts),
 * all on 127.0.0.1. Per scenario, each variant's process is started and warmed
 * up once, then measured in rounds of BENCH_SECONDS, one variant at a time,
 * the order rotated every round so drift on this shared machine hits every
 * variant alike. Figures are medians over rounds; ratios are medians of the
 * per-round ratios.
 *
 * Knobs: BENCH_ROUNDS (default 6), BENCH_SECONDS (default 1.25),
 * BENCH_SCENARIOS (e.g. "a,c"; default all), BENCH_PROFILE=1 to finish with
 * CPU profiles of scenario b's clients (bench/support/peers/profile.ts).
 */
import { loadavg } from "node:os"
import { fmt, median, table } from "./support/load.js"
import { installCleanup } from "./support/peers/children.js"
import { launchClient, type ClientProcess } from "./support/peers/clientProcess.js"
import { printProfiles, runProfiles } from "./support/peers/profile.js"
import { describeServer, startServer, type ServerProcess, type ServerSpec } from "./support/peers/serverProcess.js"
import type { WorkerStats } from "./support/peers/server.js"
import type { ClientRun, VariantSpec } from "./support/peers/spec.js"

const whole = (name: string, fallback: number, min: number, max: number): number => {
  const value = Number(process.env[name] ?? fallback)
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${name} must be a whole number ${min}..${max}, got ${process.env[name]}`)
  return value
}
const ROUNDS = whole("BENCH_ROUNDS", 6, 1, 50)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 1.25)
if (!(SECONDS > 0 && SECONDS <= 60)) throw new Error(`BENCH_SECONDS must be 0 < s <= 60, got ${process.env.BENCH_SECONDS}`)
const WARMUP_MS = 2_000

/** The column a variant belongs to in the summary. */
type Family = "grpc-js" | "grpc-gcp" | "pool" | "anchor"
const FAMILIES: ReadonlyArray<{ readonly family: Family; readonly title: string }> = [
  { family: "grpc-js", title: "grpc-js channel" },
  { family: "grpc-gcp", title: "grpc-gcp pool" },
  { family: "pool", title: "grpc-js clients rotated" },
  { family: "anchor", title: "grpc-anchor" }
]

export interface Scenario {
  readonly key: string
  readonly title: string
  readonly servers: ReadonlyArray<ServerSpec>
  readonly inFlight: number
  /** One variant per family, over the servers' ports. */
  readonly variants: (ports: ReadonlyArray<number>) => ReadonlyArray<VariantSpec>
  /** Why the scenario is set up the way it is (printed under its table). */
  readonly note?: string
}

const one = (ports: ReadonlyArray<number>) => ports[0]!

export const scenarios: ReadonlyArray<Scenario> = [
  {
    key: "a",
    title: "1 server capping 4 streams per connection, 1 ms per call, 200 in flight, N=4",
    servers: [{ name: "capped", maxStreams: 4, delayMs: 1 }],
    inFlight: 200,
    variants: (ports) => [
      { kind: "grpc-js", ports, policy: "pick_first" },
      { kind: "grpc-gcp", ports, policy: "pick_first", maxSize: 4, lowWatermark: 4 },
      { kind: "pool", clients: [0, 1, 2, 3].map(() => [one(ports)]), policy: "pick_first" },
      { kind: "anchor", ports, count: 4 }
    ]
  },
  {
    key: "b",
    title: "same, no delay (CPU-bound), 200 in flight, N=4",
    servers: [{ name: "capped", maxStreams: 4 }],
    inFlight: 200,
    variants: (ports) => [
      { kind: "grpc-js", ports, policy: "pick_first" },
      { kind: "grpc-gcp", ports, policy: "pick_first", maxSize: 4, lowWatermark: 4 },
      { kind: "pool", clients: [0, 1, 2, 3].map(() => [one(ports)]), policy: "pick_first" },
      { kind: "anchor", ports, count: 4 },
      { kind: "anchor", ports, count: 4, metrics: true }
    ],
    note: "'+ metrics': the same client with Metrics.register on an OpenTelemetry SDK provider collecting every second."
  },
  {
    key: "c",
    title: "one port served by 2 node:cluster workers, 0.3 ms CPU per call, 32 in flight, N=2",
    servers: [{ name: "cluster", workers: 2, busyUs: 300 }],
    inFlight: 32,
    variants: (ports) => [
      { kind: "grpc-js", ports, policy: "pick_first" },
      // No stream cap to use as the watermark: inFlight / N lets the pool grow to N channels.
      { kind: "grpc-gcp", ports, policy: "pick_first", maxSize: 2, lowWatermark: 16 },
      { kind: "pool", clients: [[one(ports)], [one(ports)]], policy: "pick_first" },
      { kind: "anchor", ports, count: 2 }
    ],
    note:
      "N=2: the cluster primary hands accepted connections to the workers in turn, so a client's 2 connections " +
      "(opened back to back) land one on each worker; a 3rd and 4th connection add no worker, only more HTTP/2 sessions " +
      "to serve on 2 cores. grpc-gcp's watermark is 32/2 = 16 (no stream cap to use), so its pool grows to 2."
  },
  {
    key: "d",
    title: "2 servers, #1 each, no stream cap, no delay, 64 in flight: no gain possible (overhead)",
    servers: [{ name: "a" }, { name: "b" }],
    inFlight: 64,
    variants: (ports) => [
      { kind: "grpc-js", ports, policy: "round_robin" },
      { kind: "grpc-gcp", ports, policy: "round_robin", maxSize: 1, lowWatermark: 64 },
      { kind: "pool", clients: ports.map((p) => [p]), policy: "pick_first" },
      { kind: "anchor", ports, count: 1 },
      { kind: "anchor", ports, count: 1, metrics: true }
    ],
    note: "Every variant has exactly one connection per server: grpc-gcp is 1 round_robin channel, the rotated pool 1 client per server. " +
      "'+ metrics': the same client with Metrics.register on an OpenTelemetry SDK provider collecting every second."
  },
  {
    key: "e",
    title: "3 servers, one 10x slower (1, 1, 10 ms per call), #1 each, 32 in flight",
    servers: [
      { name: "fast1", delayMs: 1 },
      { name: "fast2", delayMs: 1 },
      { name: "slow", delayMs: 10 }
    ],
    inFlight: 32,
    variants: (ports) => [
      { kind: "grpc-js", ports, policy: "round_robin" },
      { kind: "grpc-gcp", ports, policy: "round_robin", maxSize: 1, lowWatermark: 32 },
      { kind: "pool", clients: ports.map((p) => [p]), policy: "pick_first" },
      { kind: "anchor", ports, count: 1 }
    ],
    note: "One connection per server in every variant. 'share' is each backend's part of the calls (the slow one last)."
  }
]

interface Row {
  readonly name: string
  readonly spec: VariantSpec
  readonly family: Family
  /** Connections the servers accepted while this client started and warmed up. */
  readonly connections: number
  readonly runs: ReadonlyArray<ClientRun>
  /** Per run, each backend's (worker's) part of the calls served in the window. */
  readonly shares: ReadonlyArray<ReadonlyArray<number>>
}

export interface ScenarioResult {
  readonly scenario: Scenario
  readonly rows: ReadonlyArray<Row>
  readonly loadBefore: ReadonlyArray<number>
  readonly loadAfter: ReadonlyArray<number>
}

const snapshot = async (servers: ReadonlyArray<ServerProcess>): Promise<ReadonlyArray<WorkerStats>> =>
  (await Promise.all(servers.map((s) => s.stats()))).flat()

export const runScenario = async (scenario: Scenario): Promise<ScenarioResult> => {
  const loadBefore = loadavg()
  const servers: Array<ServerProcess> = []
  const clients: Array<{ readonly client: ClientProcess; readonly connections: number }> = []
  try {
    servers.push(...(await Promise.all(scenario.servers.map(startServer))))
    const specs = scenario.variants(servers.map((s) => s.port))
    // Every client loads its modules at once; then they connect one at a
    // time, so the connections the servers accept meanwhile are its own.
    const launched = await Promise.allSettled(
      specs.map((spec) => launchClient(spec, { inFlight: scenario.inFlight, delayMs: 0, warmupMs: WARMUP_MS }))
    )
    const failed = launched.find((r) => r.status === "rejected")
    if (failed !== undefined) {
      await Promise.all(launched.map((r) => (r.status === "fulfilled" ? r.value.stop() : undefined)))
      throw failed.reason
    }
    for (const result of launched) {
      const client = (result as PromiseFulfilledResult<ClientProcess>).value
      const before = await snapshot(servers)
      clients.push({ client, connections: Number.NaN })
      await client.start()
      const after = await snapshot(servers)
      clients[clients.length - 1] = { client, connections: after.reduce((sum, w, i) => sum + w.connections - before[i]!.connections, 0) }
    }
    const runs = new Map<string, Array<ClientRun>>(clients.map((c) => [c.client.name, []]))
    const shares = new Map<string, Array<ReadonlyArray<number>>>(clients.map((c) => [c.client.name, []]))
    for (let round = 0; round < ROUNDS; round++) {
      const order = clients.map((_, i) => clients[(i + round) % clients.length]!)
      for (const { client } of order) {
        const before = await snapshot(servers)
        runs.get(client.name)!.push(await client.run(SECONDS * 1_000))
        const after = await snapshot(servers)
        const served = after.map((w, i) => w.calls - before[i]!.calls)
        const total = served.reduce((a, b) => a + b, 0)
        shares.get(client.name)!.push(served.map((n) => (total === 0 ? Number.NaN : n / total)))
      }
    }
    return {
      scenario,
      rows: clients.map(({ client, connections }) => ({
        name: client.name,
        spec: client.spec,
        family: client.spec.kind,
        connections,
        runs: runs.get(client.name)!,
        shares: shares.get(client.name)!
      })),
      loadBefore,
      loadAfter: loadavg()
    }
  } finally {
    await Promise.all(clients.map((c) => c.client.stop()))
    await Promise.all(servers.map((s) => s.stop()))
  }
}

const med = (row: Row, pick: (run: ClientRun) => number) => median(row.runs.map(pick))
/** Median over rounds of row a's figure divided by row b's in the same round. */
const medianRatio = (a: Row, b: Row, pick: (run: ClientRun) => number) => median(a.runs.map((run, i) => pick(run) / pick(b.runs[i]!)))
const cps = (run: ClientRun) => run.callsPerSecond
const cpu = (run: ClientRun) => run.cpuUsPerCall
const loads = (values: ReadonlyArray<number>) => values.map((l) => l.toFixed(2)).join(" ")

/** The peer with the highest median calls/s, and grpc-anchor's medians of per-round ratios to it. */
/** grpc-anchor's row (metrics off), and its row with metrics on when the scenario has one. */
const anchorRows = (rows: ReadonlyArray<Row>) => ({
  anchor: rows.find((r) => r.spec.kind === "anchor" && r.spec.metrics !== true)!,
  metrics: rows.find((r) => r.spec.kind === "anchor" && r.spec.metrics === true)
})

/** Metrics on ÷ off: medians of per-round ratios, with the rounds' range. */
export const metricsCost = (result: ScenarioResult) => {
  const { anchor, metrics } = anchorRows(result.rows)
  if (metrics === undefined) return undefined
  const perRound = (pick: (run: ClientRun) => number) => metrics.runs.map((run, i) => pick(run) / pick(anchor.runs[i]!))
  const range = (values: ReadonlyArray<number>) => [Math.min(...values), Math.max(...values)] as const
  return {
    throughput: median(perRound(cps)),
    throughputRange: range(perRound(cps)),
    cpu: median(perRound(cpu)),
    cpuRange: range(perRound(cpu))
  }
}

export const versusBest = (result: ScenarioResult) => {
  const { anchor } = anchorRows(result.rows)
  const peers = result.rows.filter((r) => r.family !== "anchor")
  const best = peers.reduce((a, b) => (med(b, cps) > med(a, cps) ? b : a))
  const perRound = anchor.runs.map((run, i) => run.callsPerSecond / best.runs[i]!.callsPerSecond)
  return {
    anchor,
    best,
    throughput: median(perRound),
    throughputRange: [Math.min(...perRound), Math.max(...perRound)] as const,
    cpu: medianRatio(anchor, best, cpu)
  }
}

export const printScenario = (result: ScenarioResult): string => {
  const { scenario, rows } = result
  const { anchor } = anchorRows(rows)
  const cost = metricsCost(result)
  const workerCount = rows[0]?.shares[0]?.length ?? 0
  const showShares = scenario.servers.length > 1
  const header = [
    "variant",
    "conns",
    "calls/s",
    "CPU µs/call",
    "p50 ms",
    "p99 ms",
    "failed",
    ...(showShares ? ["share % per backend"] : workerCount > 1 ? ["share % per worker"] : []),
    "anchor ÷ this calls/s",
    "anchor ÷ this CPU/call"
  ]
  const body = rows.map((row) => {
    const shares = Array.from({ length: workerCount }, (_, i) => fmt(100 * median(row.shares.map((s) => s[i]!))))
    return [
      row.name,
      String(row.connections),
      fmt(med(row, cps)),
      fmt(med(row, cpu)),
      fmt(med(row, (r) => r.p50Ms), 2),
      fmt(med(row, (r) => r.p99Ms), 2),
      String(row.runs.reduce((sum, r) => sum + r.failed, 0)),
      ...(showShares || workerCount > 1 ? [shares.join("/")] : []),
      row === anchor ? "-" : `${fmt(medianRatio(anchor, row, cps), 2)}x`,
      row === anchor ? "-" : `${fmt(medianRatio(anchor, row, cpu), 2)}x`
    ]
  })
  const vs = versusBest(result)
  return [
    `(${scenario.key}) ${scenario.title}`,
    `servers: ${scenario.servers.map((s) => `${s.name}: ${describeServer(s)}`).join("; ")}`,
    table(header, body),
    `grpc-anchor vs the best peer (${vs.best.name}): calls/s ${fmt(vs.throughput, 2)}x ` +
      `(median of per-round ratios; rounds ${fmt(vs.throughputRange[0], 2)}..${fmt(vs.throughputRange[1], 2)}), ` +
      `CPU per call ${fmt(vs.cpu, 2)}x — ${vs.throughput >= 1 ? "at or above" : "BELOW"} the best peer`,
    ...(cost === undefined ? [] : [
      `grpc-anchor metrics on ÷ off: calls/s ${fmt(cost.throughput, 3)}x (rounds ${fmt(cost.throughputRange[0], 3)}..${fmt(cost.throughputRange[1], 3)}), ` +
        `CPU per call ${fmt(cost.cpu, 3)}x (rounds ${fmt(cost.cpuRange[0], 3)}..${fmt(cost.cpuRange[1], 3)})`
    ]),
    ...(scenario.note !== undefined ? [`note: ${scenario.note}`] : []),
    `load average before ${loads(result.loadBefore)}, after ${loads(result.loadAfter)}`,
    ""
  ].join("\n")
}

/** A variant's name inside its family's column. */
const shortName = (row: Row): string => {
  const spec = row.spec
  switch (spec.kind) {
    case "grpc-js":
      return spec.policy
    case "grpc-gcp":
      return `max ${spec.maxSize}`
    case "pool":
      return `${spec.clients.length} clients`
    case "anchor":
      return `#${spec.count}`
  }
}

/** The summary as a Markdown table (for the README): calls/s and CPU per call, each peer's ratio to grpc-js's channel. */
export const printSummary = (results: ReadonlyArray<ScenarioResult>): string => {
  const header = ["scenario", ...FAMILIES.map((f) => f.title), "grpc-anchor ÷ best peer (calls/s, CPU/call)"]
  const lines = results.map((result) => {
    const base = result.rows.find((r) => r.family === "grpc-js")!
    const cells = FAMILIES.map(({ family }) => {
      const row = family === "anchor" ? anchorRows(result.rows).anchor : result.rows.find((r) => r.family === family)
      if (row === undefined) return "-"
      const ratio = row === base ? "" : ` (${fmt(medianRatio(row, base, cps), 2)}x)`
      return `${shortName(row)}: ${fmt(med(row, cps))}${ratio}, ${fmt(med(row, cpu))} µs`
    })
    const vs = versusBest(result)
    return [`(${result.scenario.key}) ${result.scenario.title}`, ...cells, `${fmt(vs.throughput, 2)}x, ${fmt(vs.cpu, 2)}x (vs ${vs.best.name})`]
  })
  const row = (cells: ReadonlyArray<string>) => `| ${cells.join(" | ")} |`
  return [row(header), row(header.map(() => "---")), ...lines.map(row)].join("\n")
}

if (import.meta.url === `file://${process.argv[1]}`) {
  installCleanup()
  const only = process.env.BENCH_SCENARIOS?.split(",").map((s) => s.trim())
  const chosen = scenarios.filter((s) => only === undefined || only.includes(s.key))
  const started = Date.now()
  console.log(
    `bench:peers — ${ROUNDS} rounds of ${SECONDS} s per variant (after a ${WARMUP_MS / 1000} s warm-up), order rotated every round; ` +
      `medians over rounds, ratios = medians of per-round ratios; node ${process.version}; load average ${loads(loadavg())} on ${(await import("node:os")).cpus().length} cores\n` +
      `calls/s, p50/p99: the client's closed loop; CPU µs/call: the client process's user+system CPU per call; conns: connections the servers accepted from the client\n`
  )
  const results: Array<ScenarioResult> = []
  for (const scenario of chosen) {
    const result = await runScenario(scenario)
    results.push(result)
    console.log(printScenario(result))
  }
  console.log("summary (median calls/s, median client CPU µs per call; in brackets the median of per-round ratios to grpc-js's own channel):\n")
  console.log(printSummary(results))
  console.log(`\nwhole run ${fmt((Date.now() - started) / 1000)} s; load average at the end ${loads(loadavg())}`)
  if (process.env.BENCH_PROFILE === "1") {
    console.log("\nprofiles of scenario (b)'s clients ...\n")
    console.log(printProfiles(await runProfiles()))
  }
  // Children are stopped; nothing keeps the loop alive, but be explicit.
  process.exit(0)
}
