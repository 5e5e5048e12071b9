#!/usr/bin/env node
/**
 * The `grpc-anchor` command: `demo`, `resolve`, `watch`, `register`.
 *
 * Errors end the command with one line on stderr (`grpc-anchor: ...`) and an
 * exit code: 2 for bad usage (flags, values, targets), 1 for failures at run
 * time; `--verbose` adds the full cause. SIGINT and SIGTERM interrupt the
 * command, which runs its finalizers (close channels, revoke leases, stop
 * child processes) and exits 0 (130 for an interrupted demo).
 */
import { readFileSync } from "node:fs"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HashMap from "effect/HashMap"
import * as Demo from "./demo.js"
import { CliError, colors, EXIT_FAILURE, EXIT_USAGE, interruptedExitCode, loggerLayer, oneLine, stripAnsi } from "./internal/common.js"
import * as Register from "./register.js"
import * as Resolve from "./resolve.js"
import * as Watch from "./watch.js"

/** The package version, read at run time (same relative path from src/ and dist/). */
const version = ((): string => {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version?: unknown }
    return typeof pkg.version === "string" ? pkg.version : "unknown"
  } catch {
    return "unknown"
  }
})()

const root = Command.make("grpc-anchor").pipe(
  Command.withDescription("Connection pools with weighted round robin for @grpc/grpc-js, and etcd service discovery."),
  Command.withSubcommands([Demo.command, Resolve.command, Watch.command, Register.command])
)

const cli = Command.run(root, { name: "grpc-anchor", version })

const isVerbose = process.argv.slice(2).includes("--verbose")

// Node's deprecation warnings from dependencies (e.g. a TLS server name set
// to an IP address) are not the user's concern; --verbose shows them.
if (!isVerbose) process.noDeprecation = true

/** `grpc-anchor SUBCOMMAND --help` when a known subcommand was given, else `grpc-anchor --help`. */
const helpCommand = (): string => {
  const sub = process.argv[2]
  return sub !== undefined && HashMap.has(Command.getSubcommands(root), sub) ? `grpc-anchor ${sub} --help` : "grpc-anchor --help"
}

/**
 * @effect/cli prints parse errors itself (as multi-line, styled help text);
 * they are dropped here and reported as one line by {@link report}. Help text
 * loses its styling when stdout is not a terminal.
 */
const withQuietConsole = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.consoleWith((base) =>
    Effect.withConsole(effect, {
      ...base,
      error: () => Effect.void,
      // Help and version texts end with a newline of their own.
      log: (...args: ReadonlyArray<unknown>) =>
        base.log(...args.map((a) => (typeof a === "string" ? (colors() ? a : stripAnsi(a)).replace(/\n$/, "") : a)))
    })
  )

const report = (message: string, cause: Cause.Cause<unknown> | undefined) =>
  Effect.sync(() => {
    if (message.length > 0) process.stderr.write(`grpc-anchor: ${message}\n`)
    if (isVerbose && cause !== undefined) process.stderr.write(`${Cause.pretty(cause)}\n`)
  })

const main: Effect.Effect<number> = Effect.suspend(() => cli(process.argv)).pipe(
  withQuietConsole,
  Effect.as(0),
  Effect.catchAllCause((cause) => {
    // SIGINT/SIGTERM: the teardown below picks the exit code.
    if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
    const failure = Cause.failureOption(cause)
    if (failure._tag === "Some") {
      const error = failure.value
      if (ValidationError.isValidationError(error)) {
        // Several problems come as paragraphs: one line, separated by "; ".
        const text = stripAnsi(HelpDoc.toAnsiText(error.error))
          .split(/\n\s*\n/)
          .map(oneLine)
          .filter((p) => p.length > 0)
          .join("; ")
        return Effect.as(report(`${text} (see ${helpCommand()})`, undefined), EXIT_USAGE)
      }
      if (error instanceof CliError) {
        const detail = error.cause === undefined ? undefined : Cause.fail(error.cause)
        return Effect.as(report(error.message, detail), error.exitCode)
      }
    }
    const squashed = Cause.squash(cause)
    const message = squashed instanceof Error ? squashed.message : String(squashed)
    return Effect.as(
      report(`unexpected error: ${oneLine(message)}${isVerbose ? "" : " (run with --verbose for details)"}`, cause),
      EXIT_FAILURE
    )
  }),
  Effect.provide(NodeContext.layer),
  Effect.provide(loggerLayer(isVerbose))
)

NodeRuntime.runMain(main, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    const code = Exit.isSuccess(exit)
      ? (exit.value as number)
      : Cause.isInterruptedOnly(exit.cause)
      ? interruptedExitCode()
      : EXIT_FAILURE
    // Exit once stdout is flushed, rather than waiting for every handle
    // (sockets being closed, timers of libraries) to go away on its own.
    process.stdout.write("", () => {
      onExit(code)
      process.exit(code)
    })
  }
})
