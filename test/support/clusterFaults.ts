/**
 * The scenario of issue 14, shared by test/etcd/Cluster.test.ts and
 * bench/etcd-cluster.ts: one member of a 3-member etcd cluster hung
 * (SIGSTOP), killed and restarted on its data, killed while it leads, or cut
 * off from its peers, while backends registered with `registerEndpoint`
 * serve a client on `etcd://m1,m2,m3/SERVICE#2` that keeps calls in flight,
 * and while one new backend registers and another deregisters. Everything
 * goes through the public API (`registerEndpoint`, an `etcd://` target on
 * plain grpc-js); etcd itself is watched and read through its JSON gateway
 * on a member that is not the victim, never through the client under test.
 *
 * What a user would see, per fault:
 * - failed calls (every backend's server is up, or draining after it left);
 * - record gaps: reads of etcd every 250 ms in which a live backend's key
 *   (registered and not closed) is absent;
 * - `registerEndpoint` time (until it resolves) and `close()` time;
 * - join: from the new key appearing in etcd (watch event) to the start of
 *   the first call the new backend answered;
 * - leave: from the leaving key disappearing in etcd to the moment the
 *   client dropped the address from its connections; and to the start of
 *   the last call the leaving backend answered.
 *
 * The leaving backend behaves as a careful deploy: `close()`, then it keeps
 * serving for `leaveDrainMs` (longer than the 2 s goal, so a late leave is
 * seen as calls still arriving), then shuts down gracefully.
 *
 * Every wait is bounded; every loop is bounded in count.
 */
import type * as grpc from "@grpc/grpc-js"
import { call, startEchoServer, type EchoServer } from "../../packages/cli/src/echo/echo.js"
import { registerEndpoint, type EndpointRegistration } from "../../src/main/index.js"
import type { EtcdCluster } from "./etcd.js"
import { rangeKeys, watchPrefix, type WatchEvent } from "./etcdGateway.js"
import { eventually } from "./eventually.js"
import { pooled, type Pooled } from "./pooled.js"

/** The faults, as the issue lists them. `healthy`: no fault (the cluster's baseline). */
export const FAULT_KINDS = ["pause", "kill", "leader", "isolate"] as const
export type FaultKind = "healthy" | (typeof FAULT_KINDS)[number]

/** What each fault does to its member, for the printed lines. */
export const FAULT_NAMES: Readonly<Record<FaultKind, string>> = {
  healthy: "no fault",
  pause: "SIGSTOP (hung)",
  kill: "SIGKILL, restart on its data",
  leader: "leader SIGKILLed, restart on its data",
  isolate: "cut off from its peers"
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const now = () => performance.now()

/** `promise`'s value if it settles within `ms` (its rejection rethrown), else `timedOut`. */
const within = async <A>(ms: number, promise: Promise<A>): Promise<{ readonly value: A } | "timedOut"> => {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise.then((value) => ({ value })),
      new Promise<"timedOut">((resolve) => (timer = setTimeout(() => resolve("timedOut"), ms)))
    ])
  } finally {
    clearTimeout(timer)
  }
}

// ---------------------------------------------------------------------------
// Traffic
// ---------------------------------------------------------------------------

/** One failed call: when it started (performance.now()) and why. */
export interface Failure {
  readonly at: number
  readonly code: number | undefined
  readonly details: string
}

/** The calls one backend answered: starts of the first and the last (performance.now()). */
export interface Answered {
  readonly first: number
  readonly last: number
  readonly count: number
}

/** Calls kept in flight on one client, recorded by who answered them. */
export interface Traffic {
  readonly calls: () => number
  readonly failures: ReadonlyArray<Failure>
  /** The calls `name` answered so far, if any. */
  readonly answered: (name: string) => Answered | undefined
  /** Holds every worker before its next call (the ones in flight finish); resolves when none is in flight. */
  readonly hold: () => Promise<void>
  readonly release: () => void
  readonly stop: () => Promise<void>
}

const MAX_CALLS = 5_000_000
const MAX_FAILURES = 10_000

/**
 * Keeps `workers` calls in flight on `client` (each asks the server to wait
 * `delayMs`, standing in for work, which keeps the call rate moderate on a
 * small machine), until stopped; at most `MAX_CALLS` in all.
 */
