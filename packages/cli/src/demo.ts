/**
 * `grpc-anchor demo [--duration S] [--json] [--etcd HOST:PORT]`: three echo
 * servers on loopback, each its own child process (so killing one is a real
 * SIGKILL, sockets and all), one grpc-anchor channel over them, calls for
 * about `--duration` seconds with 16 in flight, and a live view of what each
 * server sees: its connections, the calls it served, its share against the
 * expected share.
 *
 * Script, with D the duration:
 * - all up: `pass:///127.0.0.1:P1#3,127.0.0.1:P2#2,127.0.0.1:P3#1` (or, with
 *   `--etcd`, the three registered in etcd and the channel on
 *   `etcd://HOST:PORT/demo#2`);
 * - at 0.35 D the third server is killed (SIGKILL); once the channel sees all
 *   its connections down, the "third down" phase starts (with `--etcd`, the
 *   record then expires with its lease of `--ttl` seconds);
 * - at 0.65 D (with `--etcd`, after the record is gone) it is started again on
 *   the same port; once every connection is READY again, "rejoined" starts
 *   and runs until D (at least 0.15 D).
 *
 * Success (exit 0) is every check of {@link evaluate}: the shares of each
 * phase, the final connection counts seen by the servers, and no failed call
 * started after the kill was seen. Otherwise exit 1.
 */
import * as grpc from "@grpc/grpc-js"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as AnchoredChannel from "../../adapters/grpc/AnchoredChannel.js"
import type { ChannelStats } from "../../adapters/grpc/Stats.js"
import * as Address from "../../core/Address.js"
import * as EtcdRecord from "../../core/EtcdRecord.js"
import * as Target from "../../core/Target.js"
import { call, EchoClient, type Echo } from "../internal/echo.js"
import { EchoProcessError, startEchoProcess, type EchoProcess } from "../internal/echoProcess.js"
import {
  CliError,
  colors,
  EXIT_FAILURE,
  EXIT_INTERRUPTED,
  errorLine,
  etcdLayer,
  failure,
  inRange,
  line,
  oneLine,
  parseHosts,
  parseTarget,
  percent,
  readEtcd,
  setInterruptedExitCode,
  stdoutIsTty,
  stripAnsi,
  usage,
  verbose,
  write
} from "./internal/common.js"

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

/** Largest gap, in percentage points, between a server's share in a phase and its expected share. */
export const SHARE_TOLERANCE = 2
/** Fewest calls a judged phase needs before its shares mean anything. */
export const MIN_PHASE_CALLS = 200
/** How long a judged phase may run past its planned end to reach MIN_PHASE_CALLS. */
const PHASE_EXTENSION_MS = 10_000
/** Bound on the channel seeing the killed server's connections down. */
const KILL_SEEN_TIMEOUT_MS = 5_000
/** Bound on the channel having every connection READY after the restart. */
const REJOIN_TIMEOUT_MS = 15_000
/** Bound, past the TTL, on the channel dropping the killed server's record (etcd). */
const RECORD_GONE_SLACK_MS = 8_000
/** Deadline of one call. */
const CALL_DEADLINE_MS = 5_000
const KILL_AT = 0.35
const RESTART_AT = 0.65
const MIN_REJOINED = 0.15
/** Channel options: reconnect quickly to the restarted server. */
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 500
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

/** The phases judged for shares, and the two transitions between them. */
export type PhaseName = "all up" | "kill -> seen" | "third down" | "restart -> rejoined" | "rejoined"

interface Backend {
  readonly name: string
  /** Weight in the target (pass) or 1 (etcd: every endpoint gets the same count). */
  readonly weight: number
  /** Connections the channel should open to it. */
  readonly expectedConnections: number
  /** 0 until first started; a restart reuses it. */
  port: number
  /** The running server; undefined while it is down. */
  process: EchoProcess | undefined
  /** Calls this server answered, counted by the client over the whole run. */
  answered: number
  /** Channel view: slots for this address, and how many are READY. */
  slots: number
  ready: number
  /** Server view (its ConnectionObserver), from the last poll of the current process. */
  serverConnections: number | undefined
  serverCalls: number | undefined
  perConnection: ReadonlyArray<number>
}

interface Phase {
  readonly name: PhaseName
  readonly judged: boolean
  readonly startMs: number
  endMs: number | undefined
  calls: number
  failed: number
  readonly answers: Map<string, number>
  /** Expected share per server (0..1), judged phases only. */
  readonly expected: ReadonlyMap<string, number> | undefined
}

interface FailedCall {
  readonly phase: PhaseName
  readonly startMs: number
  readonly endMs: number
  readonly error: string
}

