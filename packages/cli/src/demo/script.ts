/**
 * The demo's script, with D the duration:
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
 * What the channel reports moves the phases on; every change of the run's
 * state is published on a SubscriptionRef, which the script's waits
 * subscribe to (no polling).
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { AnchoredChannel, Etcd, type Stats } from "grpc-anchor"
import { Address, EtcdRecord, Target } from "grpc-anchor/core"
import { EchoClient, type Echo } from "../echo/echo.js"
import { colors, type CommandError, etcdLayer, failure, line, oneLine, percent, readEtcd, write } from "../internal/common.js"
import { evaluate, type Summary } from "./judge.js"
import { makeView, type Output, PLAIN_COLUMNS, plainEvent, progress, progressLegend, wrap } from "./render.js"
import { killBackend, pollServers, type Registration, startBackend, stopBackend } from "./servers.js"
import {
  addressOf,
  CHANNEL_OPTIONS,
  currentPhase,
  enterPhase,
  initial,
  KILL_AT,
  KILL_SEEN_TIMEOUT_MS,
  MIN_PHASE_CALLS,
  MIN_REJOINED,
  ms,
  now,
  PHASE_EXTENSION_MS,
  type PhaseName,
  RECORD_GONE_SLACK_MS,
  REJOIN_TIMEOUT_MS,
  RESTART_AT,
  type State,
  victim
} from "./state.js"
import * as Traffic from "./traffic.js"

/** What the command asked for. */
export interface DemoOptions extends Registration {
  readonly durationMs: number
  readonly concurrency: number
}

/** Ends the current phase and starts `name`, with an event saying what it expects. */
const enterPhaseSaying = (state: State, name: PhaseName, emit: (text: string) => void): void => {
  enterPhase(state, name)
  const expected = currentPhase(state).expected
  emit(
    `phase ${name}: ` +
      (expected === undefined
        ? "a transition, not judged"
        : `expected shares ${state.backends.map((b) => `${b.name} ${percent(expected.get(b.name) ?? 0)}`).join(", ")}`)
  )
}

/** Updates the channel view and moves the phases on what the channel sees. */
const onChannelStats = (state: State, stats: Stats.ChannelStats, emit: (text: string) => void): void => {
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
    emit(`the channel sees every connection to ${dead.name} down, ${Math.round(state.killSeenMs - (state.killSentMs ?? 0))} ms after the kill`)
    enterPhaseSaying(state, "third down", emit)
  }
  if (state.mode === "etcd" && state.killSeenMs !== undefined && state.recordGoneMs === undefined && dead.slots === 0) {
    state.recordGoneMs = now(state)
    emit(`${dead.name}'s record expired: the channel dropped its connections (${ms(state.recordGoneMs - (state.killSentMs ?? 0))} after the kill)`)
  }
  if (phase === "restart -> rejoined" && state.backends.every((b) => b.slots === b.expectedConnections && b.ready === b.expectedConnections)) {
    state.rejoinedMs = now(state)
    emit(`${dead.name} rejoined: all ${state.backends.reduce((s, b) => s + b.expectedConnections, 0)} connections READY`)
    enterPhaseSaying(state, "rejoined", emit)
  }
}

/**
 * The anchored channel of the run: a pass target needs nothing, an etcd one
 * an etcd client for the hosts of `--etcd`, open as long as the channel (the
 * same scope).
 */
const openChannel = (target: string, etcd: Option.Option<Target.EtcdTarget>) => {
  const toFailure = Effect.mapError((error: { readonly message: string }) => failure(oneLine(error.message), error))
  return Option.match(etcd, {
    onNone: () => AnchoredChannel.make({ target: target as `pass:///${string}`, channelOptions: CHANNEL_OPTIONS }).pipe(toFailure),
    onSome: (etcdTarget) =>
      Effect.flatMap(Layer.build(etcdLayer(etcdTarget.etcd.map(Address.format))), (client) =>
        AnchoredChannel.make({ target, channelOptions: CHANNEL_OPTIONS }).pipe(toFailure, Effect.provideContext(client))
      )
  })
}

/**
 * The run itself, in a scope that holds the servers, the channel and the
 * traffic; the summary of what it saw.
 */