export const startTraffic = (client: Pooled["client"], options: { readonly workers: number; readonly delayMs: number; readonly deadlineMs: number }): Traffic => {
  const failures: Array<Failure> = []
  const answers = new Map<string, { first: number; last: number; count: number }>()
  let calls = 0
  let inFlight = 0
  let running = true
  let gate: { promise: Promise<void>; open: () => void } | undefined
  let drained: (() => void) | undefined
  const worker = async () => {
    while (running && calls < MAX_CALLS) {
      if (gate !== undefined) {
        await gate.promise
        continue
      }
      calls++
      inFlight++
      const at = now()
      try {
        const name = await call(client, { delayMs: options.delayMs, deadlineMs: options.deadlineMs })
        const seen = answers.get(name)
        if (seen === undefined) answers.set(name, { first: at, last: at, count: 1 })
        else {
          seen.last = Math.max(seen.last, at)
          seen.count++
        }
      } catch (error) {
        const e = error as grpc.ServiceError
        if (failures.length < MAX_FAILURES) failures.push({ at, code: e.code, details: e.details ?? String(error) })
        // A call that fails at once must not spin.
        await sleep(10)
      } finally {
        inFlight--
        if (inFlight === 0) drained?.()
      }
    }
  }
  const done = Promise.all(Array.from({ length: options.workers }, worker))
  const release = () => {
    const open = gate?.open
    gate = undefined
    open?.()
  }
  return {
    calls: () => calls,
    failures,
    answered: (name) => answers.get(name),
    hold: async () => {
      if (gate === undefined) {
        let open = () => {}
        const promise = new Promise<void>((resolve) => (open = resolve))
        gate = { promise, open }
      }
      if (inFlight > 0) {
        const idle = new Promise<void>((resolve) => (drained = resolve))
        await within(options.deadlineMs + 1_000, idle)
        drained = undefined
      }
    },
    release,
    stop: async () => {
      running = false
      release()
      await done
    }
  }
}

// ---------------------------------------------------------------------------
// The fleet: stable backends, a client with traffic, and joins and leaves
// ---------------------------------------------------------------------------

/** A backend: its echo server (answering with `name`) and its registration. */
export interface Backend {
  readonly name: string
  readonly server: EchoServer
  readonly key: string
  readonly registration: EndpointRegistration
}

/** When the client held connections to an address: since when, and when it dropped it (performance.now()). */
interface Presence {
  since: number
  goneAt: number | undefined
}

/** Options of {@link startFleet}. */
export interface FleetOptions {
  /** etcd key prefix of the service (default `cluster/echo`). */
  readonly service?: string
  /** Lease TTL of every registration, in seconds (default 5, as in the issue). */
  readonly ttl?: number
  /** Backends registered for the whole run (default 2). */
  readonly stable?: number
  /** Calls in flight (default 32). */
  readonly inFlight?: number
  /** Server-side wait of each call (default 20 ms). */
  readonly callDelayMs?: number
  /** Connections per backend in the target (default 2). */
  readonly connections?: number
  /** `registerEndpoint`'s log level (default its own, "Warning"). */
  readonly logLevel?: "None" | "Error" | "Warning" | "Info" | "Debug"
}

/** Backends, a client on `etcd://m1,m2,m3/service#2` with traffic, and what they saw. */
export interface Fleet {
  readonly cluster: EtcdCluster
  readonly service: string
  readonly target: string
  readonly channel: Pooled
  readonly traffic: Traffic
  readonly stable: ReadonlyArray<Backend>
  /** Keys that must be in etcd now: registered (resolved) and not closed. */
  readonly live: Set<string>
  /** Starts an echo server answering `name`, closed (forced) by {@link close} at the latest. */
  readonly startServer: (name: string) => Promise<EchoServer>
  /** Starts an echo server named `name` and registers it; resolves when `registerEndpoint` did (bounded by `boundMs`). */
  readonly addBackend: (name: string, boundMs?: number) => Promise<Backend>
  /** When the client held and dropped `address` (undefined if it never held it). */
  readonly presence: (address: string) => { readonly since: number; readonly goneAt: number | undefined } | undefined
  /** Stops the traffic, closes the client, every registration (bounded) and every server. */
  readonly close: () => Promise<void>
  /** Registrations still to close at the end (those that resolved after their bound). */
  readonly adopt: (registration: Promise<EndpointRegistration>) => void
  /** `registerEndpoint`'s options for a backend at `address`: every member's endpoint, the fleet's service and TTL. */
  readonly registerOptions: (address: string) => Parameters<typeof registerEndpoint>[0]
}

