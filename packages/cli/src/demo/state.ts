/**
 * The demo's settings and what a run measures: the three backends, the
 * phases and their calls, the failures, and the moments of the script (kill
 * sent and seen, record gone, restart, rejoined). The script and the traffic
 * write it; the judge and the renderers read it.
 */
import type * as grpc from "@grpc/grpc-js"
import { Address } from "grpc-anchor/core"
import type { EchoProcess } from "../echo/echoProcess.js"

/** Largest gap, in percentage points, between a server's share in a phase and its expected share. */
export const SHARE_TOLERANCE = 2
/** Fewest calls a judged phase needs before its shares mean anything. */
export const MIN_PHASE_CALLS = 200
/** How long a judged phase may run past its planned end to reach MIN_PHASE_CALLS. */
export const PHASE_EXTENSION_MS = 10_000
/** Bound on the channel seeing the killed server's connections down. */
export const KILL_SEEN_TIMEOUT_MS = 5_000
/** Bound on the channel having every connection READY after the restart. */
export const REJOIN_TIMEOUT_MS = 15_000
/** Bound, past the TTL, on the channel dropping the killed server's record (etcd). */
export const RECORD_GONE_SLACK_MS = 8_000
/** Deadline of one call. */
export const CALL_DEADLINE_MS = 5_000
/** When the third server is killed, as a fraction of the duration. */
export const KILL_AT = 0.35
/** When it is started again, as a fraction of the duration. */
export const RESTART_AT = 0.65
/** The least the rejoined phase runs, as a fraction of the duration. */
export const MIN_REJOINED = 0.15
/** Channel options: reconnect quickly to the restarted server. */
export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 500
}

/** The phases judged for shares, and the two transitions between them. */
export type PhaseName = "all up" | "kill -> seen" | "third down" | "restart -> rejoined" | "rejoined"

/** One echo server of the demo, as the client, the channel and the server itself see it. */
export interface Backend {
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

/** A stretch of the run with its own calls and expected shares. */
export interface Phase {
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

/** A call that failed, when, and why. */
export interface FailedCall {
  readonly phase: PhaseName
  readonly startMs: number
  readonly endMs: number
  readonly error: string
}

/** What the run measured; `evaluate` (judge.ts) judges it. */
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

/** A fresh run of the three backends weighted 3/2/1 (pass) or 1/1/1 at 2 connections each (etcd). */
export const initial = (mode: "pass" | "etcd", durationMs: number): State => ({
  mode,
  target: "",
  durationMs,
  backends: [3, 2, 1].map((weight, i) => ({
    name: `s${i + 1}`,
    weight: mode === "etcd" ? 1 : weight,
    expectedConnections: mode === "etcd" ? 2 : weight,
    port: 0,
    process: undefined,
    answered: 0,
    slots: 0,
    ready: 0,
    serverConnections: undefined,
    serverCalls: undefined,
    perConnection: []
  })),
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
})

/** Milliseconds since the start of the run. */
export const now = (state: State): number => performance.now() - state.t0
/** `127.0.0.1:PORT` of a backend. */
export const addressOf = (backend: Backend): string => Address.format({ host: "127.0.0.1", port: backend.port })
/** The phase running now (the script enters the first one before any call). */
export const currentPhase = (state: State): Phase => state.phases[state.phases.length - 1]!
/** The backend that gets killed and restarted: the last one. */
export const victim = (state: State): Backend => state.backends[state.backends.length - 1]!
/** Seconds with one decimal, e.g. `3.5s`. */
export const ms = (x: number): string => `${(x / 1_000).toFixed(1)}s`
/** A count with thousands separators. */
export const thousands = (n: number): string => n.toLocaleString("en-US")

const expectedShares = (backends: ReadonlyArray<Backend>, up: (b: Backend) => boolean): ReadonlyMap<string, number> => {
  const total = backends.filter(up).reduce((sum, b) => sum + b.weight, 0)
  return new Map(backends.map((b) => [b.name, up(b) ? b.weight / total : 0]))
}

/** Ends the current phase now and starts `name`, with the shares it expects if it is judged. */
export const enterPhase = (state: State, name: PhaseName): void => {
  const at = now(state)
  const last = state.phases[state.phases.length - 1]
  if (last !== undefined) last.endMs = at
  const judged = name === "all up" || name === "third down" || name === "rejoined"
  const expected = judged ? expectedShares(state.backends, (b) => name !== "third down" || b !== victim(state)) : undefined
  state.phases.push({ name, judged, startMs: at, endMs: undefined, calls: 0, failed: 0, answers: new Map(), expected })
}
