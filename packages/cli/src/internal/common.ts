/**
 * What every `grpc-anchor` subcommand shares: the error that ends a command
 * with a message and an exit code, the `--verbose` flag and range checks of
 * flag values, plain writes to stdout/stderr, small text helpers, the
 * logger, target parsing with a caret under the bad piece, and the etcd
 * client built from a host list (TLS and credentials from the environment,
 * as the etcd resolver does).
 *
 * Exit codes: 0 done, 1 failed at run time (etcd unreachable, port in use,
 * the demo's checks failed), 2 bad usage (flags, values, target), 130 the
 * demo was interrupted.
 */
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as References from "effect/References"
import * as Result from "effect/Result"
import { CliError, Flag, GlobalFlag } from "effect/cli"
import { Etcd } from "grpc-anchor"
import { Target } from "grpc-anchor/core"

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
 * with `--verbose`. An empty message prints nothing (the command already
 * said why, e.g. `resolve --json`).
 *
 * @example
 * ```ts
 * Effect.fail(new CommandError({ message: "no such service", exitCode: EXIT_FAILURE }))
 * ```
 */
export class CommandError extends Data.TaggedError("CommandError")<{
  readonly message: string
  readonly exitCode: number
  readonly cause?: unknown
}> {}

/** A usage error (exit 2). */
export const usage = (message: string): CommandError => new CommandError({ message, exitCode: EXIT_USAGE })

/** A run-time failure (exit 1). */
export const failure = (message: string, cause?: unknown): CommandError =>
  new CommandError({ message, exitCode: EXIT_FAILURE, ...(cause === undefined ? {} : { cause }) })

/**
 * `--verbose`, accepted anywhere on the command line: debug logs, and the
 * full cause (with stack traces) of an error. The process-wide effects of
 * the flag (the logger's level, Node's deprecation warnings, the error
 * report) are set from `process.argv` before parsing, see bin.ts.
 */
export const Verbose = GlobalFlag.Setting("verbose")({
  flag: Flag.Boolean("verbose").pipe(
    Flag.withDefault(false),
    Flag.withDescription("Print debug logs, and the full cause (with stack traces) of an error.")
  )
})

/**
 * A check for `Flag.mapEffect`: the value of `flag` within `min..max`,
 * else a usage error `${flag} must be ${expected}, got ${value}`.
 *
 * @example
 * ```ts
 * Flag.Int("ttl").pipe(Flag.mapEffect(inRange("--ttl", 1, 60)))
 * ```
 */
export const inRange =
  (flag: string, min: number, max: number, expected = `between ${min} and ${max}`) =>
  (value: number): Effect.Effect<number, CliError.CliError> =>
    value >= min && value <= max
      ? Effect.succeed(value)
      : Effect.fail(new CliError.ValidationError({ message: `${flag} must be ${expected}, got ${value}` }))

/**
 * A flag's help text ending with what a user must know beside it: the value
 * it takes when not given, or that it must be given (effect/cli's help shows
 * neither on its own).
 *
 * @example
 * ```ts
 * Flag.Int("ttl").pipe(Flag.withDefault(TTL), Flag.withDescription(helpText("Lease TTL in seconds.", { default: TTL })))
 * // --ttl SECONDS    Lease TTL in seconds. (default: 10)
 * ```
 */
export const helpText = (text: string, need: { readonly default: string | number } | "required"): string =>
  `${text} (${need === "required" ? "required" : `default: ${need.default}`})`

/** Whether stdout is a terminal (and colors are welcome). */
export const stdoutIsTty = (): boolean => process.stdout.isTTY === true

/** Whether to use colors on stdout: a terminal, and NO_COLOR not set. */
export const colors = (): boolean => stdoutIsTty() && (process.env["NO_COLOR"] ?? "") === ""

/** Writes text to stdout as is (no newline added). */
export const write = (text: string): Effect.Effect<void> => Effect.sync(() => void process.stdout.write(text))

/** Writes one line to stdout. */
export const line = (text: string): Effect.Effect<void> => write(`${text}\n`)

/** Writes one line to stderr. */
export const errorLine = (text: string): Effect.Effect<void> => Effect.sync(() => void process.stderr.write(`${text}\n`))

/** Makes a text one line: newlines and runs of whitespace become one space. */
export const oneLine = (text: string): string => text.replace(/\s+/g, " ").trim()

