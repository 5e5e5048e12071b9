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
 * parent quotes it) and exit 2.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as References from "effect/References"
import { CliConfig, CliError, CliOutput, Command, Flag } from "effect/cli"
import { Etcd, Registrar } from "grpc-anchor"
import { startEchoServer } from "./echo.js"
import type { ChildMessage, ParentMessage } from "./echoProcess.js"

/** Bound on the first registration; the parent's own wait for the ready message is longer. */
const REGISTER_TIMEOUT = "15 seconds"

const between = (flag: string, min: number, max: number) =>
  Flag.mapEffect((value: number) =>
    value >= min && value <= max
      ? Effect.succeed(value)
      : Effect.fail(new CliError.ValidationError({ message: `--${flag} must be ${min}..${max}, got ${value}` }))
  )

const serve = Command.make(
  "echo-server",
  {
    name: Flag.String("name").pipe(Flag.withDefault("echo")),
    host: Flag.String("host").pipe(Flag.withDefault("127.0.0.1")),
    port: Flag.Int("port").pipe(Flag.withDefault(0), between("port", 0, 65535)),
    maxStreams: Flag.Int("max-streams").pipe(between("max-streams", 1, 2 ** 31 - 1), Flag.optional),
    etcd: Flag.String("etcd").pipe(Flag.optional),
    service: Flag.String("service").pipe(Flag.optional),
    ttl: Flag.Int("ttl").pipe(Flag.withDefault(10), between("ttl", 1, 9_000_000_000))
  },
  (options) =>
    Effect.gen(function* () {
      if (Option.isSome(options.etcd) && Option.isNone(options.service)) {
        return yield* Effect.fail(new Error("--etcd needs --service"))
      }
      // Released last: the server drains after the lease is revoked.
      const server = yield* Effect.acquireRelease(
        Effect.tryPromise(() =>
          startEchoServer({
            name: options.name,
            host: options.host,
            port: options.port,
            ...Option.match(options.maxStreams, { onNone: () => ({}), onSome: (n) => ({ maxConcurrentStreams: n }) })
          })
        ),
        (server) => Effect.promise(() => server.close())
      )
      if (Option.isSome(options.etcd) && Option.isSome(options.service)) {
        // The etcd client lives in this scope: closed after the registrar revoked its lease.
        const etcd = yield* Layer.build(Etcd.layerForHosts(options.etcd.value))
        const registrar = yield* Registrar.make({ service: options.service.value, address: server.address, ttl: options.ttl }).pipe(
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
)

// Warnings of the registrar go to stderr (stdout is not read by the parent).
const logger = Layer.succeed(References.MinimumLogLevel, "Warn")

const main = Command.runWith(serve, { version: "0" })(process.argv.slice(2)).pipe(
  Effect.catchCause((cause) =>
    Cause.hasInterruptsOnly(cause)
      ? Effect.void
      : Effect.sync(() => {
          const error = Cause.squash(cause)
          const shown =
            CliError.isCliError(error) && error._tag === "ShowHelp" ? error.errors.map((e) => e.message).join("; ") : error
          process.stderr.write(`${shown instanceof Error ? shown.message : String(shown)}\n`)
          process.exitCode = 2
        })
  ),
  Effect.provide(CliOutput.layerPresenter({ present: () => Effect.void })),
  Effect.provide(CliConfig.layer({ builtIns: [] })),
  Effect.provide(NodeServices.layer),
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
