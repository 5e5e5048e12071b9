/**
 * What every `grpc-anchor` subcommand shares: the error that ends a command
 * with a message and an exit code, the `--verbose` flag, plain writes to
 * stdout/stderr, the logger, and the etcd client built from a host list
 * (TLS and credentials from the environment, as the etcd resolver does).
 *
 * Exit codes: 0 done, 1 failed at run time (etcd unreachable, port in use,
 * the demo's checks failed), 2 bad usage (flags, values, target), 130 the
 * demo was interrupted.
 */
import * as Options from "@effect/cli/Options"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Etcd from "../../../adapters/etcd/Etcd.js"

/** Exit code of a failure at run time. */
export const EXIT_FAILURE = 1
/** Exit code of bad usage: unknown or malformed flags and values. */
export const EXIT_USAGE = 2
/** Exit code of an interrupted demo (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130

let onInterrupt = 0

/** The exit code after SIGINT/SIGTERM: 0 (a clean stop) unless a command said otherwise. */
export const interruptedExitCode = (): number => onInterrupt

/** Sets the exit code used when the command is interrupted (the demo uses 130). */
export const setInterruptedExitCode = (code: number): Effect.Effect<void> => Effect.sync(() => (onInterrupt = code))

/**
 * Ends a command: `message` is printed as one line on stderr (prefixed with
 * `grpc-anchor: `), the process exits with `exitCode`. `cause` is shown only
 * with `--verbose`.
 */
export class CliError extends Data.TaggedError("CliError")<{
  readonly message: string
  readonly exitCode: number
  readonly cause?: unknown
}> {}

/** A usage error (exit 2). */
export const usage = (message: string): CliError => new CliError({ message, exitCode: EXIT_USAGE })

/** A run-time failure (exit 1). */
export const failure = (message: string, cause?: unknown): CliError =>
  new CliError({ message, exitCode: EXIT_FAILURE, ...(cause === undefined ? {} : { cause }) })

/** `--verbose`: stack traces and causes on errors, debug logs. */
export const verbose = Options.boolean("verbose").pipe(
  Options.withDescription("Print debug logs, and the full cause (with stack traces) of an error.")
)

/** Whether stdout is a terminal (and colors are welcome). */
export const stdoutIsTty = (): boolean => process.stdout.isTTY === true

/** Whether to use colors on stdout: a terminal, and NO_COLOR not set. */
export const colors = (): boolean => stdoutIsTty() && (process.env["NO_COLOR"] ?? "") === ""

const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]/g

/** Removes ANSI escape sequences. */
export const stripAnsi = (text: string): string => text.replace(ANSI, "")

/** Writes text to stdout as is (no newline added). */
export const write = (text: string): Effect.Effect<void> => Effect.sync(() => void process.stdout.write(text))

/** Writes one line to stdout. */
export const line = (text: string): Effect.Effect<void> => write(`${text}\n`)

/** Writes one line to stderr. */
export const errorLine = (text: string): Effect.Effect<void> => Effect.sync(() => void process.stderr.write(`${text}\n`))

/** Makes a text one line: newlines and runs of whitespace become one space. */
export const oneLine = (text: string): string => text.replace(/\s+/g, " ").trim()

const annotationText = (annotations: HashMap.HashMap<string, unknown>): string => {
  const parts: Array<string> = []
  for (const [key, value] of HashMap.toEntries(annotations)) {
    parts.push(`${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
  }
  return parts.length === 0 ? "" : ` (${parts.join(", ")})`
}

/**
 * The command's logger: one line per entry on stderr,
 * `grpc-anchor: warning: message (key=value, ...)`. The cause of an entry is
 * printed only when `verbose` (it may carry stack traces).
 */
export const loggerLayer = (isVerbose: boolean): Layer.Layer<never> =>
  Layer.merge(
    Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ annotations, cause, logLevel, message }) => {
        const text = (Array.isArray(message) ? message : [message]).map((m) => (typeof m === "string" ? m : String(m))).join(" ")
        let out = `grpc-anchor: ${logLevel.label.toLowerCase()}: ${oneLine(text)}${annotationText(annotations)}`
        if (isVerbose && !Cause.isEmpty(cause)) out += `\n${Cause.pretty(cause)}`
        process.stderr.write(`${out}\n`)
      })
    ),
    Logger.minimumLogLevel(isVerbose ? LogLevel.Debug : LogLevel.Warning)
  )

/**
 * Splits `--etcd` text into hosts (`host:port`, comma separated, `http://`
 * or `https://` allowed); fails with a usage error when it lists none.
 */
export const parseHosts = (flag: string, text: string): Effect.Effect<ReadonlyArray<string>, CliError> => {
  const hosts = text.split(",").map((h) => h.trim())
  if (hosts.length === 0 || hosts.some((h) => h.length === 0)) {
    return Effect.fail(usage(`${flag} must list etcd endpoints as host:port[,host:port...], got ${JSON.stringify(text)}`))
  }
  return Effect.succeed(hosts)
}

/**
 * An Etcd client for `hosts`, with TLS and credentials from the environment
 * (`ETCD_CACERT`, `ETCD_CERT`, `ETCD_KEY`, `ETCD_USERNAME`, `ETCD_PASSWORD`).
 */
export const etcdLayer = (hosts: ReadonlyArray<string>): Layer.Layer<Etcd.Etcd, CliError> =>
  Layer.scoped(
    Etcd.Etcd,
    Etcd.config.pipe(
      Effect.mapError((error) => usage(`etcd settings in the environment: ${oneLine(error.message)}`)),
      Effect.flatMap((options) =>
        Etcd.make({ ...options, hosts }).pipe(Effect.mapError((error) => failure(oneLine(error.message), error)))
      )
    )
  )

/**
 * One cheap read (a key count under `prefix`) so that an unreachable etcd, or
 * refused credentials, end the command with one clear line instead of a
 * silent retry loop.
 */
export const probeEtcd = (prefix: string): Effect.Effect<void, CliError, Etcd.Etcd> =>
  Effect.gen(function* () {
    const etcd = yield* Etcd.Etcd
    yield* etcd.use(`read ${prefix}`, (client) => client.getAll().prefix(prefix).count()).pipe(
      Effect.mapError((error) =>
        failure(
          error.reason === "Unavailable"
            ? `cannot reach etcd at ${etcd.hosts.join(",")}: ${oneLine(error.detail) || "no answer"}`
            : `etcd at ${etcd.hosts.join(",")} refused: ${oneLine(error.message)}`,
          error
        )
      )
    )
  })
