/**
 * The demo's verdict: the checks that decide its exit code, and the summary
 * (`demo --json` prints it; the text renderer lays it out).
 */
import { percent } from "../internal/common.js"
import {
  addressOf,
  type FailedCall,
  KILL_SEEN_TIMEOUT_MS,
  MIN_PHASE_CALLS,
  ms,
  now,
  type PhaseName,
  RECORD_GONE_SLACK_MS,
  REJOIN_TIMEOUT_MS,
  SHARE_TOLERANCE,
  type State,
  thousands
} from "./state.js"

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
        : `${afterKillSeenCount} of the calls started after ${ms(killSeen)} failed${afterKillSeen[0] === undefined ? "" : `, e.g. ${afterKillSeen[0].error}`}; ` +
          `${state.failedTotal - afterKillSeenCount - beforeKill} cut by the kill (in flight, or picked before the channel saw it)`
  })
  checks.push({
    name: "no failed call before the kill",
    ok: beforeKill === 0,
    detail: `${beforeKill} of the calls that ended before the kill${state.killSentMs === undefined ? "" : ` (at ${ms(state.killSentMs)})`} failed`
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