/** A share (0..1) as a percentage with one decimal, e.g. `33.3%`. */
export const percent = (share: number): string => `${(share * 100).toFixed(1)}%`

/** `n` and the noun, plural unless `n` is 1: `plural(2, "endpoint")` is `2 endpoints`. */
export const plural = (n: number, noun: string, nouns = `${noun}s`): string => `${n} ${n === 1 ? noun : nouns}`

const annotationText = (annotations: Readonly<Record<string, unknown>>): string => {
  const parts = Object.entries(annotations).map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
  return parts.length === 0 ? "" : ` (${parts.join(", ")})`
}

/**
 * The command's logger: one line per entry on stderr,
 * `grpc-anchor: warn: message (key=value, ...)`. The cause of an entry is
 * printed only when `verbose` (it may carry stack traces). It replaces every
 * other logger, so an entry is printed once.
 */
export const loggerLayer = (isVerbose: boolean): Layer.Layer<never> =>
  Layer.merge(
    Logger.layer([
      Logger.make(({ cause, fiber, logLevel, message }) => {
        const text = (Array.isArray(message) ? message : [message]).map((m) => (typeof m === "string" ? m : String(m))).join(" ")
        let out = `grpc-anchor: ${logLevel.toLowerCase()}: ${oneLine(text)}${annotationText(fiber.getRef(References.CurrentLogAnnotations))}`
        if (isVerbose && cause.reasons.length > 0) out += `\n${Cause.pretty(cause)}`
        process.stderr.write(`${out}\n`)
      })
    ]),
    Layer.succeed(References.MinimumLogLevel, isVerbose ? "Debug" : "Warn")
  )

/** Widest target excerpt shown above a caret. */
const EXCERPT_WIDTH = 100

/**
 * How `input` is shown above a caret, one token per code point, with `at`
 * its UTF-16 offset in `input`: every character a terminal shows one column
 * wide is kept (printable ASCII and Latin-1/Latin Extended letters), anything
 * else (controls, invisible or wide characters) is written `\u{hex}`, so the
 * caret's column is exact.
 */
const displayOf = (input: string): ReadonlyArray<{ readonly text: string; readonly at: number }> => {
  const tokens: Array<{ text: string; at: number }> = []
  for (let i = 0; i < input.length; ) {
    const cp = input.codePointAt(i)!
    const plain = (cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa1 && cp <= 0x24f && cp !== 0xad)
    tokens.push({ text: plain ? String.fromCodePoint(cp) : `\\u{${cp.toString(16)}}`, at: i })
    i += cp > 0xffff ? 2 : 1
  }
  return tokens
}

/**
 * Two lines, each indented by two spaces: an excerpt of `input` and a caret
 * line whose `^` sits under UTF-16 offset `position`, followed by `~` under
 * the rest of the piece (`pieceLength` UTF-16 units). Long inputs are cut
 * around the position with `...`.
 *
 * @example
 * ```ts
 * caretLines("pass:///a:1#0", 12, 1) // ["  pass:///a:1#0", "              ^"]
 * ```
 */
export const caretLines = (input: string, position: number, pieceLength: number): readonly [string, string] => {
  const tokens = displayOf(input)
  // The token the caret points at: the one holding `position`, or one past the end.
  let at = tokens.findIndex((t, i) => position >= t.at && position < (tokens[i + 1]?.at ?? input.length))
  if (at === -1) at = tokens.length
  const width = (from: number, to: number) => tokens.slice(from, to).reduce((sum, t) => sum + t.text.length, 0)
  let from = 0
  let to = tokens.length
  if (width(0, tokens.length) > EXCERPT_WIDTH) {
    from = at
    while (from > 0 && width(from - 1, at) <= EXCERPT_WIDTH / 3) from--
    to = at
    while (to < tokens.length && width(from, to + 1) <= EXCERPT_WIDTH) to++
  }
  const left = from > 0 ? "..." : ""
  const right = to < tokens.length ? "..." : ""
  const text = `  ${left}${tokens.slice(from, to).map((t) => t.text).join("")}${right}`
  const end = tokens.findIndex((t) => t.at >= position + pieceLength)
  const pieceEnd = Math.min(end === -1 ? tokens.length : end, to)
  const underline = Math.max(1, width(at, pieceEnd))
  const caret = `  ${" ".repeat(left.length + width(from, at))}^${"~".repeat(underline - 1)}`
  return [text, caret]
}

