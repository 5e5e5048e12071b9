/**
 * An echo server as its own process, so tests, benchmarks and the demo can
 * kill a backend for real (SIGKILL) and measure client and server on
 * separate event loops.
 *
 *   node echoServerMain.js --name a --port 0 [--host 127.0.0.1] [--max-streams 4]
 *     [--etcd HOSTS --service S [--ttl SECONDS]]
 *
 * Prints one JSON line `{"ready":true,"name":...,"port":...}` when serving.
 * With `--etcd` it first registers `host:port` under `--service` in etcd
 * (Registrar, lease of `--ttl` seconds, default 10) and prints the ready line
 * once the record is in etcd (TLS and credentials from ETCD_CACERT, ETCD_CERT,
 * ETCD_KEY, ETCD_USERNAME, ETCD_PASSWORD); SIGTERM or SIGINT revokes the lease before the
 * server drains, while a SIGKILL leaves the record to expire with its lease.
 * Reads commands from stdin, one per line: `stats <id>` prints
 * `{"id":<id>,"stats":{"connections":[...],"calls":N}}`. SIGTERM drains and exits 0.
 */
import { createInterface } from "node:readline"
import { parseArgs } from "node:util"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Scope from "effect/Scope"
import * as Etcd from "../../adapters/etcd/Etcd.js"
import * as Registrar from "../../adapters/etcd/Registrar.js"
import { startEchoServer } from "./echo.js"

const { values } = parseArgs({
  options: {
    name: { type: "string", default: "echo" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    "max-streams": { type: "string" },
    etcd: { type: "string" },
    service: { type: "string" },
    ttl: { type: "string", default: "10" }
  }
})

/** Ends the process; the message is its whole stderr, for the parent to quote (see echoProcess). */
const fail = (message: string): never => {
  process.stderr.write(`${message}\n`)
  process.exit(2)
}

const port = Number(values.port)
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be 0..65535, got ${values.port}`)
const maxStreams = values["max-streams"] === undefined ? undefined : Number(values["max-streams"])
if (maxStreams !== undefined && (!Number.isInteger(maxStreams) || maxStreams < 1)) {
  fail(`--max-streams must be a positive whole number, got ${values["max-streams"]}`)
}

const ttl = Number(values.ttl)
if (values.etcd !== undefined && (values.service === undefined || values.service.length === 0)) fail("--etcd needs --service")
if (values.etcd !== undefined && (!Number.isInteger(ttl) || ttl < 1)) fail(`--ttl must be a whole number of seconds >= 1, got ${values.ttl}`)

// stdout carries the ready line and the stats replies, one JSON line each:
// anything else (the registrar's log lines) goes to stderr.
console.log = console.error
console.info = console.error

const server = await startEchoServer({
  name: values.name!,
  host: values.host!,
  port,
  ...(maxStreams !== undefined ? { maxConcurrentStreams: maxStreams } : {})
}).catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)))

/** Bound on the first registration; the parent's own wait for the ready line is longer. */
const REGISTER_TIMEOUT_MS = 15_000

/**
 * Registers the server in etcd (TLS and credentials as the etcd resolver and
 * the command read them) and resolves once the record is there; closing the
 * returned scope revokes the lease and closes the etcd client.
 */
const register = async (hosts: string, service: string): Promise<Scope.CloseableScope> => {
  const scope = Effect.runSync(Scope.make())
  const registered = Effect.gen(function* () {
    const etcd = yield* Layer.buildWithScope(Etcd.layerForHosts(hosts), scope)
    const registrar = yield* Registrar.make({ service, address: server.address, ttl }).pipe(
      Scope.extend(scope),
      Effect.provide(etcd)
    )
    yield* registrar.awaitRegistered.pipe(
      Effect.timeoutFail({
        duration: REGISTER_TIMEOUT_MS,
        onTimeout: () => new Error(`not registered in etcd within ${REGISTER_TIMEOUT_MS} ms`)
      })
    )
  })
  const exit = await Effect.runPromiseExit(registered.pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))))
  if (Exit.isSuccess(exit)) return scope
  await Effect.runPromise(Scope.close(scope, exit))
  await server.close({ force: true })
  const error = Cause.squash(exit.cause)
  return fail(`registering in etcd: ${error instanceof Error ? error.message : String(error)}`)
}

const registration = values.etcd === undefined ? undefined : await register(values.etcd, values.service!)

process.stdout.write(`${JSON.stringify({ ready: true, name: server.name, port: server.port })}\n`)

createInterface({ input: process.stdin })
  .on("line", (line) => {
    const [verb, id] = line.trim().split(" ")
    if (verb === "stats") {
      const stats = { connections: server.observer.connections(), calls: server.observer.totalCalls() }
      process.stdout.write(`${JSON.stringify({ ...(id !== undefined ? { id: Number(id) } : {}), stats })}\n`)
    }
  })
  // The parent going away (stdin closed) ends this server too, so a crashed
  // test run leaves no orphan behind.
  .on("close", () => void shutdown())

const shutdown = async (): Promise<void> => {
  // Deregister first, so clients stop dialling before the server drains.
  if (registration !== undefined) await Effect.runPromise(Scope.close(registration, Exit.void))
  await server.close()
  process.exit(0)
}
process.once("SIGTERM", () => void shutdown())
process.once("SIGINT", () => void shutdown())
