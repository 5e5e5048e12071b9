#!/usr/bin/env node
/**
 * The `grpc-anchor` command: `demo`, `resolve`, `watch`, `register`.
 *
 * Errors end the command with one line on stderr (`grpc-anchor: ...`) and an
 * exit code: 2 for bad usage (flags, values, targets), 1 for failures at run
 * time; `--verbose` adds the full cause. SIGINT and SIGTERM interrupt the
 * command, which runs its finalizers (close channels, revoke leases, stop
 * child processes) and exits 0 (130 for an interrupted demo). A repeated
 * signal during that shutdown changes nothing: only SIGKILL skips it.
 */
import { readFileSync } from "node:fs"
import { stripVTControlCharacters } from "node:util"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import { CliConfig, CliError, CliOutput, Command, GlobalFlag } from "effect/cli"
import * as Demo from "./demo/command.js"
import { colors, CommandError, EXIT_FAILURE, EXIT_USAGE, interruptedExitCode, loggerLayer, oneLine, Verbose } from "./internal/common.js"
import * as Register from "./register.js"
import * as Resolve from "./resolve.js"
import * as Watch from "./watch.js"

/** The package version, read at run time (same relative path from src/ and dist/). */
const version = ((): string => {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: unknown }
    return typeof pkg.version === "string" ? pkg.version : "unknown"
  } catch {
    return "unknown"
  }
})()

const subcommands = [Demo.command, Resolve.command, Watch.command, Register.command] as const

const root = Command.make("grpc-anchor").pipe(
  Command.withDescription("Connection pools with weighted round robin for @grpc/grpc-js, and etcd service discovery."),
  Command.withSubcommands(subcommands),
  Command.withGlobalFlags([Verbose])
)

// The logger's level, Node's deprecation warnings and the error report are
// set up before (and outside) the parsed command, so `--verbose` is read
// here too; the parser accepts it anywhere (see Verbose).
const isVerbose = process.argv.slice(2).includes("--verbose")

// Node's deprecation warnings from dependencies (e.g. a TLS server name set
// to an IP address) are not the user's concern; --verbose shows them.
if (!isVerbose) process.noDeprecation = true

/** `grpc-anchor SUBCOMMAND --help` when a known subcommand was given, else `grpc-anchor --help`. */
const helpCommand = (): string => {
  const sub = process.argv[2]
  return sub !== undefined && subcommands.some((c) => c.name === sub) ? `grpc-anchor ${sub} --help` : "grpc-anchor --help"
}

/**
 * Help and the version go to stdout (help styled only on a terminal without
 * NO_COLOR); parse errors are not printed here but reported as one line by
 * {@link report}.
 */
const presenter: CliOutput.Presenter = {
  present: (event) =>
    Effect.sync(() => {
      switch (event._tag) {
        case "Version":
          return void process.stdout.write(`${event.version}\n`)
        case "Help": {
          const text = CliOutput.defaultFormatter({ colors: colors() }).formatHelpDoc(event.helpDoc)
          return void process.stdout.write(`${(colors() ? text : stripVTControlCharacters(text)).replace(/\n+$/, "")}\n`)
        }
        case "InvalidInvocation":
          return
      }
    })
}

/** One parse error as text: the parser's message on one line, its suggestions after it. */
const parseErrorText = (error: CliError.NonShowHelpErrors): string => {
  const suggestions = "suggestions" in error ? error.suggestions : []
  const message = error.message.split("\n\n")[0]!
  return oneLine(message) + (suggestions.length > 0 ? ` (did you mean ${suggestions.join(" or ")}?)` : "")
}

const report = (message: string, cause: Cause.Cause<unknown> | undefined) =>
  Effect.sync(() => {
    if (message.length > 0) process.stderr.write(`grpc-anchor: ${message}\n`)
    if (isVerbose && cause !== undefined) process.stderr.write(`${Cause.pretty(cause)}\n`)
  })

const main: Effect.Effect<number> = Command.run(root, { version }).pipe(
  Effect.as(0),
  Effect.catchCause((cause) => {
    // SIGINT/SIGTERM: the teardown below picks the exit code.
    if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
    const error = Cause.findErrorOption(cause)
    if (Option.isSome(error)) {
      const e = error.value
      if (CliError.isCliError(e) && e._tag === "ShowHelp") {
        // No errors: `grpc-anchor` alone, its help was printed.
        if (e.errors.length === 0) return Effect.succeed(0)
        return Effect.as(report(`${e.errors.map(parseErrorText).join("; ")} (see ${helpCommand()})`, undefined), EXIT_USAGE)
      }
      if (e instanceof CommandError) {
        const detail = e.cause === undefined ? undefined : Cause.fail(e.cause)
        return Effect.as(report(e.message, detail), e.exitCode)
      }
    }
    const squashed = Cause.squash(cause)
    const message = squashed instanceof Error ? squashed.message : String(squashed)
    return Effect.as(
      report(`unexpected error: ${oneLine(message)}${isVerbose ? "" : " (run with --verbose for details)"}`, cause),
      EXIT_FAILURE
    )
  }),
  Effect.provide(CliOutput.layerPresenter(presenter)),
  Effect.provide(CliConfig.layer({ builtIns: [GlobalFlag.Help, GlobalFlag.Version] })),
  Effect.provide(NodeServices.layer),
  Effect.provide(loggerLayer(isVerbose))
)

// The runtime interrupts the command on the first SIGINT/SIGTERM; a repeated
// signal (GNU `timeout` sends two, an impatient Ctrl-C) must not kill the
// process before the finalizers (lease revoked, servers stopped) have run
// and the exit code is set: while this listener exists, Node does not apply
// the signal's default action. The process ends with process.exit below.
const stay = (): void => {}
process.on("SIGINT", stay)
process.on("SIGTERM", stay)

NodeRuntime.runMain(main, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    const code = Exit.isSuccess(exit) ? (exit.value as number) : Cause.hasInterruptsOnly(exit.cause) ? interruptedExitCode() : EXIT_FAILURE
    // Exit once stdout is flushed, rather than waiting for every handle
    // (sockets being closed, timers of libraries) to go away on its own.
    process.stdout.write("", () => {
      onExit(code)
      process.exit(code)
    })
  }
})