/** What the run measured; {@link evaluate} judges it. */
export interface State {
  readonly mode: "pass" | "etcd"
  target: string
  readonly durationMs: number
  readonly backends: ReadonlyArray<Backend>
  readonly phases: Array<Phase>
  readonly events: Array<{ readonly atMs: number; readonly text: string }>
  readonly failures: Array<FailedCall>
  failedTotal: number
  /** Failed calls started at or after `killSeenMs`. */
  failedAfterKillSeen: number
  /** Failed calls that ended before `killSentMs`. */
  failedBeforeKill: number
  okTotal: number
  inFlight: number
  t0: number
  killSentMs: number | undefined
  killSeenMs: number | undefined
  recordGoneMs: number | undefined
  restartMs: number | undefined
  /** When the restarted process was serving (and, with etcd, registered). */
  restartedMs: number | undefined
  rejoinedMs: number | undefined
  endMs: number | undefined
}

const now = (state: State): number => performance.now() - state.t0
const addressOf = (backend: Backend): string => Address.format({ host: "127.0.0.1", port: backend.port })
const currentPhase = (state: State): Phase => state.phases[state.phases.length - 1]!
const victim = (state: State): Backend => state.backends[state.backends.length - 1]!

const expectedShares = (backends: ReadonlyArray<Backend>, up: (b: Backend) => boolean): ReadonlyMap<string, number> => {
  const total = backends.filter(up).reduce((sum, b) => sum + b.weight, 0)
  return new Map(backends.map((b) => [b.name, up(b) ? b.weight / total : 0]))
}

const enterPhase = (state: State, name: PhaseName): void => {
  const at = now(state)
  const last = state.phases[state.phases.length - 1]
  if (last !== undefined) last.endMs = at
  const judged = name === "all up" || name === "third down" || name === "rejoined"
  const expected = judged
    ? expectedShares(state.backends, (b) => name !== "third down" || b !== victim(state))
    : undefined
  state.phases.push({ name, judged, startMs: at, endMs: undefined, calls: 0, failed: 0, answers: new Map(), expected })
}

// ---------------------------------------------------------------------------
// Summary and checks
// ---------------------------------------------------------------------------

/** One condition of success, with what was measured. */
export interface Check {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
}

/** What `demo --json` prints. */
export interface Summary {
  readonly ok: boolean
  readonly mode: "pass" | "etcd"
  readonly target: string
  readonly durationMs: number
  readonly calls: { readonly ok: number; readonly failed: number }
  readonly servers: ReadonlyArray<{
    readonly name: string
    readonly address: string
    readonly weight: number
    readonly expectedConnections: number
    /** Live connections the server's ConnectionObserver saw at the end. */
    readonly connections: number | null
    /** Calls per live connection, as the server counted them. */
    readonly callsPerConnection: ReadonlyArray<number>
    /** Calls the client got an answer from this server for, over the run. */
    readonly answered: number
  }>
  readonly phases: ReadonlyArray<{
    readonly name: PhaseName
    readonly judged: boolean
    readonly startMs: number
    readonly endMs: number
    readonly calls: number
    readonly failed: number
    readonly shares: ReadonlyArray<{ readonly server: string; readonly calls: number; readonly share: number; readonly expected: number | null }>
  }>
  readonly events: ReadonlyArray<{ readonly atMs: number; readonly text: string }>
  readonly failures: {
    readonly total: number
    /** Failed calls started at or after the moment the channel saw the kill. */
    readonly afterKillSeen: number
    /** Failed calls that ended before the kill was sent. */
    readonly beforeKill: number
    readonly samples: ReadonlyArray<FailedCall>
  }
  readonly checks: ReadonlyArray<Check>
}

const ms = (x: number): string => `${(x / 1_000).toFixed(1)}s`
const thousands = (n: number): string => n.toLocaleString("en-US")

/**
 * The checks that decide the exit code:
 * - in each judged phase ("all up", "third down", "rejoined") at least
 *   {@link MIN_PHASE_CALLS} calls, and every server's share of that phase's
 *   answered calls within {@link SHARE_TOLERANCE} points of its weight over
 *   the weights of the servers up (3/6, 2/6, 1/6; then 3/5, 2/5, 0; pass) or
 *   of an equal split (etcd);
 * - at the end, every server's ConnectionObserver sees exactly its expected
 *   number of live connections (3/2/1; 2/2/2 with etcd);
 * - no failed call among those started at or after the moment the channel
 *   saw every connection to the killed server leave READY, and none that
 *   ended before the kill was sent (calls in flight on the killed server, or
 *   picked in the instant before the channel noticed, may fail: they are
 *   counted and shown, not judged);
 * - the kill was seen within 5 s, the restarted server rejoined within 15 s,
 *   and (etcd) its record expired within the TTL + 8 s.
 */