export const run = (options: DemoOptions, output: Output): Effect.Effect<Summary, CommandError, Scope.Scope> =>
  Effect.gen(function* () {
    const color = output === "tty" && colors()
    const etcdMode = Option.isSome(options.etcd)
    const state = initial(etcdMode ? "etcd" : "pass", options.durationMs)
    const backends = state.backends
    const emit = (text: string): void => {
      const atMs = now(state)
      state.events.push({ atMs, text })
      if (output === "plain") process.stdout.write(`${plainEvent(atMs, text)}\n`)
    }
    const startPhase = (name: PhaseName): void => enterPhaseSaying(state, name, emit)

    // Every change of the state bumps this; waits subscribe to it.
    const version = yield* SubscriptionRef.make(0)
    const changed = SubscriptionRef.update(version, (n) => n + 1)
    /** Waits until `condition` holds, re-checked on every change, at most `timeoutMs`; whether it held. */
    const waitFor = (condition: () => boolean, timeoutMs: number): Effect.Effect<boolean> =>
      SubscriptionRef.changes(version).pipe(
        Stream.filter(() => condition()),
        Stream.runHead,
        Effect.map(Option.isSome),
        Effect.timeoutOrElse({ duration: Duration.millis(timeoutMs), orElse: () => Effect.succeed(false) })
      )
    const sleepUntil = (atMs: number): Effect.Effect<void> =>
      Effect.suspend(() => {
        const left = atMs - now(state)
        return left > 0 ? Effect.sleep(Duration.millis(left)) : Effect.void
      })

    // etcd: reachable (one read, its error one clear line), and nobody else registered under the service.
    if (Option.isSome(options.etcd)) {
      const { service } = options.etcd.value
      const prefix = EtcdRecord.prefix(service)
      const keys = yield* readEtcd((etcd) =>
        etcd.range(`read ${prefix}`, { ...Etcd.prefixRange(prefix), keys_only: true }).pipe(
          Effect.map((response) => response.kvs.map((kv) => kv.key.toString("utf8")))
        )
      ).pipe(
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
    const anchored = yield* openChannel(target, options.etcd)
    state.target = anchored.target
    const client = anchored.client(EchoClient) as unknown as Echo

    if (output === "plain") yield* line(`${wrap(`grpc-anchor demo  ${anchored.target}`, PLAIN_COLUMNS, 18).join("\n")}\n${progressLegend()}`)
    const serversUp =
      `servers up: ${backends.map((b) => `${b.name} on ${addressOf(b)} (pid ${b.process?.child.pid})`).join(", ")}` +
      Option.match(options.etcd, {
        onNone: () => "",
        onSome: ({ service }) => `, registered under ${EtcdRecord.prefix(service)} with a ${options.ttl}s lease`
      })

    // The channel's view, and the phase changes it triggers.
    yield* anchored.changes.pipe(
      Stream.runForEach((stats) => Effect.andThen(Effect.sync(() => onChannelStats(state, stats, emit)), changed)),
      Effect.forkScoped
    )
    yield* anchored.waitForReady("10 seconds").pipe(Effect.mapError((error) => failure(oneLine(error.message), error)))
    const expectedTotal = backends.reduce((s, b) => s + b.expectedConnections, 0)
    const allOpen = yield* waitFor(() => backends.every((b) => b.ready === b.expectedConnections && b.slots === b.expectedConnections), 10_000)
    if (!allOpen) {
      return yield* failure(
        `the channel did not open all ${expectedTotal} connections within 10 s (ready: ${backends.map((b) => `${b.name} ${b.ready}/${b.expectedConnections}`).join(", ")})`
      )
    }

    // Start.
    state.t0 = performance.now()
    emit(serversUp)
    emit(`${expectedTotal} connections READY; ${options.concurrency} calls in flight from now on`)
    startPhase("all up")
    const traffic = yield* Traffic.start(state, client, options.concurrency, changed)

    // The view.
    const draw = output === "tty" ? makeView(state, color) : Effect.void
    if (output === "tty") {
      yield* Effect.acquireRelease(write("\u001b[?25l"), () => write("\u001b[?25h"))
    }
    yield* pollServers(state).pipe(
      Effect.andThen(draw),
      Effect.repeat(Schedule.spaced(output === "tty" ? "200 millis" : "250 millis")),
      Effect.forkScoped
    )
    if (output === "plain") {
      // Suspended: each line reads the state as it is then.
      yield* Effect.suspend(() => line(progress(state))).pipe(Effect.delay("1 second"), Effect.forever, Effect.forkScoped)
    }

    // The script.
    const D = options.durationMs
    // A judged phase runs on past its planned end until it has enough calls
    // to judge (bounded), so a slow or busy machine gets a longer demo
    // rather than a verdict drawn from a handful of calls.
    const enoughCalls = waitFor(() => currentPhase(state).calls >= MIN_PHASE_CALLS, PHASE_EXTENSION_MS)
    yield* sleepUntil(KILL_AT * D)
    yield* enoughCalls
    const dead = victim(state)
    state.killSentMs = now(state)
    emit(`SIGKILL ${dead.name} (pid ${dead.process?.child.pid})`)
    startPhase("kill -> seen")
    yield* killBackend(dead)
    const seen = yield* waitFor(() => state.killSeenMs !== undefined, KILL_SEEN_TIMEOUT_MS)
    if (!seen) {
      emit(`the channel did not see ${dead.name} down within ${KILL_SEEN_TIMEOUT_MS} ms`)
      startPhase("third down")
    }
    if (etcdMode) {
      const gone = yield* waitFor(() => state.recordGoneMs !== undefined, options.ttl * 1_000 + RECORD_GONE_SLACK_MS)
      if (!gone) emit(`${dead.name}'s record was still there ${options.ttl} s + ${RECORD_GONE_SLACK_MS} ms after the kill`)
    }
    yield* sleepUntil(RESTART_AT * D)
    if (currentPhase(state).judged) yield* enoughCalls
    state.restartMs = now(state)
    emit(`restarting ${dead.name} on ${addressOf(dead)}`)
    startPhase("restart -> rejoined")
    const restarted = yield* startBackend(dead, options)
    state.restartedMs = now(state)
    emit(`${dead.name} is serving again (pid ${restarted.child.pid})${etcdMode ? " and registered" : ""}`)
    const rejoined = yield* waitFor(() => state.rejoinedMs !== undefined, REJOIN_TIMEOUT_MS)
    if (!rejoined) {
      emit(`${dead.name} did not rejoin within ${REJOIN_TIMEOUT_MS} ms`)
      startPhase("rejoined")
    }
    yield* sleepUntil(Math.max(D, (state.rejoinedMs ?? now(state)) + MIN_REJOINED * D))
    if (currentPhase(state).judged) yield* enoughCalls

    // Stop the traffic, then ask the servers what they see.
    yield* traffic.stop
    state.endMs = now(state)
    currentPhase(state).endMs = state.endMs
    emit(`traffic stopped after ${ms(state.endMs)}`)
    yield* pollServers(state)
    yield* draw

    return evaluate(state, options.ttl)
  })
