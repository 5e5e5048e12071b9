/**
 * node --import tsx bench/hung.ts — the hung rule's false avoidances: a
 * healthy pool (2 grpc-js servers on 127.0.0.1, `#2` each, default options)
 * carrying 8 server streams of 60 s each (opened again as they end) and
 * unary calls that alternate every 20 s between busy (2 callers, one call
 * every 5 ms each) and sparse (one call every 600 ms: each connection then
 * carries only streams for seconds at a time, past the rule's 1 s
 * threshold). Goal (issue 18): 0 avoidances in 5 minutes
 * (BENCH_SOAK_SECONDS, default 300). Prints the avoidances, calls, streams
 * and failures; bounded by its duration.
 */
import * as grpc from "@grpc/grpc-js"
import { STATS_KEY } from "../src/adapters/grpc/internal/keys.js"
import { makeSink } from "../src/adapters/grpc/internal/stats.js"
import { register } from "../src/main/index.js"
import { MixedClient, startMixedServer } from "../test/fixtures/mixedServer.js"

const SECONDS = Number(process.env.BENCH_SOAK_SECONDS ?? 300)
const STREAM_MS = 60_000
register()
const servers = await Promise.all(["a", "b"].map((name) => startMixedServer(name, { delay: () => 1, tickMs: 1_000 })))
const target = `pass:///${servers[0]!.address}#2,${servers[1]!.address}#2`
const sink = makeSink(target)
const client = new MixedClient(target, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1, [STATS_KEY]: sink }) as unknown as grpc.Client & {
  watch: (req: Buffer, opts: grpc.CallOptions) => grpc.ClientReadableStream<Buffer>
  echo: (req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => void
}
const started = Date.now()
const until = started + SECONDS * 1_000
let streams = 0
let unary = 0
const failures: Array<string> = []

const streamer = async (delayMs: number) => {
  await new Promise((resolve) => setTimeout(resolve, Math.min(delayMs, Math.max(0, until - Date.now()))))
  for (let i = 0; i < 1_000 && Date.now() < until; i++) {
    streams++
    await new Promise<void>((resolve) => {
      const request = Buffer.alloc(4)
      request.writeUInt32BE(Math.min(STREAM_MS, Math.max(1, until - Date.now())))
      const call = client.watch(request, { deadline: Date.now() + STREAM_MS + 10_000 })
      call.on("data", () => {})
      call.on("error", (e: grpc.ServiceError) => {
        failures.push(`stream: ${e.message}`)
        resolve()
      })
      call.on("end", () => resolve())
    })
  }
}

const unaryCaller = async (busy: boolean) => {
  for (let i = 0; i < 1_000_000 && Date.now() < until; i++) {
    const phaseBusy = Math.floor((Date.now() - started) / 20_000) % 2 === 0
    if (phaseBusy !== busy) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      continue
    }
    await new Promise<void>((resolve) =>
      client.echo(Buffer.alloc(4), new grpc.Metadata(), { deadline: Date.now() + 5_000 }, (e) => {
        if (e) failures.push(`unary: ${e.message}`)
        else unary++
        resolve()
      })
    )
    await new Promise((resolve) => setTimeout(resolve, busy ? 5 : 600))
  }
}

console.log(`bench:hung — ${SECONDS} s soak: 8 server streams of ${STREAM_MS / 1_000} s, unary calls busy/sparse every 20 s, on ${target}, default options`)
// Streams opened in two waves, 30 s apart, so some start while the unary calls are sparse.
await Promise.all([
  ...Array.from({ length: 8 }, (_, i) => streamer(i < 4 ? 0 : 30_000)),
  unaryCaller(true),
  unaryCaller(true),
  unaryCaller(false)
])
const connections = sink.read().connections
const avoided = connections.reduce((n, c) => n + c.avoided, 0)
console.log(
  `${((Date.now() - started) / 1_000).toFixed(0)} s: ${avoided} avoidances (goal 0: ${avoided === 0 ? "met" : "NOT met"}); ` +
    `${streams} streams, ${unary} unary calls, ${failures.length} failures${failures.length > 0 ? ` (${failures.slice(0, 3).join("; ")})` : ""}; ` +
    `picked per connection ${connections.map((c) => `${c.address}#${c.index}: ${c.picked}`).join(", ")}`
)
client.close()
for (const server of servers) server.close()
process.exit(0)