export const evaluate = (state: State, ttlSeconds: number): Summary => {
  const checks: Array<Check> = []
  const endMs = state.endMs ?? now(state)
  const phases = state.phases.map((p) => {
    const answered = [...p.answers.values()].reduce((a, b) => a + b, 0)
    return {
      name: p.name,
      judged: p.judged,
      startMs: Math.round(p.startMs),
      endMs: Math.round(p.endMs ?? endMs),
      calls: p.calls,
      failed: p.failed,
      shares: state.backends.map((b) => {
        const calls = p.answers.get(b.name) ?? 0
        return { server: b.name, calls, share: answered === 0 ? 0 : calls / answered, expected: p.expected?.get(b.name) ?? null }
      })
    }
  })
  for (const name of ["all up", "third down", "rejoined"] as const) {
    const phase = phases.find((p) => p.name === name)
    if (phase === undefined) {
      checks.push({ name: `shares while ${name}`, ok: false, detail: "the phase never started" })
      continue
    }
    const worst = Math.max(...phase.shares.map((s) => Math.abs(s.share - (s.expected ?? 0)) * 100))
    const enough = phase.calls >= MIN_PHASE_CALLS
    const shares = phase.shares.map((s) => `${s.server} ${percent(s.share)} (expected ${percent(s.expected ?? 0)})`).join(", ")
    checks.push({
      name: `shares while ${name}`,
      ok: enough && worst <= SHARE_TOLERANCE,
      detail: enough
        ? `${shares}; largest gap ${worst.toFixed(2)} points, allowed ${SHARE_TOLERANCE} (${thousands(phase.calls)} calls)`
        : `only ${phase.calls} calls, fewer than ${MIN_PHASE_CALLS}: too few to judge (try a longer --duration)`
    })
  }
  const counts = state.backends.map((b) => `${b.name} ${b.serverConnections ?? "?"}/${b.expectedConnections}`).join(", ")
  checks.push({
    name: "connections seen by the servers at the end",
    ok: state.backends.every((b) => b.serverConnections === b.expectedConnections),
    detail: counts
  })
  const killSeen = state.killSeenMs
  const afterKillSeen = killSeen === undefined ? [] : state.failures.filter((f) => f.startMs >= killSeen)
  const afterKillSeenCount = state.failedAfterKillSeen
  const beforeKill = state.failedBeforeKill
  checks.push({
    name: "no failed call started after the kill was seen",
    ok: killSeen !== undefined && afterKillSeenCount === 0,
    detail:
      killSeen === undefined
        ? "the kill was never seen"
        : `${afterKillSeenCount} failed after ${ms(killSeen)}${afterKillSeen[0] === undefined ? "" : `, e.g. ${afterKillSeen[0].error}`}; ` +
          `${state.failedTotal - afterKillSeenCount - beforeKill} cut by the kill (in flight, or picked before the channel saw it)`
  })
  checks.push({
    name: "no failed call before the kill",
    ok: beforeKill === 0,
    detail: `${beforeKill} failed before ${state.killSentMs === undefined ? "the kill" : ms(state.killSentMs)}`
  })
  checks.push({
    name: "the channel saw the kill",
    ok: killSeen !== undefined && state.killSentMs !== undefined,
    detail:
      killSeen === undefined || state.killSentMs === undefined
        ? `not within ${KILL_SEEN_TIMEOUT_MS} ms`
        : `${Math.round(killSeen - state.killSentMs)} ms after the SIGKILL`
  })
  if (state.mode === "etcd") {
    checks.push({
      name: "the killed server's record expired",
      ok: state.recordGoneMs !== undefined,
      detail:
        state.recordGoneMs === undefined || state.killSentMs === undefined
          ? `not within the ${ttlSeconds} s TTL + ${RECORD_GONE_SLACK_MS} ms`
          : `${ms(state.recordGoneMs - state.killSentMs)} after the SIGKILL (lease TTL ${ttlSeconds} s)`
    })
  }
  checks.push({
    name: "the restarted server rejoined",
    ok: state.rejoinedMs !== undefined,
    detail:
      state.rejoinedMs === undefined || state.restartMs === undefined || state.restartedMs === undefined
        ? `not within ${REJOIN_TIMEOUT_MS} ms`
        : `every connection READY ${Math.round(state.rejoinedMs - state.restartedMs)} ms after the new process was serving ` +
          `(${Math.round(state.restartedMs - state.restartMs)} ms to start it)`
  })
  return {
    ok: checks.every((c) => c.ok),
    mode: state.mode,
    target: state.target,
    durationMs: Math.round(endMs),
    calls: { ok: state.okTotal, failed: state.failedTotal },
    servers: state.backends.map((b) => ({
      name: b.name,
      address: addressOf(b),
      weight: b.weight,
      expectedConnections: b.expectedConnections,
      connections: b.serverConnections ?? null,
      callsPerConnection: b.perConnection,
      answered: b.answered
    })),
    phases,
    events: state.events.map((e) => ({ atMs: Math.round(e.atMs), text: e.text })),
    failures: { total: state.failedTotal, afterKillSeen: afterKillSeenCount, beforeKill, samples: state.failures.slice(0, 20) },
    checks
  }
}

