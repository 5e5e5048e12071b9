/**
 * Helpers for the pool-under-stress suites (test/grpc/steadyFailure,
 * balancedStart, cap, hung): closed loopback ports, a channel's
 * connectivity-state trace, single calls with their outcome, and a steady
 * call load whose every call is recorded with its start time.
 *
 * Every wait here is bounded in time and every loop in count.
 */
import * as grpc from "@grpc/grpc-js"
import * as net from "node:net"
import { EchoClient, type Echo } from "../../packages/cli/src/echo/echo.js"

export const insecure = grpc.credentials.createInsecure()

/** An echo client on `target` (the caller closes it). */
export const echoClient = (target: string, options: grpc.ChannelOptions = {}): Echo =>
  new EchoClient(target, insecure, options) as unknown as Echo

/**
 * `count` distinct loopback ports that nothing listens on: each was bound by
 * this process (all at once, so they differ) and released again. A connect
 * to one is refused at once (ECONNREFUSED).
 */
export const closedPorts = async (count: number): Promise<Array<number>> => {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer()
          server.once("error", reject)
          server.listen(0, "127.0.0.1", () => resolve(server))
        })
    )
  )
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port)
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))))
  return ports
}

/** A connectivity state by name, as grpc-js's enum prints it. */
export type StateName = "IDLE" | "CONNECTING" | "READY" | "TRANSIENT_FAILURE" | "SHUTDOWN"

export const stateName = (state: grpc.connectivityState): StateName => grpc.connectivityState[state] as StateName

/** One entry of a channel's state trace: the state and when it was seen (ms since the trace began). */
export interface TraceEntry {
  readonly atMs: number
  readonly state: StateName
}

export interface StateTrace {
  /** The states seen so far, first the one at the start. */
  readonly entries: () => ReadonlyArray<TraceEntry>
  /** The states after the first time `state` was seen (empty when never seen). */
  readonly after: (state: StateName) => ReadonlyArray<StateName>
  /** Stops watching. */
  readonly stop: () => void
  /** The trace as text, for failure messages and logs: `0 IDLE, 3 CONNECTING, 9 TRANSIENT_FAILURE`. */
  readonly text: () => string
}

/**
 * Records every connectivity state of `channel` (connecting it when idle)
 * until `stop()` or `maxMs`, whichever comes first. grpc-js reports each
 * change to a watcher on the next tick, so a state that lasts less than a
 * tick could be missed; a reconnect to a closed port takes at least one
 * I/O round, so a CONNECTING window of the pool is seen.
 */
export const traceStates = (channel: ReturnType<grpc.Client["getChannel"]>, maxMs = 30_000): StateTrace => {
  const started = Date.now()
  const end = started + maxMs
  const entries: Array<TraceEntry> = []
  let stopped = false
  let current = channel.getConnectivityState(true)
  entries.push({ atMs: 0, state: stateName(current) })
  const watch = (): void => {
    if (stopped || Date.now() >= end) return
    channel.watchConnectivityState(current, end, (error) => {
      if (error !== undefined || stopped) return
      current = channel.getConnectivityState(false)
      entries.push({ atMs: Date.now() - started, state: stateName(current) })
      watch()
    })
  }
  watch()
  return {
    entries: () => entries,
    after: (state) => {
      const first = entries.findIndex((entry) => entry.state === state)
      return first === -1 ? [] : entries.slice(first + 1).map((entry) => entry.state)
    },
    stop: () => {
      stopped = true
    },
    text: () => entries.map((entry) => `${entry.atMs} ${entry.state}`).join(", ")
  }
}

/** What became of one call. */
export interface Outcome {
  /** When the call started, ms since the load's (or the caller's) origin. */
  readonly startedAtMs: number
  /** How long it took to end, in ms. */
  readonly tookMs: number
  /** The server that answered, when it succeeded. */
  readonly answeredBy: string | undefined
  /** The address (`host:port`) the call was sent to, when it was sent; `undefined` when it failed before. */
  readonly peer: string | undefined
  readonly code: grpc.status | undefined
  readonly details: string | undefined
}

/** One echo call that never rejects: its outcome, with times relative to `origin` (ms since epoch). */
export const attempt = (
  client: Echo,
  options: { readonly deadlineMs: number; readonly waitForReady?: boolean; readonly origin?: number }
): Promise<Outcome> => {
  const start = Date.now()
  const startedAtMs = start - (options.origin ?? start)
  return new Promise((resolve) => {
    const call = client.echo(
      Buffer.alloc(4),
      new grpc.Metadata(options.waitForReady !== undefined ? { waitForReady: options.waitForReady } : {}),
      { deadline: start + options.deadlineMs },
      (error, response) => {
        // grpc-js knows the peer once the call was sent on a connection.
        const peer = call.getPeer()
        resolve({
          startedAtMs,
          tookMs: Date.now() - start,
          answeredBy: error ? undefined : response!.toString("utf8"),
          peer: peer === "" || peer === "unknown" ? undefined : peer,
          code: error ? error.code : undefined,
          details: error ? error.details : undefined
        })
      }
    )
  })
}

/**
 * Keeps `workers` calls going one after another for `durationMs`, each with
 * `deadlineMs`, and returns every call's outcome (times relative to
 * `origin`). Bounded: at most `maxCalls` calls in all.
 */
export const steadyLoad = async (
  client: Echo,
  options: {
    readonly workers: number
    readonly durationMs: number
    readonly deadlineMs: number
    readonly origin: number
    /** Pause between one worker's calls, so a fast failure does not spin. */
    readonly pauseMs?: number
    readonly maxCalls?: number
  }
): Promise<Array<Outcome>> => {
  const outcomes: Array<Outcome> = []
  const until = Date.now() + options.durationMs
  const maxCalls = options.maxCalls ?? 50_000
  const pause = options.pauseMs ?? 5
  const worker = async (): Promise<void> => {
    while (Date.now() < until && outcomes.length < maxCalls) {
      outcomes.push(await attempt(client, { deadlineMs: options.deadlineMs, origin: options.origin }))
      await new Promise<void>((resolve) => setTimeout(resolve, pause))
    }
  }
  await Promise.all(Array.from({ length: options.workers }, worker))
  return outcomes.sort((x, y) => x.startedAtMs - y.startedAtMs)
}

/** A short summary of outcomes for logs: `a: 120, DEADLINE_EXCEEDED: 8`. */
export const summarize = (outcomes: ReadonlyArray<Outcome>): string => {
  const counts = new Map<string, number>()
  for (const outcome of outcomes) {
    const key = outcome.answeredBy ?? grpc.status[outcome.code!] ?? String(outcome.code)
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return [...counts].map(([key, count]) => `${key}: ${count}`).join(", ")
}

/**
 * Calls `client` (waiting for ready, one at a time, at most `maxCalls`)
 * until every server of `names` has answered once; the names that did,
 * sorted, for the caller to assert.
 */
export const warmUp = async (client: Echo, names: ReadonlyArray<string>, maxCalls = 200): Promise<Array<string>> => {
  const seen = new Set<string>()
  for (let i = 0; i < maxCalls && seen.size < names.length; i++) {
    const outcome = await attempt(client, { deadlineMs: 5_000, waitForReady: true })
    if (outcome.answeredBy !== undefined) seen.add(outcome.answeredBy)
  }
  return [...seen].sort()
}
