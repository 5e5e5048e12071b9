/**
 * Latency-aware picking and the hung rule against real grpc-js servers on
 * loopback (issue 18):
 *
 * - `?pick=ewma`: a backend that turns slow gets a small share of the calls
 *   while it is slow (under a third of round robin's share, with this
 *   machine's noise), and its count's share again once it is fast (the
 *   decay is shortened to 1 s with `grpc_anchor.ewma_decay_ms`, so the
 *   return fits in the test; bench/adaptive.ts measures the default);
 * - the hung rule (default options): long server streams mixed with unary
 *   calls on a healthy pool, with unary calls sparse enough that a
 *   connection carries only streams for seconds at a time, never count as
 *   hung. Two parts of the rule keep it at 0 here: a later call must start
 *   half the threshold after the second (streams opened together do not),
 *   and the threshold grows with the other address's mean latency, which
 *   streams in flight raise (Little's law counts them); with both taken
 *   out the test counted an avoidance.
 *
 * Shares are judged with margins for this shared 2-core machine; the
 * measured figures are printed.
 */
import * as grpc from "@grpc/grpc-js"
import { describe, expect, it } from "@effect/vitest"
import { EWMA_DECAY_MS_OPTION } from "../../src/adapters/grpc/AnchorRoundRobin.js"
import { STATS_KEY } from "../../src/adapters/grpc/internal/keys.js"
import { makeSink } from "../../src/adapters/grpc/internal/stats.js"
import { register } from "../../src/main/index.js"
import { MixedClient, startMixedServer } from "../fixtures/mixedServer.js"
import { cleanupAfterEach } from "../support/grpc.js"
import { echoClient } from "../support/stress.js"

register()

const defer = cleanupAfterEach()

/** A real server on loopback answering echo after `delay()` ms, and serving watch streams (a message every 100 ms). */
const startServer = async (name: string, delay: () => number): Promise<string> => {
  const server = await startMixedServer(name, { delay, tickMs: 100 })
  defer(() => server.close())
  return server.address
}

/** Keeps `inFlight` echo calls going until `until` (ms since epoch); the answers per server. */
const closedLoop = async (client: grpc.Client, inFlight: number, until: number): Promise<Map<string, number>> => {
  const got = new Map<string, number>()
  const echo = client as unknown as {
    echo: (req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Buffer) => void) => void
  }
  const worker = async () => {
    // Bounded: at most 20,000 calls per worker.
    for (let i = 0; i < 20_000 && Date.now() < until; i++) {
      const name = await new Promise<string>((resolve, reject) =>
        echo.echo(Buffer.alloc(4), new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (e, r) => (e ? reject(e) : resolve(r!.toString())))
      )
      got.set(name, (got.get(name) ?? 0) + 1)
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker))
  return got
}

const shareOf = (got: Map<string, number>, name: string): number => {
  let total = 0
  for (const n of got.values()) total += n
  return (got.get(name) ?? 0) / total
}

describe("ewma", () => {
  it("gives a backend that turns slow a small share while it is slow, and its count's share once it is fast again", async () => {
    let slowMs = 1
    const [f1, f2, slow] = await Promise.all([startServer("fast1", () => 1), startServer("fast2", () => 1), startServer("slow", () => slowMs)])
    const client = echoClient(`pass:///${f1},${f2},${slow}?pick=ewma`, { "grpc.use_local_subchannel_pool": 1, [EWMA_DECAY_MS_OPTION]: 1_000 })
    defer(() => client.close())
    await closedLoop(client, 12, Date.now() + 1_000)
    // Slow: 100 ms, well above this shared machine's scheduling noise (with client and servers in
    // one process, a 1 ms call takes 5-20 ms here; bench/adaptive.ts (c) has 1 vs 10 ms, in processes).
    slowMs = 100
    await closedLoop(client, 12, Date.now() + 1_000)
    const whileSlow = await closedLoop(client, 12, Date.now() + 3_000)
    slowMs = 1
    await closedLoop(client, 12, Date.now() + 5_000)
    const fastAgain = await closedLoop(client, 12, Date.now() + 4_000)
    const slowShare = shareOf(whileSlow, "slow")
    const backShare = shareOf(fastAgain, "slow")
    console.log(
      `ewma: slow backend's share while slow ${(100 * slowShare).toFixed(1)}% (${[...whileSlow.values()].reduce((a, b) => a + b, 0)} calls); ` +
        `once fast again ${(100 * backShare).toFixed(1)}% (${[...fastAgain.values()].reduce((a, b) => a + b, 0)} calls; its count's share 33.3%)`
    )
    // Round robin gives it a third. The goal's 3% holds in the pure core (property-tests/BalancerLatency.test.ts)
    // and was met here on a quieter machine (1.1-2.8%); with other suites and benchmarks sharing the 2 cores,
    // calls take 50 ms where they take 5, and it measured up to 6.3%: the bound is a third of round robin's.
    expect(slowShare).toBeLessThan(0.11)
    expect(Math.abs(backShare - 1 / 3)).toBeLessThan(0.05)
  }, 30_000)
})

