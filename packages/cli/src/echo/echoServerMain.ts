/**
 * An echo server as its own process, so tests, benchmarks and the demo can
 * kill a backend for real (SIGKILL) and measure client and server on
 * separate event loops. Started by echoProcess with `fork`:
 *
 *   echoServerMain.js --name a --port 0 [--host 127.0.0.1] [--max-streams 4]
 *     [--etcd HOSTS --service S [--ttl SECONDS]]
 *
 * Sends `{ type: "ready", name, port }` over the IPC channel when serving and
 * answers `{ type: "stats", id }` with `{ type: "stats", id, stats }` (see
 * echoProcess's ChildMessage). With `--etcd` it first registers `host:port`
 * under `--service` in etcd (Registrar, lease of `--ttl` seconds, default 10;
 * TLS and credentials from ETCD_CACERT, ETCD_CERT, ETCD_KEY, ETCD_USERNAME,
 * ETCD_PASSWORD) and is ready once the record is in etcd. SIGTERM, SIGINT or
 * the parent going away (the IPC channel closed) revoke the lease, then the
 * server drains and the process exits 0; a SIGKILL leaves the record to
 * expire with its lease. A failure before ready is one line on stderr (the
 * parent quotes it) and exit 2. Arguments are split by node's parseArgs and
 * decoded with Schema rather than a CLI framework, so the child starts fast.
 */
import { parseArgs } from "node:util"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as References from "effect/References"
import * as Schema from "effect/Schema"
import { Etcd, Registrar } from "grpc-anchor"
import { startEchoServer } from "./echo.js"
import type { ChildMessage, ParentMessage } from "./echoProcess.js"

/** Bound on the first registration; the parent's own wait for the ready message is longer. */
const REGISTER_TIMEOUT = "15 seconds"

const WholeNumber = (minimum: number, maximum: number) =>
  Schema.NumberFromString.pipe(Schema.check(Schema.isInt(), Schema.isBetween({ minimum, maximum })))

/**
 * The command line, as node's parseArgs splits it, decoded: numbers in
 * range, `--service` with `--etcd`. This child is started by echoProcess
 * only, and starts fast (no CLI framework to load: tests and the demo
 * restart it while calls flow).
 */
const Options = Schema.Struct({
  name: Schema.String,
  host: Schema.String,
  port: WholeNumber(0, 65535),
  "max-streams": Schema.optional(WholeNumber(1, 2 ** 31 - 1)),
  etcd: Schema.optional(Schema.String),
  service: Schema.optional(Schema.NonEmptyString),
  ttl: WholeNumber(1, 9_000_000_000)
}).pipe(
  Schema.check(
    Schema.makeFilter((options) => options.etcd === undefined || options.service !== undefined || "--etcd needs --service")
  )
)

const readOptions = Effect.try({
  try: () =>
    parseArgs({
      options: {
        name: { type: "string", default: "echo" },
        host: { type: "string", default: "127.0.0.1" },
        port: { type: "string", default: "0" },
        "max-streams": { type: "string" },
        etcd: { type: "string" },
        service: { type: "string" },
        ttl: { type: "string", default: "10" }
      }
    }).values,
  catch: (error) => error
}).pipe(
  Effect.flatMap(Schema.decodeUnknownEffect(Options)),
  Effect.mapError((error) => new Error(`echo server arguments: ${error instanceof Error ? error.message : String(error)}`))
)

const serve = Effect.gen(function* () {
  const options = yield* readOptions
  // Released last: the server drains after the lease is revoked.
  const server = yield* Effect.acquireRelease(
    Effect.tryPromise({
      try: () =>
        startEchoServer({
          name: options.name,
          host: options.host,
          port: options.port,
          ...(options["max-streams"] === undefined ? {} : { maxConcurrentStreams: options["max-streams"] })
        }),
      catch: (error) => (error instanceof Error ? error : new Error(String(error)))
    }),
    (server) => Effect.promise(() => server.close())
  )
  if (options.etcd !== undefined && options.service !== undefined) {
    // The etcd client lives in this scope: closed after the registrar revoked its lease.
    const etcd = yield* Layer.build(Etcd.layerForHosts(options.etcd))
    const registrar = yield* Registrar.make({ service: options.service, address: server.address, ttl: options.ttl }).pipe(
      Effect.provideContext(etcd)
    )
    yield* registrar.awaitRegistered.pipe(
      Effect.timeoutOrElse({
        duration: REGISTER_TIMEOUT,
        orElse: () => Effect.fail(new Error(`not registered in etcd within ${REGISTER_TIMEOUT}`))
      }),
      Effect.mapError((error) => new Error(`registering in etcd: ${error.message}`))
    )
  }
  // Serves stats requests until interrupted (a signal) or the parent is gone;
  // says it is ready once it listens for them.
  yield* Effect.callback<void>((resume) => {
    const onMessage = (message: ParentMessage) => {
      if (message.type !== "stats") return
      const stats = { connections: server.observer.connections(), calls: server.observer.totalCalls() }
      process.send?.({ type: "stats", id: message.id, stats } satisfies ChildMessage)
    }
    const onDisconnect = () => resume(Effect.void)
    process.on("message", onMessage)
    process.once("disconnect", onDisconnect)
    process.send?.({ type: "ready", name: server.name, port: server.port } satisfies ChildMessage)
    return Effect.sync(() => {
      process.off("message", onMessage)
      process.off("disconnect", onDisconnect)
    })
  })
}).pipe(Effect.scoped)

// Warnings of the registrar go to stderr, the parent quotes it when this
// process fails (stdout is not read).
const logger = Layer.merge(
  Logger.layer([Logger.withConsoleError(Logger.formatSimple)]),
  Layer.succeed(References.MinimumLogLevel, "Warn")
)

const main = serve.pipe(
  Effect.catchCause((cause) =>
    Cause.hasInterruptsOnly(cause)
      ? Effect.void
      : Effect.sync(() => {
          const error = Cause.squash(cause)
          process.stderr.write(`${(error instanceof Error ? error.message : String(error)).replace(/\s+/g, " ")}\n`)
          process.exitCode = 2
        })
  ),
  Effect.provide(logger)
)

NodeRuntime.runMain(main, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    const code = Exit.isSuccess(exit) ? ((process.exitCode as number | undefined) ?? 0) : 0
    onExit(code)
    process.exit(code)
  }
})