/** The summary as text lines. */
const renderSummary = (summary: Summary): ReadonlyArray<string> => {
  const out: Array<string> = []
  out.push("")
  out.push(`summary  ${summary.target}`)
  out.push(`         ${thousands(summary.calls.ok)} calls answered, ${thousands(summary.calls.failed)} failed, in ${ms(summary.durationMs)}`)
  out.push("")
  const names = summary.servers.map((s) => s.name)
  out.push(`  ${"phase".padEnd(20)} ${"time".padEnd(11)} ${"calls".padStart(8)} ${"failed".padStart(6)}   ${names.map((n) => `${n} share (expected)`.padEnd(20)).join(" ")}`)
  for (const p of summary.phases) {
    const cells = p.shares.map((s) => (p.judged ? `${percent(s.share).padStart(6)} (${percent(s.expected ?? 0).padStart(6)})` : `${percent(s.share).padStart(6)}`).padEnd(20))
    out.push(
      `  ${p.name.padEnd(20)} ${`${ms(p.startMs)}-${ms(p.endMs)}`.padEnd(11)} ${thousands(p.calls).padStart(8)} ${String(p.failed).padStart(6)}   ${cells.join(" ")}`
    )
  }
  out.push("")
  for (const s of summary.servers) {
    out.push(
      `  ${s.name}  ${s.address.padEnd(21)} connections ${s.connections ?? "?"}/${s.expectedConnections}` +
        `  calls per connection ${s.callsPerConnection.length === 0 ? "-" : s.callsPerConnection.map(thousands).join(" / ")}` +
        `  answered ${thousands(s.answered)}`
    )
  }
  out.push("")
  for (const c of summary.checks) out.push(`  ${c.ok ? "ok  " : "FAIL"}  ${c.name}: ${c.detail}`)
  out.push("")
  out.push(summary.ok ? "PASS: every check holds" : `FAIL: ${summary.checks.filter((c) => !c.ok).length} check(s) failed`)
  return out.map((l) => l.trimEnd())
}

// ---------------------------------------------------------------------------
// Live view
// ---------------------------------------------------------------------------

const BAR = 28

/** A bar of `share` (0..1), `width` cells, with a mark where the expected share ends. */
const bar = (share: number, expected: number | undefined, width: number): string => {
  const cells: Array<string> = Array.from({ length: width }, (_, i) => (i < Math.round(share * width) ? "█" : " "))
  if (expected !== undefined) {
    const at = Math.min(width - 1, Math.round(expected * width))
    if (cells[at] === " ") cells[at] = "│"
  }
  return cells.join("")
}

/** The shares of the current phase (or of everything so far in a transition). */
const liveShares = (state: State, phase: Phase): Map<string, number> => {
  const total = [...phase.answers.values()].reduce((a, b) => a + b, 0)
  return new Map(state.backends.map((b) => [b.name, total === 0 ? 0 : (phase.answers.get(b.name) ?? 0) / total]))
}

/** One frame of the terminal view, laid out for a terminal `columns` wide. */
const frame = (state: State, color: boolean, columns: number): ReadonlyArray<string> => {
  const paint = (code: string, text: string) => (color ? `\u001b[${code}m${text}\u001b[0m` : text)
  const phase = currentPhase(state)
  const shares = liveShares(state, phase)
  // Narrow terminals lose the per-connection column, then the address, then bar width.
  const wide = columns >= 150
  const withAddress = columns >= 100
  const barWidth = Math.max(8, Math.min(BAR, columns - (withAddress ? 76 : 53)))
  const out: Array<string> = []
  out.push(`${paint("1", "grpc-anchor demo")}  ${state.target}`)
  out.push(
    `${ms(now(state)).padStart(6)} / ${ms(state.durationMs)}   phase ${paint("1", phase.name)}   ` +
      `${thousands(state.okTotal)} answered   ${state.failedTotal === 0 ? "0 failed" : paint("33", `${state.failedTotal} failed`)}` +
      `${state.killSeenMs === undefined ? "" : ` (${state.failedAfterKillSeen} after the kill was seen)`}   ${state.inFlight} in flight`
  )
  out.push("")
  out.push(
    `  server  ${withAddress ? "address".padEnd(21) + "  " : ""}conns   ready   served   ${"share of this phase".slice(0, barWidth).padEnd(barWidth)}     now  expected` +
      (wide ? "   calls per connection" : "")
  )
  for (const b of state.backends) {
    const share = shares.get(b.name) ?? 0
    const expected = phase.expected?.get(b.name)
    const conns = b.process !== undefined ? `${b.serverConnections ?? "?"}/${b.expectedConnections}`.padStart(5) : paint("31", " down")
    const served = b.serverCalls === undefined ? "-" : thousands(b.serverCalls)
    out.push(
      `  ${b.name.padEnd(6)}  ${withAddress ? addressOf(b).padEnd(21) + "  " : ""}${conns}  ${`${b.ready}/${b.expectedConnections}`.padStart(6)}  ${served.padStart(7)}   ` +
        `${paint("36", bar(share, expected, barWidth))}  ${percent(share).padStart(6)}  ${expected === undefined ? "     -" : percent(expected).padStart(6)}` +
        (wide && b.process !== undefined ? `     ${b.perConnection.map(thousands).join(" / ")}` : "")
    )
  }
  out.push("")
  out.push("  events")
  for (const e of state.events.slice(-8)) out.push(`  ${ms(e.atMs).padStart(6)}  ${e.text}`)
  return out
}

