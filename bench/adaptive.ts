/**
 * node --import tsx bench/adaptive.ts — adaptive connection counts and the
 * least_request pick mode, each against its fixed/round-robin counterpart,
 * side by side in one run. Servers run in child processes of this script
 * (`--server` mode, grpc-js on 127.0.0.1) and are killed when it ends.
 *
 * (a) "4-stream server": 1 server allowing 4 concurrent streams per
 *     connection, 1 ms per call, 200 calls in flight: `#1..8` (told the
 *     limit with grpc_anchor.max_streams_per_connection) against fixed `#4`.
 *     Goal: >= 0.95x the throughput of `#4`. Then a client doing 1 call at a
 *     time on `#1..8` for a few seconds: goal, it uses 1 connection.
 * (b) "heterogeneous": 3 backends, each serving one call at a time from a
 *     FIFO queue (a single-threaded server); two take 1 ms per call, one
 *     10 ms (10x slower, 10x less capacity: a degraded host), 32 calls in
 *     flight: round_robin against `?pick=least_request` and `?pick=ewma`.
 *     Goals: least_request's p99 <= half of round_robin's, its throughput
 *     not lower; ewma's p99 <= least_request's.
 * (c) "slow backend, unlimited concurrency" (issue 18): 3 backends that
 *     serve any number of calls at once, answering after 1, 1 and 10 ms,
 *     12 calls in flight (the client is not CPU-bound): round_robin,
 *     least_request and ewma. Goals: ewma's p90 <= half of round_robin's,
 *     its calls/s not lower; the slow backend's share of calls is printed.
 *
 * Variants run in alternating rounds; figures are medians over rounds, and
 * ratios medians of per-round ratios. Bounded: BENCH_ROUNDS (5) rounds of
 * BENCH_SECONDS (3) s per variant; BENCH_SCENARIOS (e.g. "b,c"; default
 * all). The load average is printed before and after: this 2-core machine
 * is shared.
 */
import * as grpc from "@grpc/grpc-js"
import { fork, type ChildProcess } from "node:child_process"
import * as os from "node:os"
import { fileURLToPath } from "node:url"
import { EchoClient, EchoService, type Echo } from "../packages/cli/src/echo/echo.js"
import { MAX_STREAMS_PER_CONNECTION_OPTION } from "../src/adapters/grpc/AnchorRoundRobin.js"
import { STATS_KEY } from "../src/adapters/grpc/internal/keys.js"
import { makeSink } from "../src/adapters/grpc/internal/stats.js"
import { register } from "../src/main/index.js"
import { fmt, median, runLoad, table, type LoadResult } from "./support/load.js"

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const ONLY = process.env.BENCH_SCENARIOS?.split(",").map((s) => s.trim())
const wanted = (key: string): boolean => ONLY === undefined || ONLY.includes(key)

// ---------------------------------------------------------------------------
// Server mode: `--server NAME SERVICE_MS CONCURRENCY MAX_STREAMS` (0: none)
// ---------------------------------------------------------------------------

const serve = async (name: string, serviceMs: number, concurrency: number, maxStreams: number): Promise<void> => {
  const server = new grpc.Server(maxStreams > 0 ? { "grpc.max_concurrent_streams": maxStreams } : {})
  const reply = Buffer.from(name)
  // At most `concurrency` calls in service; the rest wait in FIFO order (0: no limit).
  const waiting: Array<() => void> = []
  let active = 0
  const next = () => {
    while ((concurrency === 0 || active < concurrency) && waiting.length > 0) {
      active++
      const done = waiting.shift()!
      setTimeout(() => {
        active--
        done()
        next()
      }, serviceMs)
    }
  }
  server.addService(EchoService, {
    echo: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      waiting.push(() => callback(null, reply))
      next()
    }
  })
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p)))
  )
  process.send!({ port })
  // The parent's exit closes the IPC channel: go with it.
  process.on("disconnect", () => process.exit(0))
}

// ---------------------------------------------------------------------------
// Bench mode
// ---------------------------------------------------------------------------

const children = new Set<ChildProcess>()
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL")
})

const startServer = (name: string, serviceMs: number, concurrency: number, maxStreams = 0): Promise<number> =>
  new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ["--server", name, String(serviceMs), String(concurrency), String(maxStreams)], {
      execArgv: process.execArgv,
      stdio: ["ignore", "ignore", "inherit", "ipc"]
    })
    children.add(child)
    const timer = setTimeout(() => reject(new Error(`server ${name} did not start within 60 s`)), 60_000)
    child.once("message", (message: { port: number }) => {
      clearTimeout(timer)
      resolve(message.port)
    })
    child.once("exit", (code) => reject(new Error(`server ${name} exited with ${code}`)))
  })

const stopServers = (): void => {
  for (const child of children) child.kill("SIGKILL")
  children.clear()
}

interface Variant {
  readonly name: string
  readonly target: string
  readonly options?: grpc.ChannelOptions
}

const insecure = grpc.credentials.createInsecure()