describe("the hung rule", () => {
  it("never counts a connection carrying long server streams as hung, with unary calls sparse or not", async () => {
    const [a, b] = await Promise.all([startServer("a", () => 1), startServer("b", () => 1)])
    const target = `pass:///${a}#2,${b}#2`
    const sink = makeSink(target)
    const client = new MixedClient(target, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1, [STATS_KEY]: sink })
    defer(() => client.close())
    const watch = client as unknown as { watch: (req: Buffer, opts: grpc.CallOptions) => grpc.ClientReadableStream<Buffer> }
    const echo = client as unknown as {
      echo: (req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Buffer) => void) => void
    }
    const until = Date.now() + 11_500
    let streamsOpened = 0
    let messages = 0
    let unary = 0
    const failures: Array<string> = []
    /** A stream of `ms`, opened after `delayMs`. */
    const streamer = async (delayMs: number, ms: number) => {
      await new Promise((resolve) => setTimeout(resolve, delayMs))
      streamsOpened++
      await new Promise<void>((resolve) => {
        const request = Buffer.alloc(4)
        request.writeUInt32BE(ms)
        const call = watch.watch(request, { deadline: Date.now() + ms + 10_000 })
        call.on("data", () => messages++)
        call.on("error", (e: grpc.ServiceError) => {
          failures.push(`stream: ${e.message}`)
          resolve()
        })
        call.on("end", () => resolve())
      })
    }
    /** Unary calls, one every `gapMs`, for `forMs`. */
    const unaryLoop = async (gapMs: number, forMs: number) => {
      const stop = Date.now() + forMs
      for (let i = 0; i < 2_000 && Date.now() < stop; i++) {
        await new Promise<void>((resolve) =>
          echo.echo(Buffer.alloc(4), new grpc.Metadata(), { deadline: Date.now() + 5_000 }, (e) => {
            if (e) failures.push(`unary: ${e.message}`)
            else unary++
            resolve()
          })
        )
        await new Promise<void>((resolve) => setTimeout(resolve, gapMs))
      }
    }
    // 8 streams of 11 s opened at the start and 8 of 7 s opened at 4 s (two per connection each time,
    // opened together); unary calls busy for 3 s, then one every 600 ms: each connection gets one every
    // ~2.4 s, so after 4 s it carries two new streams and nothing else for over the rule's 1 s.
    await Promise.all([
      ...Array.from({ length: 8 }, () => streamer(0, 11_000)),
      ...Array.from({ length: 8 }, () => streamer(4_000, 7_000)),
      (async () => {
        await Promise.all([unaryLoop(5, 3_000), unaryLoop(5, 3_000)])
        await unaryLoop(600, until - Date.now())
      })()
    ])
    const connections = sink.read().connections
    const avoided = connections.reduce((n, c) => n + c.avoided, 0)
    console.log(
      `streams and unary calls: ${streamsOpened} streams opened (${messages} messages), ${unary} unary calls, ${failures.length} failures; ` +
        `avoided ${avoided} times; picked per connection ${connections.map((c) => `${c.address}#${c.index}: ${c.picked}`).join(", ")}`
    )
    expect(failures).toEqual([])
    expect(streamsOpened).toBe(16)
    expect(avoided).toBe(0)
  }, 30_000)
})