/** Bound on `registerEndpoint` and `close()` before a scenario gives up waiting (and records them as over it). */
export const OPERATION_BOUND_MS = 20_000

/** Closes an echo server gracefully (in-flight calls finish, clients told to go away), forced after 2 s. */
export const shutDown = async (server: EchoServer): Promise<void> => {
  if ((await within(2_000, server.close())) === "timedOut") await server.close({ force: true })
}

/**
 * Starts `stable` backends registered in `cluster`, a client on every
 * member's endpoint with traffic, and waits until every backend answered
 * calls (bounded).
 */
export const startFleet = async (cluster: EtcdCluster, options: FleetOptions = {}): Promise<Fleet> => {
  const service = options.service ?? "cluster/echo"
  const ttl = options.ttl ?? 5
  const target = `etcd://${cluster.endpoints.join(",")}/${service}#${options.connections ?? 2}`
  const live = new Set<string>()
  const backends: Array<Backend> = []
  const servers: Array<EchoServer> = []
  const adopted: Array<Promise<EndpointRegistration>> = []
  const presences = new Map<string, Presence>()

  const registerOptions = (address: string): Parameters<typeof registerEndpoint>[0] => ({
    etcd: { hosts: cluster.endpoints },
    service,
    address,
    ttl,
    ...(options.logLevel === undefined ? {} : { logLevel: options.logLevel })
  })

  let channel: Pooled | undefined
  const onChange = () => {
    if (channel === undefined) return
    const at = now()
    const held = new Set(channel.slots().map((slot) => slot.address))
    for (const address of held) {
      const presence = presences.get(address)
      if (presence === undefined || presence.goneAt !== undefined) presences.set(address, { since: at, goneAt: undefined })
    }
    for (const [address, presence] of presences) if (presence.goneAt === undefined && !held.has(address)) presence.goneAt = at
  }

  const startServer = async (name: string): Promise<EchoServer> => {
    const server = await startEchoServer({ name })
    servers.push(server)
    return server
  }

  const addBackend = async (name: string, boundMs = OPERATION_BOUND_MS): Promise<Backend> => {
    const server = await startServer(name)
    const registering = registerEndpoint(registerOptions(server.address))
    const outcome = await within(boundMs, registering)
    if (outcome === "timedOut") {
      adopted.push(registering)
      throw new Error(`registerEndpoint of ${name} did not resolve within ${boundMs} ms`)
    }
    const backend: Backend = { name, server, key: outcome.value.key, registration: outcome.value }
    backends.push(backend)
    live.add(backend.key)
    return backend
  }

  const stable: Array<Backend> = []
  let traffic: Traffic | undefined
  const close = async () => {
    await traffic?.stop()
    channel?.close()
    await Promise.all(
      [...backends.map((b) => Promise.resolve(b.registration)), ...adopted].map(async (registration) => {
        const outcome = await within(OPERATION_BOUND_MS, registration).catch(() => "timedOut" as const)
        if (outcome !== "timedOut") await within(OPERATION_BOUND_MS, outcome.value.close())
      })
    )
    live.clear()
    await Promise.all(servers.map((server) => server.close({ force: true })))
  }

  try {
    for (let i = 0; i < (options.stable ?? 2); i++) stable.push(await addBackend(`stable-${i}`))
    channel = pooled(target, {}, onChange)
    traffic = startTraffic(channel.client, { workers: options.inFlight ?? 32, delayMs: options.callDelayMs ?? 20, deadlineMs: 5_000 })
    const started = traffic
    await eventually("every stable backend answering", () => stable.every((b) => started.answered(b.name) !== undefined), { timeoutMs: 15_000 })
  } catch (error) {
    await close()
    throw error
  }
  return {
    cluster,
    service,
    target,
    channel,
    traffic,
    stable,
    live,
    startServer,
    addBackend,
    presence: (address) => presences.get(address),
    close,
    adopt: (registration) => void adopted.push(registration),
    registerOptions
  }
}