const makeClient = (variant: Variant, extra: grpc.ChannelOptions = {}): Echo =>
  new EchoClient(variant.target, insecure, { "grpc.use_local_subchannel_pool": 1, ...variant.options, ...extra }) as unknown as Echo

interface Row {
  readonly variant: string
  readonly median: LoadResult
  readonly rounds: ReadonlyArray<LoadResult>
}

const compare = async (
  variants: ReadonlyArray<Variant>,
  inFlight: number,
  delayMs: number,
  extra: ReadonlyArray<grpc.ChannelOptions> = [],
  beforeClose: () => void = () => {}
): Promise<ReadonlyArray<Row>> => {
  const clients = variants.map((v, i) => makeClient(v, extra[i]))
  try {
    // Warm up: connect, grow adaptive pools, JIT.
    for (const client of clients) await runLoad({ pick: () => client, inFlight, durationMs: 1_000, delayMs })
    const rounds = variants.map(() => [] as Array<LoadResult>)
    for (let round = 0; round < ROUNDS; round++) {
      const order = variants.map((_, i) => i)
      if (round % 2 === 1) order.reverse()
      for (const i of order) {
        rounds[i]!.push(await runLoad({ pick: () => clients[i]!, inFlight, durationMs: SECONDS * 1_000, delayMs }))
      }
    }
    return variants.map((v, i) => {
      const results = rounds[i]!
      return {
        variant: v.name,
        rounds: results,
        median: {
          calls: median(results.map((r) => r.calls)),
          failed: results.reduce((s, r) => s + r.failed, 0),
          seconds: median(results.map((r) => r.seconds)),
          callsPerSecond: median(results.map((r) => r.callsPerSecond)),
          p50Ms: median(results.map((r) => r.p50Ms)),
          p90Ms: median(results.map((r) => r.p90Ms)),
          p99Ms: median(results.map((r) => r.p99Ms)),
          byServer: new Map()
        }
      }
    })
  } finally {
    beforeClose()
    for (const client of clients) client.close()
  }
}

/** The median over rounds of `f(a's round, b's round)`. */
const ratio = (a: Row, b: Row, f: (x: LoadResult, y: LoadResult) => number): number =>
  median(a.rounds.map((r, i) => f(r, b.rounds[i]!)))

/** The share of a round's answers given by server `name`, in %. */
const shareOf = (r: LoadResult, name: string): number => {
  let total = 0
  for (const n of r.byServer.values()) total += n
  return total === 0 ? Number.NaN : (100 * (r.byServer.get(name) ?? 0)) / total
}

const print = (rows: ReadonlyArray<Row>, slow?: string): string =>
  table(
    ["variant", "calls/s", "p50 ms", "p90 ms", "p99 ms", "failed", ...(slow !== undefined ? [`${slow} share % (rounds min..max)`] : [])],
    rows.map((r) => {
      const shares = slow === undefined ? [] : r.rounds.map((x) => shareOf(x, slow))
      return [
        r.variant,
        fmt(r.median.callsPerSecond),
        fmt(r.median.p50Ms, 2),
        fmt(r.median.p90Ms, 2),
        fmt(r.median.p99Ms, 2),
        String(r.median.failed),
        ...(slow !== undefined ? [`${fmt(median(shares), 1)} (${fmt(Math.min(...shares), 1)}..${fmt(Math.max(...shares), 1)})`] : [])
      ]
    })
  )

/** The median of per-round ratios, with their range. */
const ratioText = (a: Row, b: Row, f: (x: LoadResult, y: LoadResult) => number): { readonly value: number; readonly text: string } => {
  const per = a.rounds.map((r, i) => f(r, b.rounds[i]!))
  const value = median(per)
  return { value, text: `${fmt(value, 2)}x (rounds ${fmt(Math.min(...per), 2)}..${fmt(Math.max(...per), 2)})` }
}

const loadavg = (): string => os.loadavg().map((l) => l.toFixed(2)).join(" ")

const verdict = (ok: boolean): string => (ok ? "met" : "NOT met")

export const runAdaptiveBench = async (): Promise<string> => {
  register()
  const lines: Array<string> = []
  const say = (line: string) => {
    lines.push(line)
    console.log(line)
  }
  say(`bench:adaptive — ${ROUNDS} rounds of ${SECONDS} s per variant, medians over rounds, node ${process.version}, load average ${loadavg()}\n`)
  try {
    if (wanted("a")) await scenarioA(say)
    if (wanted("b")) await scenarioB(say)
    if (wanted("c")) await scenarioC(say)
  } finally {
    stopServers()
  }
  say(`\nload average after: ${loadavg()}`)
  return lines.join("\n")
}

