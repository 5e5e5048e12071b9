/**
 * The peer benchmark's backend: a grpc-js echo server in its own process
 * (optionally one port served by several `node:cluster` workers), with the
 * per-call cost set on the server, so every client variant sends the same
 * bytes. Started by serverProcess.ts with `fork`:
 *
 *   server.ts --name a [--max-streams 4] [--delay-ms 1] [--busy-us 300] [--workers 2]
 *
 * - `--max-streams`: HTTP/2 streams a client may have open per connection
 *   (`grpc.max_concurrent_streams`); default: grpc-js's (no cap).
 * - `--delay-ms`: each call answers after this long (a timer: server time, not CPU).
 * - `--busy-us`: each call first spins the CPU this long (bounded by the clock).
 * - `--workers`: with 2 or more, a cluster primary forks that many workers
 *   sharing one port (Node's round-robin hand-off of accepted connections).
 *
 * Listens on 127.0.0.1 only. Counts the connections it accepted and the calls
 * it served, per worker. Talks to the parent over the IPC channel: sends
 * `{ type: "ready", port }`, answers `{ type: "stats", id }` with
 * `{ type: "stats", id, workers: [{ connections, calls }] }`. Exits when the
 * parent goes away (IPC closed) or on SIGTERM/SIGINT; a cluster worker exits
 * when its primary goes away.
 */
import * as grpc from "@grpc/grpc-js"
import cluster from "node:cluster"
import * as net from "node:net"
import { parseArgs } from "node:util"
import { EchoService } from "../../../packages/cli/src/echo/echo.js"

/** Counters of one serving process. */
export interface WorkerStats {
  readonly connections: number
  readonly calls: number
}

/** Parent -> server. */
export type ServerRequest = { readonly type: "stats"; readonly id: number } | { readonly type: "stop" }

/** Server -> parent. */
export type ServerMessage =
  | { readonly type: "ready"; readonly port: number }
  | { readonly type: "stats"; readonly id: number; readonly workers: ReadonlyArray<WorkerStats> }

const { values } = parseArgs({
  options: {
    name: { type: "string", default: "echo" },
    "max-streams": { type: "string" },
    "delay-ms": { type: "string", default: "0" },
    "busy-us": { type: "string", default: "0" },
    workers: { type: "string", default: "1" }
  }
})

const fail = (message: string): never => {
  process.stderr.write(`${message}\n`)
  process.exit(2)
}
const whole = (flag: string, text: string | undefined, min: number, max: number): number => {
  const value = Number(text)
  return Number.isInteger(value) && value >= min && value <= max ? value : fail(`--${flag} must be a whole number ${min}..${max}, got ${text}`)
}

const maxStreams = values["max-streams"] === undefined ? undefined : whole("max-streams", values["max-streams"], 1, 2 ** 31 - 1)
const delayMs = whole("delay-ms", values["delay-ms"], 0, 60_000)
const busyUs = whole("busy-us", values["busy-us"], 0, 1_000_000)
const workers = whole("workers", values.workers, 1, 16)

/** Serves on 127.0.0.1:0 (a cluster worker: the port the primary shares) and resolves to the port. */
const serve = (counters: { connections: number; calls: number }): Promise<number> => {
  const server = new grpc.Server(maxStreams === undefined ? {} : { "grpc.max_concurrent_streams": maxStreams })
  const reply = Buffer.from(values.name!, "utf8")
  const busyNs = BigInt(busyUs) * 1_000n
  server.addService(EchoService, {
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      counters.calls++
      if (busyNs > 0n) {
        // CPU work standing in for a real handler; bounded by the clock.
        const until = process.hrtime.bigint() + busyNs
        while (process.hrtime.bigint() < until) {
          // spin
        }
      }
      const asked = call.request.length >= 4 ? call.request.readUInt32BE(0) : 0
      const delay = Math.max(delayMs, asked)
      if (delay === 0) return callback(null, reply)
      setTimeout(() => callback(null, reply), delay)
    }
  })
  // Accept TCP ourselves (not exclusive, so cluster workers share the port)
  // and hand each socket to grpc-js: that is how the connections are counted.
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure())
  const tcp = net.createServer({ noDelay: true }, (socket) => {
    counters.connections++
    injector.injectConnection(socket)
  })
  return new Promise((resolve, reject) => {
    tcp.once("error", reject)
    tcp.listen({ host: "127.0.0.1", port: 0 }, () => resolve((tcp.address() as net.AddressInfo).port))
  })
}

const exitWhenOrphaned = () => {
  process.once("disconnect", () => process.exit(0))
  process.once("SIGTERM", () => process.exit(0))
  process.once("SIGINT", () => process.exit(0))
}

if (workers === 1) {
  const counters = { connections: 0, calls: 0 }
  const port = await serve(counters).catch((error: Error) => fail(`listen: ${error.message}`))
  process.on("message", (message: ServerRequest) => {
    if (message.type === "stop") process.exit(0)
    if (message.type === "stats") process.send?.({ type: "stats", id: message.id, workers: [{ ...counters }] } satisfies ServerMessage)
  })
  exitWhenOrphaned()
  process.send?.({ type: "ready", port } satisfies ServerMessage)
} else if (cluster.isPrimary) {
  // The primary only forks, relays stats requests and reports; workers serve.
  const forked = Array.from({ length: workers }, () => cluster.fork())
  const ports = await Promise.all(
    forked.map(
      (worker) =>
        new Promise<number>((resolve, reject) => {
          worker.once("message", (message: { port: number }) => resolve(message.port))
          worker.once("exit", (code) => reject(new Error(`a worker exited with code ${code} before listening`)))
        })
    )
  ).catch((error: Error) => fail(error.message))
  if (new Set(ports).size !== 1) fail(`workers listen on different ports: ${ports.join(", ")}`)
  let nextId = 0
  const stop = () => {
    for (const worker of forked) worker.process.kill("SIGKILL")
    process.exit(0)
  }
  process.on("message", async (message: ServerRequest) => {
    if (message.type === "stop") return stop()
    if (message.type !== "stats") return
    const answers = await Promise.all(
      forked.map(
        (worker) =>
          new Promise<WorkerStats>((resolve) => {
            const id = nextId++
            const timer = setTimeout(() => {
              worker.off("message", onMessage)
              resolve({ connections: Number.NaN, calls: Number.NaN })
            }, 5_000)
            const onMessage = (reply: { id: number; stats: WorkerStats }) => {
              if (reply.id !== id) return
              clearTimeout(timer)
              worker.off("message", onMessage)
              resolve(reply.stats)
            }
            worker.on("message", onMessage)
            worker.send({ type: "stats", id })
          })
      )
    )
    process.send?.({ type: "stats", id: message.id, workers: answers } satisfies ServerMessage)
  })
  process.once("disconnect", stop)
  process.once("SIGTERM", stop)
  process.once("SIGINT", stop)
  process.send?.({ type: "ready", port: ports[0]! } satisfies ServerMessage)
} else {
  const counters = { connections: 0, calls: 0 }
  const port = await serve(counters).catch((error: Error) => fail(`listen: ${error.message}`))
  process.on("message", (message: { type: string; id: number }) => {
    if (message.type === "stats") process.send?.({ id: message.id, stats: { ...counters } })
  })
  exitWhenOrphaned()
  process.send?.({ port })
}