// ---------------------------------------------------------------------------
// Record gaps
// ---------------------------------------------------------------------------

/** A read of etcd that found live backends' keys absent. */
export interface Gap {
  readonly at: number
  readonly missing: ReadonlyArray<string>
}

/**
 * The most reads in a row (`intervalMs` apart, as {@link startPoller} reads)
 * that missed the same key: 1 means every absence was mended before the next
 * read.
 */
export const longestGap = (gaps: ReadonlyArray<Gap>, intervalMs = 250): number => {
  const last = new Map<string, { at: number; run: number }>()
  let longest = 0
  for (const gap of [...gaps].sort((a, b) => a.at - b.at)) {
    for (const key of gap.missing) {
      const before = last.get(key)
      const run = before !== undefined && gap.at - before.at <= intervalMs * 1.6 ? before.run + 1 : 1
      last.set(key, { at: gap.at, run })
      longest = Math.max(longest, run)
    }
  }
  return longest
}

/** A running {@link startPoller}. */
export interface Poller {
  readonly stop: () => Promise<{ readonly polls: number; readonly errors: number; readonly gaps: ReadonlyArray<Gap> }>
}

/**
 * Reads the service's keys every `intervalMs` from an available member (a
 * linearizable read, a second at most per member) and records every read in
 * which a key that was live both when it started and when it answered is
 * absent. A read no member answered counts as an error, not a gap.
 */
export const startPoller = (fleet: Fleet, intervalMs = 250): Poller => {
  const prefix = `${fleet.service}/`
  const gaps: Array<Gap> = []
  let polls = 0
  let errors = 0
  let running = true
  const read = async (): Promise<ReadonlyArray<string> | undefined> => {
    for (const i of fleet.cluster.available()) {
      const keys = await rangeKeys(fleet.cluster.members[i]!.spec.clientPort, prefix)
      if (keys !== undefined) return keys
    }
    return undefined
  }
  const loop = (async () => {
    for (let round = 0; running && round < 100_000; round++) {
      const began = now()
      const before = new Set(fleet.live)
      const keys = await read()
      if (keys === undefined) errors++
      else {
        polls++
        const missing = [...before].filter((key) => fleet.live.has(key) && !keys.includes(key))
        if (missing.length > 0) gaps.push({ at: began, missing })
      }
      await sleep(Math.max(0, intervalMs - (now() - began)))
    }
  })()
  return {
    stop: async () => {
      running = false
      await loop
      return { polls, errors, gaps }
    }
  }
}

// ---------------------------------------------------------------------------
// One fault
// ---------------------------------------------------------------------------

/** Timings of {@link runFault}. */
export interface FaultOptions {
  /** How long the member stays hung, down or cut off (default 8 s). */
  readonly faultMs?: number
  /** When, after the fault began, the join and the leave start (default 1 s). */
  readonly joinAfterMs?: number
  /** How long the leaving backend keeps serving after its `close()` resolved (default 2.5 s). */
  readonly leaveDrainMs?: number
  /** How long to keep reading etcd after the member is back (default 3 s). */
  readonly observeAfterMs?: number
  /** Bound on waiting for the join and the leave to reach the client once the member is back (default 15 s). */
  readonly settleMs?: number
}

/** What one fault did, as a user sees it. Times in ms; `Infinity` where it never happened within the bounds. */
export interface FaultResult {
  readonly kind: FaultKind
  /** The member faulted (-1 for `healthy`). */
  readonly member: number
  /** Whether that member led the cluster when the fault began. */
  readonly wasLeader: boolean
  readonly registerMs: number
  readonly closeMs: number
  /** `close()` called -> its key gone from etcd (a revoke that fails leaves the key until its lease expires). */
  readonly unregisterMs: number
  /** New key in etcd -> first call the new backend answered. */
  readonly joinMs: number
  /** Leaving key gone from etcd -> the client dropped the address. */
  readonly leaveMs: number
  /** Leaving key gone from etcd -> the last call the leaving backend answered (its server stops `leaveDrainMs` after `close()`). */
  readonly lastCallMs: number
  readonly calls: number
  readonly failed: ReadonlyArray<Failure>
  readonly polls: number
  readonly pollErrors: number
  readonly gaps: ReadonlyArray<Gap>
  /** Things that kept the scenario from measuring something (the harness's view, not a goal). */
  readonly problems: ReadonlyArray<string>
  /** Whole scenario, wall clock. */
  readonly tookMs: number
}