const scenarioA = async (say: (line: string) => void): Promise<void> => {
  {
    // (a) the 4-stream server
    const limited = await startServer("limited", 1, 0, 4)
    const adaptive: Variant = {
      name: "grpc-anchor #1..8",
      target: `pass:///127.0.0.1:${limited}#1..8`,
      options: { [MAX_STREAMS_PER_CONNECTION_OPTION]: 4 }
    }
    const fixed: Variant = { name: "grpc-anchor #4", target: `pass:///127.0.0.1:${limited}#4` }
    const grown = makeSink(adaptive.target)
    let grownTo = 0
    const a = await compare([fixed, adaptive], 200, 1, [{}, { [STATS_KEY]: grown }], () => {
      grownTo = grown.read().connections.length
    })
    const throughput = ratio(a[1]!, a[0]!, (x, y) => x.callsPerSecond / y.callsPerSecond)
    say("(a) 1 server, max 4 concurrent streams per connection, 1 ms per call, 200 calls in flight")
    say(print(a))
    say(`#1..8 ended the run with ${grownTo} connection(s)`)
    say(`goal: #1..8 >= 0.95x #4's calls/s: ${fmt(throughput, 2)}x, median of per-round ratios (${verdict(throughput >= 0.95)}); ratio of the medians ${fmt(a[1]!.median.callsPerSecond / a[0]!.median.callsPerSecond, 2)}x`)
    // Connections an adaptive pool uses for a client doing one call at a time.
    const sink = makeSink(adaptive.target)
    const single = makeClient(adaptive, { [STATS_KEY]: sink })
    try {
      const one = await runLoad({ pick: () => single, inFlight: 1, durationMs: SECONDS * 1_000, delayMs: 1 })
      const used = sink.read().connections.length
      say(`1 call at a time on #1..8 for ${SECONDS} s: ${one.calls} calls, ${used} connection(s) (goal 1: ${verdict(used === 1)})\n`)
    } finally {
      single.close()
    }
    stopServers()
  }
}

/** round_robin, least_request and ewma over three backends. */
const threeModes = (list: string): ReadonlyArray<Variant> => [
  { name: "grpc-anchor round_robin", target: `pass:///${list}` },
  { name: "grpc-anchor least_request", target: `pass:///${list}?pick=least_request` },
  { name: "grpc-anchor ewma", target: `pass:///${list}?pick=ewma` }
]

const scenarioB = async (say: (line: string) => void): Promise<void> => {
  try {
    // (b) heterogeneous backends, one call at a time each
    const [f1, f2, slow] = await Promise.all([startServer("fast1", 1, 1), startServer("fast2", 1, 1), startServer("slow", 10, 1)])
    const b = await compare(threeModes(`127.0.0.1:${f1},127.0.0.1:${f2},127.0.0.1:${slow}`), 32, 0)
    const p99 = ratio(b[1]!, b[0]!, (x, y) => x.p99Ms / y.p99Ms)
    const rate = ratio(b[1]!, b[0]!, (x, y) => x.callsPerSecond / y.callsPerSecond)
    const ewmaP99 = ratioText(b[2]!, b[1]!, (x, y) => x.p99Ms / y.p99Ms)
    say("(b) 3 backends serving one call at a time each, two at 1 ms per call, one at 10 ms (10x slower), 32 calls in flight")
    say(print(b, "slow"))
    say(`goal: least_request p99 <= 0.5x round_robin's: ${fmt(p99, 2)}x (${verdict(p99 <= 0.5)}); calls/s not lower: ${fmt(rate, 2)}x (${verdict(rate >= 1)}) (medians of per-round ratios)`)
    say(`goal: ewma p99 <= least_request's: ${ewmaP99.text} (${verdict(ewmaP99.value <= 1)})\n`)
  } finally {
    stopServers()
  }
}

const scenarioC = async (say: (line: string) => void): Promise<void> => {
  try {
    // (c) a slow backend that accepts any number of calls: counting calls in flight says little
    const [f1, f2, slow] = await Promise.all([startServer("fast1", 1, 0), startServer("fast2", 1, 0), startServer("slow", 10, 0)])
    const c = await compare(threeModes(`127.0.0.1:${f1},127.0.0.1:${f2},127.0.0.1:${slow}`), 12, 0)
    const p90 = ratioText(c[2]!, c[0]!, (x, y) => x.p90Ms / y.p90Ms)
    const rate = ratioText(c[2]!, c[0]!, (x, y) => x.callsPerSecond / y.callsPerSecond)
    const lrP90 = ratioText(c[1]!, c[0]!, (x, y) => x.p90Ms / y.p90Ms)
    say("(c) 3 backends with no limit on concurrent calls, answering after 1, 1 and 10 ms, 12 calls in flight")
    say(print(c, "slow"))
    say(`goal: ewma p90 <= 0.5x round_robin's: ${p90.text} (${verdict(p90.value <= 0.5)}); calls/s >= round_robin's: ${rate.text} (${verdict(rate.value >= 1)}); least_request p90 vs round_robin: ${lrP90.text}`)
  } finally {
    stopServers()
  }
}

if (process.argv[2] === "--server") {
  const [, , , name, serviceMs, concurrency, maxStreams] = process.argv
  await serve(name!, Number(serviceMs), Number(concurrency), Number(maxStreams))
} else if (import.meta.url === `file://${process.argv[1]}`) {
  await runAdaptiveBench()
  process.exit(0)
}