/** One plain progress line (stdout not a terminal). */
const progress = (state: State): string => {
  const phase = currentPhase(state)
  const shares = liveShares(state, phase)
  const servers = state.backends.map((b) => {
    const expected = phase.expected?.get(b.name)
    const conns = b.process !== undefined ? `${b.serverConnections ?? "?"}/${b.expectedConnections} conns` : "down"
    return `${b.name} ${conns} ${percent(shares.get(b.name) ?? 0)}${expected === undefined ? "" : ` (exp ${percent(expected)})`}`
  })
  return `${ms(now(state)).padStart(6)}  ${phase.name.padEnd(19)}  answered ${thousands(state.okTotal)} failed ${state.failedTotal}  | ${servers.join(" | ")}`
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

interface DemoOptions {
  readonly durationMs: number
  readonly json: boolean
  readonly concurrency: number
  /** With `--etcd`: the target the channel dials, `etcd://HOSTS/SERVICE#2` (its etcd hosts and service). */
  readonly etcd: Option.Option<Target.EtcdTarget>
  readonly ttl: number
}

type Output = "tty" | "plain" | "json"

const startBackend = (backend: Backend, options: DemoOptions): Effect.Effect<EchoProcess, CliError> =>
  Effect.tryPromise({
    try: () =>
      startEchoProcess({
        name: backend.name,
        port: backend.port,
        timeoutMs: 20_000,
        ...Option.match(options.etcd, {
          onNone: () => ({}),
          onSome: (target) => ({ etcd: { hosts: target.etcd.map(Address.format).join(","), service: target.service, ttl: options.ttl } })
        })
      }),
    catch: (error) =>
      failure(
        `starting echo server ${backend.name}${backend.port === 0 ? "" : ` on port ${backend.port}`} failed: ${oneLine(
          error instanceof EchoProcessError ? error.detail : String(error)
        )}`,
        error
      )
  }).pipe(
    Effect.tap((process) =>
      Effect.sync(() => {
        backend.process = process
        backend.port = process.port
        backend.serverConnections = undefined
        backend.serverCalls = undefined
        backend.perConnection = []
      })
    )
  )

/** SIGTERM (drain, deregister), SIGKILL if it has not exited within 5 s. */
const stopBackend = (backend: Backend): Effect.Effect<void> =>
  Effect.suspend(() => {
    const process = backend.process
    backend.process = undefined
    if (process === undefined) return Effect.void
    return Effect.promise(() => process.stop()).pipe(
      Effect.timeout("5 seconds"),
      Effect.catchAll(() => Effect.promise(() => process.kill())),
      Effect.timeout("5 seconds"),
      Effect.ignore
    )
  })

const pollServers = (state: State): Effect.Effect<void> =>
  Effect.forEach(
    state.backends,
    (b) => {
      const process = b.process
      if (process === undefined) return Effect.void
      return Effect.tryPromise(() => process.stats()).pipe(
        Effect.timeout("2 seconds"),
        Effect.tap((stats) =>
          Effect.sync(() => {
            // Only the answer of the process still running counts.
            if (b.process !== process) return
            const live = stats.connections.filter((c) => c.open)
            b.serverConnections = live.length
            b.serverCalls = stats.calls
            b.perConnection = live.map((c) => c.calls)
          })
        ),
        Effect.ignore
      )
    },
    { concurrency: "unbounded", discard: true }
  )

/** Updates the channel view and moves the phases on what the channel sees. */
const onChannelStats = (state: State, stats: ChannelStats, emit: (text: string) => void): void => {
  for (const b of state.backends) {
    const address = addressOf(b)
    const slots = stats.connections.filter((c) => c.address === address)
    b.slots = slots.length
    b.ready = slots.filter((c) => c.state === "READY").length
  }
  // Before the start there is no phase yet: only the view is updated.
  const phase = state.phases[state.phases.length - 1]?.name
  const dead = victim(state)
  if (phase === "kill -> seen" && dead.ready === 0) {
    state.killSeenMs = now(state)
    enterPhase(state, "third down")
    emit(`the channel sees every connection to ${dead.name} down, ${Math.round(state.killSeenMs - (state.killSentMs ?? 0))} ms after the kill`)
  }
  if (state.mode === "etcd" && state.killSeenMs !== undefined && state.recordGoneMs === undefined && dead.slots === 0) {
    state.recordGoneMs = now(state)
    emit(`${dead.name}'s record expired: the channel dropped its connections (${ms(state.recordGoneMs - (state.killSentMs ?? 0))} after the kill)`)
  }
  if (phase === "restart -> rejoined" && state.backends.every((b) => b.slots === b.expectedConnections && b.ready === b.expectedConnections)) {
    state.rejoinedMs = now(state)
    enterPhase(state, "rejoined")
    emit(`${dead.name} rejoined: all ${state.backends.reduce((s, b) => s + b.expectedConnections, 0)} connections READY`)
  }
}

/**
 * Runs the demo and prints its summary; returns the exit code. Interrupted
 * (Ctrl-C) at any point before the summary, it stops the servers and exits
 * 130 without one.
 */
const runDemo = (options: DemoOptions): Effect.Effect<number, CliError> =>
  Effect.gen(function* () {
    yield* setInterruptedExitCode(EXIT_INTERRUPTED)
    const output: Output = options.json ? "json" : stdoutIsTty() ? "tty" : "plain"
    // The summary is printed once the scope closed, the servers stopped.
    const summary = yield* demo(options, output).pipe(
      Effect.scoped,
      Effect.onInterrupt(() => errorLine("grpc-anchor: demo interrupted; servers stopped, no summary"))
    )
    yield* line(output === "json" ? JSON.stringify(summary, null, 2) : renderSummary(summary).join("\n"))
    const code = summary.ok ? 0 : EXIT_FAILURE
    yield* setInterruptedExitCode(code)
    return code
  })

/** The run itself, in a scope that holds the servers, the channel and the traffic; the summary of what it saw. */
const demo = (options: DemoOptions, output: Output): Effect.Effect<Summary, CliError, Scope.Scope> =>
  Effect.gen(function* () {
    const color = output === "tty" && colors()
    const etcdMode = Option.isSome(options.etcd)
    const backends: Array<Backend> = [3, 2, 1].map((weight, i) => ({
      name: `s${i + 1}`,
      weight: etcdMode ? 1 : weight,
      expectedConnections: etcdMode ? 2 : weight,
      port: 0,
      process: undefined,
      answered: 0,
      slots: 0,
      ready: 0,
      serverConnections: undefined,
      serverCalls: undefined,
      perConnection: []
    }))
    const state: State = {
      mode: etcdMode ? "etcd" : "pass",
      target: "",
      durationMs: options.durationMs,
      backends,
      phases: [],
      events: [],
      failures: [],
      failedTotal: 0,
      failedAfterKillSeen: 0,
      failedBeforeKill: 0,
      okTotal: 0,
      inFlight: 0,
      t0: performance.now(),
      killSentMs: undefined,
      killSeenMs: undefined,
      recordGoneMs: undefined,
      restartMs: undefined,
      restartedMs: undefined,
      rejoinedMs: undefined,
      endMs: undefined
    }
    const emit = (text: string): void => {
      const atMs = now(state)
      state.events.push({ atMs, text })
      if (output === "plain") process.stdout.write(`${ms(atMs).padStart(6)}  ${text}\n`)
    }

    // etcd: reachable (one read, its error one clear line), and nobody else registered under the service.
    if (Option.isSome(options.etcd)) {
      const { service } = options.etcd.value
      const prefix = EtcdRecord.prefix(service)
      const keys = yield* readEtcd(`read ${prefix}`, (client) => client.getAll().prefix(prefix).keys()).pipe(
        Effect.provide(etcdLayer(options.etcd.value.etcd.map(Address.format)))
      )
      if (keys.length > 0) {
        return yield* failure(
          `service ${service} already has ${keys.length} record(s) in etcd (${keys.slice(0, 3).join(", ")}${keys.length > 3 ? ", ..." : ""}); ` +
            `stop those servers or pick another --service`
        )
      }
    }

    // The servers: stopped (SIGTERM, then SIGKILL) when the demo ends, however it ends.
    yield* Effect.addFinalizer(() => Effect.forEach(backends, stopBackend, { concurrency: "unbounded", discard: true }))
    yield* Effect.forEach(backends, (b) => startBackend(b, options), { concurrency: "unbounded", discard: true })

    const target = Option.match(options.etcd, {
      onSome: Target.format,
      onNone: () => `pass:///${backends.map((b) => `${addressOf(b)}#${b.weight}`).join(",")}`
    })
    const anchored = yield* AnchoredChannel.make({ target, channelOptions: CHANNEL_OPTIONS }).pipe(
      Effect.mapError((error) => failure(oneLine(error.message), error))
    )
    state.target = anchored.target
    const client = anchored.client(EchoClient) as unknown as Echo

    if (output === "plain") yield* line(`grpc-anchor demo  ${anchored.target}`)
    const serversUp =
      `servers up: ${backends.map((b) => `${b.name} on ${addressOf(b)} (pid ${b.process?.child.pid})`).join(", ")}` +
      Option.match(options.etcd, {
        onNone: () => "",
        onSome: ({ service }) => `, registered under ${EtcdRecord.prefix(service)} with a ${options.ttl} s lease`
      })

    // The channel's view, and the phase changes it triggers.
    yield* anchored.changes.pipe(
      Stream.runForEach((stats) => Effect.sync(() => onChannelStats(state, stats, emit))),
      Effect.forkScoped
    )
    yield* anchored.waitForReady("10 seconds").pipe(Effect.mapError((error) => failure(oneLine(error.message), error)))
    const expectedTotal = backends.reduce((s, b) => s + b.expectedConnections, 0)
    yield* waitFor(() => backends.every((b) => b.ready === b.expectedConnections && b.slots === b.expectedConnections), 10_000).pipe(
      Effect.flatMap((ok) =>
        ok
          ? Effect.void
          : Effect.fail(
              failure(
                `the channel did not open all ${expectedTotal} connections within 10 s (ready: ${backends.map((b) => `${b.name} ${b.ready}/${b.expectedConnections}`).join(", ")})`
              )
            )
      )
    )

    // Start.
    state.t0 = performance.now()
    emit(serversUp)
    enterPhase(state, "all up")
    emit(`${expectedTotal} connections READY; ${options.concurrency} calls in flight from now on`)

    // Traffic: `concurrency` loops, each one call at a time.
    const traffic = { stopping: false }
    const worker = async (): Promise<void> => {
      while (!traffic.stopping) {
        const phase = currentPhase(state)
        const startMs = now(state)
        state.inFlight++
        try {
          const server = await call(client, { deadlineMs: CALL_DEADLINE_MS })
          state.okTotal++
          phase.calls++
          phase.answers.set(server, (phase.answers.get(server) ?? 0) + 1)
          const backend = backends.find((b) => b.name === server)
          if (backend !== undefined) backend.answered++
        } catch (error) {
          const endMs = now(state)
          const e = error as grpc.ServiceError
          const text = typeof e.code === "number" ? `${grpc.status[e.code]}: ${e.details}` : String(error)
          state.failedTotal++
          phase.calls++
          phase.failed++
          if (state.killSeenMs !== undefined && startMs >= state.killSeenMs) state.failedAfterKillSeen++
          if (state.killSentMs === undefined || endMs < state.killSentMs) state.failedBeforeKill++
          if (state.failures.length < 1_000) state.failures.push({ phase: phase.name, startMs: Math.round(startMs), endMs: Math.round(endMs), error: oneLine(text) })
        } finally {
          state.inFlight--
        }
      }
    }
    /** Lets every loop end after its current call, and waits for those calls (bounded). */
    const stopTraffic = (running: Promise<unknown>) =>
      Effect.sync(() => {
        traffic.stopping = true
      }).pipe(Effect.zipRight(Effect.promise(() => running).pipe(Effect.timeout(CALL_DEADLINE_MS + 1_000), Effect.ignore)))
    const workers = yield* Effect.acquireRelease(
      Effect.sync(() => Promise.all(Array.from({ length: options.concurrency }, worker))),
      stopTraffic
    )

    // The view.
    let drawn = 0
    const draw = Effect.sync(() => {
      if (output !== "tty") return
      const columns = Math.max(20, process.stdout.columns ?? 160)
      const lines = frame(state, color, columns)
      const text = lines.map((l) => `${l}\u001b[K`).join("\n")
      process.stdout.write(`${drawn > 0 ? `\u001b[${drawn}F` : ""}${text}\n\u001b[J`)
      // A line wider than the terminal wraps: go back up by rows, not lines.
      drawn = lines.reduce((rows, l) => rows + Math.max(1, Math.ceil(stripAnsi(l).length / columns)), 0)
    })
    if (output === "tty") {
      yield* Effect.acquireRelease(write("\u001b[?25l"), () => write("\u001b[?25h"))
    }
    yield* pollServers(state).pipe(
      Effect.zipRight(draw),
      Effect.repeat(Schedule.spaced(output === "tty" ? "200 millis" : "250 millis")),
      Effect.forkScoped
    )
    if (output === "plain") {
      yield* Effect.sync(() => process.stdout.write(`${progress(state)}\n`)).pipe(
        Effect.delay("1 second"),
        Effect.forever,
        Effect.forkScoped
      )
    }

    // The script.
    const D = options.durationMs
    // A judged phase runs on past its planned end until it has enough calls
    // to judge (bounded), so a slow or busy machine gets a longer demo
    // rather than a verdict drawn from a handful of calls.
    const enoughCalls = Effect.suspend(() => waitFor(() => currentPhase(state).calls >= MIN_PHASE_CALLS, PHASE_EXTENSION_MS))
    yield* sleepUntil(state, KILL_AT * D)
    yield* enoughCalls
    const dead = victim(state)
    state.killSentMs = now(state)
    enterPhase(state, "kill -> seen")
    const killed = dead.process
    dead.process = undefined
    emit(`SIGKILL ${dead.name} (pid ${killed?.child.pid})`)
    yield* Effect.promise(() => killed?.kill() ?? Promise.resolve())
    const seen = yield* waitFor(() => state.killSeenMs !== undefined, KILL_SEEN_TIMEOUT_MS)
    if (!seen) {
      emit(`the channel did not see ${dead.name} down within ${KILL_SEEN_TIMEOUT_MS} ms`)
      enterPhase(state, "third down")
    }
    if (etcdMode) {
      const gone = yield* waitFor(() => state.recordGoneMs !== undefined, options.ttl * 1_000 + RECORD_GONE_SLACK_MS)
      if (!gone) emit(`${dead.name}'s record was still there ${options.ttl} s + ${RECORD_GONE_SLACK_MS} ms after the kill`)
    }
    yield* sleepUntil(state, RESTART_AT * D)
    if (currentPhase(state).judged) yield* enoughCalls
    state.restartMs = now(state)
    enterPhase(state, "restart -> rejoined")
    emit(`restarting ${dead.name} on ${addressOf(dead)}`)
    const restarted = yield* startBackend(dead, options)
    state.restartedMs = now(state)
    emit(`${dead.name} is serving again (pid ${restarted.child.pid})${etcdMode ? " and registered" : ""}`)
    const rejoined = yield* waitFor(() => state.rejoinedMs !== undefined, REJOIN_TIMEOUT_MS)
    if (!rejoined) {
      emit(`${dead.name} did not rejoin within ${REJOIN_TIMEOUT_MS} ms`)
      enterPhase(state, "rejoined")
    }
    yield* sleepUntil(state, Math.max(D, (state.rejoinedMs ?? now(state)) + MIN_REJOINED * D))
    if (currentPhase(state).judged) yield* enoughCalls

    // Stop the traffic, then ask the servers what they see.
    yield* stopTraffic(workers)
    state.endMs = now(state)
    const last = currentPhase(state)
    last.endMs = state.endMs
    emit(`traffic stopped after ${ms(state.endMs)}`)
    yield* pollServers(state)
    yield* draw

    return evaluate(state, options.ttl)
  })

/** Waits until `condition` holds, polling every 5 ms, at most `timeoutMs`; whether it held. */
const waitFor = (condition: () => boolean, timeoutMs: number): Effect.Effect<boolean> =>
  Effect.sync(condition).pipe(
    Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: (ok) => ok }),
    Effect.as(true),
    Effect.timeout(Duration.millis(timeoutMs)),
    Effect.catchAll(() => Effect.succeed(false))
  )