let scenarios = 0

/** `member`'s label: `m1`, or `m1 (leader)`. */
export const memberLabel = (result: Pick<FaultResult, "member" | "wasLeader">): string =>
  result.member < 0 ? "-" : `m${result.member}${result.wasLeader ? " (leader)" : ""}`

/**
 * Runs one fault on `member` (ignored for `leader`, which faults whoever
 * leads, and `healthy`) while one backend joins and one leaves; returns what
 * the client and etcd showed. Leaves the cluster healthy and the fleet as it
 * found it (the joined backend is closed again at the end).
 */
export const runFault = async (fleet: Fleet, kind: FaultKind, member: number, options: FaultOptions = {}): Promise<FaultResult> => {
  const faultMs = options.faultMs ?? 8_000
  const joinAfterMs = options.joinAfterMs ?? 1_000
  const leaveDrainMs = options.leaveDrainMs ?? 2_500
  const observeAfterMs = options.observeAfterMs ?? 3_000
  const settleMs = options.settleMs ?? 15_000
  const { cluster, traffic } = fleet
  const began = now()
  const problems: Array<string> = []
  const tag = `${kind}-${kind === "leader" || kind === "healthy" ? "x" : member}-${++scenarios}`

  await cluster.waitHealthy(30_000)
  const failuresBefore = traffic.failures.length
  const callsBefore = traffic.calls()

  // The backend that will leave, registered and served before the fault.
  const leaver = await fleet.addBackend(`leave-${tag}`)
  await eventually(`the client calls ${leaver.name}`, () => traffic.answered(leaver.name) !== undefined, { timeoutMs: 10_000 }).catch(() =>
    problems.push(`${leaver.name} registered but the client never called it before the fault (a stale watch from an earlier fault?)`)
  )

  const leader = await cluster.leader()
  const victim = kind === "healthy" ? -1 : kind === "leader" ? leader : member
  // etcd's own view, from a member the fault leaves alone.
  const events: Array<WatchEvent> = []
  const observer = cluster.available().find((i) => i !== victim)!
  const watch = await watchPrefix(cluster.members[observer]!.spec.clientPort, `${fleet.service}/`, (event) => events.push(event))
  const poller = startPoller(fleet)

  let registerMs = Number.POSITIVE_INFINITY
  let closeMs = Number.POSITIVE_INFINITY
  let closeStartedAt: number | undefined
  let joiner: { name: string; server: EchoServer; registration: EndpointRegistration | undefined; key: string } | undefined
  let recovered = false
  const recover = async () => {
    if (recovered) return
    recovered = true
    if (kind === "pause") cluster.resume(victim)
    else if (kind === "isolate") await cluster.heal(victim)
    else if (kind === "kill" || kind === "leader") await cluster.restart(victim)
  }
  try {
    const faultAt = now()
    if (kind === "pause") cluster.pause(victim)
    else if (kind === "isolate") await cluster.isolate(victim)
    else if (kind === "kill" || kind === "leader") await cluster.crash(victim)
    await sleep(joinAfterMs)

    const joining = (async () => {
      const name = `join-${tag}`
      const server = await fleet.startServer(name)
      const started = now()
      const registering = registerEndpoint(fleet.registerOptions(server.address))
      joiner = { name, server, registration: undefined, key: `${fleet.service}/${server.address}` }
      const outcome = await within(OPERATION_BOUND_MS, registering).catch((error: unknown) => {
        problems.push(`registerEndpoint of ${name} failed: ${String(error)}`)
        return undefined
      })
      if (outcome === undefined) return
      if (outcome === "timedOut") {
        fleet.adopt(registering)
        problems.push(`registerEndpoint of ${name} had not resolved ${OPERATION_BOUND_MS} ms later`)
        return
      }
      registerMs = now() - started
      joiner.registration = outcome.value
      fleet.live.add(outcome.value.key)
    })()
    const leaving = (async () => {
      fleet.live.delete(leaver.key)
      const started = now()
      closeStartedAt = started
      const outcome = await within(OPERATION_BOUND_MS, leaver.registration.close())
      if (outcome !== "timedOut") closeMs = now() - started
      else problems.push(`close() of ${leaver.name} had not finished ${OPERATION_BOUND_MS} ms later`)
      await sleep(leaveDrainMs)
      await shutDown(leaver.server)
    })()

    await sleep(Math.max(0, faultAt + faultMs - now()))
    await recover()
    const recoveredAt = now()
    await Promise.all([joining, leaving])

    // Until the join and the leave reached etcd and the client, or the bound.
    const put = () => events.find((e) => e.type === "PUT" && e.key === joiner?.key)
    const deleted = () => events.find((e) => e.type === "DELETE" && e.key === leaver.key)
    const settled = () =>
      put() !== undefined &&
      deleted() !== undefined &&
      joiner !== undefined &&
      traffic.answered(joiner.name) !== undefined &&
      fleet.presence(leaver.server.address)?.goneAt !== undefined
    await eventually("the join and the leave seen by etcd and the client", settled, { timeoutMs: settleMs, intervalMs: 50 }).catch(() => undefined)
    await sleep(Math.max(0, recoveredAt + observeAfterMs - now()))

    const gaps = await poller.stop()
    watch.close()
    if (watch.broken() !== undefined) problems.push(`the watch on m${observer} broke: ${watch.broken()}`)

    const putAt = put()?.at
    const deleteAt = deleted()?.at
    const joined = joiner === undefined ? undefined : traffic.answered(joiner.name)
    const left = traffic.answered(leaver.name)
    const gone = fleet.presence(leaver.server.address)?.goneAt
    const since = (from: number | undefined, to: number | undefined) =>
      from === undefined || to === undefined ? Number.POSITIVE_INFINITY : Math.max(0, to - from)
    if (putAt === undefined) problems.push(`the new key ${joiner?.key} never appeared in etcd`)
    if (deleteAt === undefined) problems.push(`the leaving key ${leaver.key} never left etcd`)

    // The joined backend leaves again (healthy cluster), before the next fault.
    if (joiner !== undefined) {
      const { registration, server } = joiner
      if (registration !== undefined) {
        fleet.live.delete(registration.key)
        await within(OPERATION_BOUND_MS, registration.close())
      }
      await eventually(`the client drops ${joiner.name}`, () => fleet.presence(server.address)?.goneAt !== undefined, { timeoutMs: 10_000 }).catch(() =>
        problems.push(`the client still held ${joiner!.name} 10 s after it left (after the fault)`)
      )
      await shutDown(server)
    }

    return {
      kind,
      member: victim,
      wasLeader: victim === leader,
      registerMs,
      closeMs,
      unregisterMs: since(closeStartedAt, deleteAt),
      joinMs: since(putAt, joined?.first),
      leaveMs: since(deleteAt, gone),
      lastCallMs: deleteAt === undefined || left === undefined ? Number.POSITIVE_INFINITY : Math.max(0, left.last - deleteAt),
      calls: traffic.calls() - callsBefore,
      failed: traffic.failures.slice(failuresBefore),
      polls: gaps.polls,
      pollErrors: gaps.errors,
      gaps: gaps.gaps,
      problems,
      tookMs: now() - began
    }
  } finally {
    await recover()
    watch.close()
    await poller.stop()
  }
}

/** Milliseconds as printed: `123`, or `never` when it did not happen within the scenario's bounds. */
export const ms = (value: number): string => (Number.isFinite(value) ? String(Math.round(value)) : "never")

/** One line for a result. */
export const describeResult = (r: FaultResult): string => {
  const failedWhy = r.failed.length === 0 ? "" : ` (${[...new Set(r.failed.map((f) => f.details))].slice(0, 3).join("; ")})`
  return (
    `${FAULT_NAMES[r.kind]}, ${memberLabel(r)}: registerEndpoint ${ms(r.registerMs)} ms, close() ${ms(r.closeMs)} ms (key gone ${ms(r.unregisterMs)} ms after it began), ` +
    `join ${ms(r.joinMs)} ms, leave ${ms(r.leaveMs)} ms (last call ${ms(r.lastCallMs)} ms), ` +
    `${r.failed.length} failed of ${r.calls} calls${failedWhy}, ${r.gaps.length} record gaps in ${r.polls} reads (${r.pollErrors} unanswered)` +
    (r.problems.length === 0 ? "" : `; ${r.problems.join("; ")}`)
  )
}