/**
 * Parses a target; a malformed one is a usage error whose message is
 * `${what}: <the core's message>`, then the excerpt and the caret under the
 * offending piece (see {@link caretLines}).
 *
 * @example
 * ```ts
 * parseTarget("pass:///a:1#0") // fails: "bad target: the connection count must be ...\n  pass:///a:1#0\n              ^"
 * ```
 */
export const parseTarget = (text: string, what = "bad target"): Effect.Effect<Target.Target, CommandError> =>
  Result.match(Target.parse(text), {
    onFailure: (error) => {
      const [excerpt, caret] = caretLines(error.input, error.position, error.piece.length)
      return Effect.fail(usage(`${what}: ${error.message}\n${excerpt}\n${caret}`))
    },
    onSuccess: Effect.succeed
  })

/**
 * A flag listing etcd endpoints, `host:port[,host:port...]`: the list, or a
 * usage error when it names none.
 */
export const hostsFlag = (name: string): Flag.Flag<ReadonlyArray<string>> =>
  Flag.String(name).pipe(
    Flag.mapEffect((text) => {
      const hosts = Etcd.splitHosts(text)
      return hosts.length === 0
        ? Effect.fail(
            new CliError.ValidationError({
              message: `--${name} must list etcd endpoints as host:port[,host:port...], got ${JSON.stringify(text)}`
            })
          )
        : Effect.succeed(hosts)
    })
  )

/**
 * `hosts` when there are any, else the hosts of `ETCD_ENDPOINTS`; the usage
 * error `none()` when neither lists one.
 */
export const hostsOrEnv = (hosts: ReadonlyArray<string>, none: () => CommandError): Effect.Effect<ReadonlyArray<string>, CommandError> =>
  hosts.length > 0
    ? Effect.succeed(hosts)
    : Config.option(Etcd.hostsConfig).pipe(
        Effect.orElseSucceed(() => Option.none<ReadonlyArray<string>>()),
        Effect.flatMap((env) => (Option.isSome(env) && env.value.length > 0 ? Effect.succeed(env.value) : Effect.fail(none())))
      )

/**
 * An Etcd client for `hosts`, with TLS and credentials from the environment
 * (`ETCD_CACERT`, `ETCD_CERT`, `ETCD_KEY`, `ETCD_USERNAME`, `ETCD_PASSWORD`;
 * `ETCD_ENDPOINTS` is not read).
 */
export const etcdLayer = (hosts: ReadonlyArray<string>): Layer.Layer<Etcd.Etcd, CommandError> =>
  Etcd.layerForHosts(hosts).pipe(
    Layer.catchCause((cause) => {
      const failed = Cause.findErrorOption(cause)
      // Defects and interrupts are not the user's settings: pass them on as they are.
      if (Option.isNone(failed)) return Layer.effect(Etcd.Etcd, Effect.failCause(cause as Cause.Cause<never>))
      const error: unknown = failed.value
      const message = oneLine(error instanceof Error ? error.message : String(error))
      return Layer.effect(
        Etcd.Etcd,
        Effect.fail(error instanceof Etcd.EtcdError ? failure(message, error) : usage(`etcd settings in the environment: ${message}`))
      )
    })
  )

/**
 * One etcd read (its request names it), with its error as one clear line:
 * `cannot reach etcd at HOSTS: ...` or `etcd at HOSTS refused: ...`.
 */
export const readEtcd = <A>(
  read: (etcd: Etcd.Etcd.Shape) => Effect.Effect<A, Etcd.EtcdError>
): Effect.Effect<A, CommandError, Etcd.Etcd> =>
  Effect.flatMap(Etcd.Etcd, (etcd) =>
    read(etcd).pipe(
      Effect.mapError((error) =>
        failure(
          error.reason === "Unavailable"
            ? `cannot reach etcd at ${etcd.hosts.join(",")}: ${oneLine(error.detail) || "no answer"}`
            : `etcd at ${etcd.hosts.join(",")} refused: ${oneLine(error.message)}`,
          error
        )
      )
    )
  )

/**
 * One cheap read (a key count under `prefix`) so that an unreachable etcd, or
 * refused credentials, end the command with one clear line instead of a
 * silent retry loop.
 */
export const probeEtcd = (prefix: string): Effect.Effect<void, CommandError, Etcd.Etcd> =>
  Effect.asVoid(readEtcd((etcd) => etcd.range(`read ${prefix}`, { ...Etcd.prefixRange(prefix), count_only: true })))