const sleepUntil = (state: State, atMs: number): Effect.Effect<void> =>
  Effect.suspend(() => {
    const left = atMs - now(state)
    return left > 0 ? Effect.sleep(Duration.millis(left)) : Effect.void
  })

// ---------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------

const duration = Options.float("duration").pipe(
  Options.withPseudoName("SECONDS"),
  Options.withDefault(10),
  Options.mapEffect(inRange("--duration", 1, 3_600)),
  Options.withDescription("How long to drive calls, in seconds (about; the rejoined phase gets at least 15% of it).")
)
const json = Options.boolean("json").pipe(Options.withDescription("Print only the summary, as JSON (no live view)."))
const concurrency = Options.integer("concurrency").pipe(
  Options.withPseudoName("N"),
  Options.withDefault(16),
  Options.mapEffect(inRange("--concurrency", 1, 1_000)),
  Options.withDescription("Calls in flight.")
)
const etcd = Options.text("etcd").pipe(
  Options.withPseudoName("HOST:PORT"),
  Options.optional,
  Options.withDescription("Register the servers in this etcd and dial etcd://HOST:PORT/SERVICE#2 instead of a pass target.")
)
const service = Options.text("service").pipe(
  Options.withPseudoName("SERVICE"),
  Options.withDefault("demo"),
  Options.withDescription("With --etcd: the service the servers register under.")
)
const ttl = Options.integer("ttl").pipe(
  Options.withPseudoName("SECONDS"),
  Options.withDefault(2),
  Options.mapEffect(inRange("--ttl", 1, 60)),
  Options.withDescription("With --etcd: the lease TTL of the servers' records (a killed server's record lasts this long).")
)

