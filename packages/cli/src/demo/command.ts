/**
 * `grpc-anchor demo [--duration S] [--json] [--etcd HOST:PORT]`: three echo
 * servers on loopback, each its own child process, one grpc-anchor channel
 * over them, calls for about `--duration` seconds with 16 in flight, and a
 * live view of what each server sees: its connections, the calls it served,
 * its share against the expected share. The third server is killed midway
 * and restarted (see script.ts).
 *
 * Success (exit 0) is every check of `evaluate` (judge.ts): the shares of
 * each phase, the final connection counts seen by the servers, and no failed
 * call started after the kill was seen. Otherwise exit 1; interrupted, 130.
 *
 * @example
 * ```sh
 * grpc-anchor demo --duration 10
 * grpc-anchor demo --etcd 127.0.0.1:2379 --json
 * ```
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { CliError, Command, Flag } from "effect/cli"
import {
  CommandError,
  EXIT_FAILURE,
  EXIT_INTERRUPTED,
  errorLine,
  helpText,
  hostsFlag,
  inRange,
  line,
  parseTarget,
  setInterruptedExitCode,
  stdoutIsTty
} from "../internal/common.js"
import { metricsFlag, serveMetrics } from "../internal/metrics.js"
import type { Output } from "./render.js"
import { PLAIN_COLUMNS, renderSummary } from "./render.js"
import { type DemoOptions, run } from "./script.js"

/**
 * Runs the demo and prints its summary; returns the exit code. Interrupted
 * (Ctrl-C) at any point before the summary, it stops the servers and exits
 * 130 without one.
 */
const runDemo = (options: DemoOptions & { readonly json: boolean }): Effect.Effect<number, CommandError> =>
  Effect.gen(function* () {
    yield* setInterruptedExitCode(EXIT_INTERRUPTED)
    const output: Output = options.json ? "json" : stdoutIsTty() ? "tty" : "plain"
    // The summary is printed once the scope closed, the servers stopped.
    const summary = yield* run(options, output).pipe(
      Effect.scoped,
      Effect.onInterrupt(() => errorLine("grpc-anchor: demo interrupted; servers stopped, no summary"))
    )
    // On a terminal narrower than 80 columns the summary wraps to its width.
    const columns = output === "tty" ? Math.max(40, Math.min(process.stdout.columns ?? PLAIN_COLUMNS, PLAIN_COLUMNS)) : PLAIN_COLUMNS
    yield* line(output === "json" ? JSON.stringify(summary, null, 2) : renderSummary(summary, columns).join("\n"))
    const code = summary.ok ? 0 : EXIT_FAILURE
    yield* setInterruptedExitCode(code)
    return code
  })

/** The defaults of the flags, shown in the help. */
const DEFAULT_DURATION = 10
const DEFAULT_CONCURRENCY = 16
const DEFAULT_SERVICE = "demo"
const DEFAULT_TTL = 2

const duration = Flag.Finite("duration").pipe(
  Flag.withMetavar("SECONDS"),
  Flag.withDefault(DEFAULT_DURATION),
  Flag.mapEffect(inRange("--duration", 1, 3_600)),
  Flag.withDescription(
    helpText("How long to drive calls, in seconds (about; the rejoined phase gets at least 15% of it).", { default: DEFAULT_DURATION })
  )
)
const json = Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("Print only the summary, as JSON (no live view)."))
const concurrency = Flag.Int("concurrency").pipe(
  Flag.withMetavar("N"),
  Flag.withDefault(DEFAULT_CONCURRENCY),
  Flag.mapEffect(inRange("--concurrency", 1, 1_000)),
  Flag.withDescription(helpText("Calls in flight.", { default: DEFAULT_CONCURRENCY }))
)
/** `http://`, `https://` or any other scheme in front of a host. */
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//
const etcd = hostsFlag("etcd").pipe(
  Flag.withMetavar("HOST:PORT"),
  Flag.mapEffect((hosts) => {
    const withScheme = hosts.find((h) => SCHEME.test(h))
    return withScheme === undefined
      ? Effect.succeed(hosts)
      : Effect.fail(
          new CliError.ValidationError({
            message:
              `--etcd takes host:port without a scheme, got ${JSON.stringify(withScheme)}; ` +
              `for TLS set ETCD_CACERT (and ETCD_CERT, ETCD_KEY)`
          })
        )
  }),
  Flag.optional,
  Flag.withDescription("Register the servers in this etcd and dial etcd://HOST:PORT/SERVICE#2 (without it: a pass:/// target, no etcd).")
)
const service = Flag.String("service").pipe(
  Flag.withMetavar("SERVICE"),
  Flag.withDefault(DEFAULT_SERVICE),
  Flag.withDescription(helpText("With --etcd: the service the servers register under.", { default: DEFAULT_SERVICE }))
)
const ttl = Flag.Int("ttl").pipe(
  Flag.withMetavar("SECONDS"),
  Flag.withDefault(DEFAULT_TTL),
  Flag.mapEffect(inRange("--ttl", 1, 60)),
  Flag.withDescription(
    helpText("With --etcd: the lease TTL of the servers' records (a killed server's record lasts this long).", { default: DEFAULT_TTL })
  )
)

/** The `demo` subcommand. */
export const command = Command.make(
  "demo",
  { duration, json, concurrency, etcd, service, ttl, metrics: metricsFlag },
  ({ concurrency, duration, etcd, json, metrics, service, ttl }) =>
    Effect.gen(function* () {
      const hosts = Option.getOrElse(etcd, (): ReadonlyArray<string> => [])
      // The channel's target, checked before etcd is dialled or any server started (the service
      // is checked without --etcd too, as part of etcd:///SERVICE#2).
      const target = yield* parseTarget(
        `etcd://${hosts.join(",")}/${service}#2`,
        Option.isSome(etcd) ? "--etcd and --service make a bad target" : "--service makes a bad target"
      )
      const code = yield* serveMetrics(metrics).pipe(
        Effect.andThen(runDemo({
          durationMs: duration * 1_000,
          json,
          concurrency,
          etcd: Option.isSome(etcd) && target._tag === "Etcd" ? Option.some(target) : Option.none(),
          ttl
        })),
        Effect.scoped
      )
      if (code !== 0) return yield* new CommandError({ message: "", exitCode: code })
    })
).pipe(
  Command.withDescription(
    "Three echo servers weighted 3/2/1 behind one pooled channel: kill one, restart it, and check the connections and shares."
  )
)