/** `http://`, `https://` or any other scheme in front of a host. */
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//

/** The `demo` subcommand. */
export const command = Command.make(
  "demo",
  { duration, json, concurrency, etcd, service, ttl, verbose },
  ({ concurrency, duration, etcd, json, service, ttl }) =>
    Effect.gen(function* () {
      const hosts = Option.isSome(etcd) ? yield* parseHosts("--etcd", etcd.value) : []
      const withScheme = hosts.find((h) => SCHEME.test(h))
      if (withScheme !== undefined) {
        return yield* usage(
          `--etcd takes host:port without a scheme, got ${JSON.stringify(withScheme)}; for TLS set ETCD_CACERT (and ETCD_CERT, ETCD_KEY)`
        )
      }
      // The channel's target, checked before etcd is dialled or any server started (the service
      // is checked without --etcd too, as part of etcd:///SERVICE#2).
      const target = yield* parseTarget(
        `etcd://${hosts.join(",")}/${service}#2`,
        Option.isSome(etcd) ? "--etcd and --service make a bad target" : "--service makes a bad target"
      )
      const code = yield* runDemo({
        durationMs: duration * 1_000,
        json,
        concurrency,
        etcd: Option.isSome(etcd) && target._tag === "Etcd" ? Option.some(target) : Option.none(),
        ttl
      })
      if (code !== 0) return yield* new CliError({ message: "", exitCode: code })
    })
).pipe(
  Command.withDescription(
    "Three echo servers weighted 3/2/1 behind one pooled channel: kill one, restart it, and check the connections and shares."
  )
)
