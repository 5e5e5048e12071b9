/**
 * `AnchoredChannel`: a grpc-js channel with grpc-anchor's connection pool,
 * owned by an Effect scope. The channel is closed, and with it every
 * connection, when the scope closes.
 *
 * @example
 * ```ts
 * import { AnchoredChannel } from "grpc-anchor"
 * const program = Effect.gen(function* () {
 *   const anchored = yield* AnchoredChannel
 *   const client = anchored.client(EchoClient)
 *   yield* anchored.waitForReady("5 seconds")
 *   console.log(yield* anchored.stats)
 * }).pipe(Effect.provide(AnchoredChannel.layer({ target: "pass:///10.0.0.1:9080#2,10.0.0.2:9090" })))
 * ```
 *
 * @since 0.1.0
 */
import * as grpc from "@grpc/grpc-js"
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Target from "../../core/Target.js"
import * as Option from "effect/Option"
import { Etcd } from "../etcd/Etcd.js"
import { ETCD_CLIENT_KEY, RUNTIME_KEY, STATS_KEY } from "./internal/keys.js"
import { registerAll } from "./register.js"
import { makeSink, type ChannelStats } from "./Stats.js"

/**
 * Why an anchored channel could not be made or used.
 *
 * @since 0.1.0
 */
export class AnchoredChannelError extends Data.TaggedError("AnchoredChannelError")<{
  readonly reason: "InvalidTarget" | "ChannelFailed" | "NotReady"
  readonly target: string
  readonly cause?: unknown
}> {
  override get message(): string {
    const cause = this.cause instanceof Error ? `: ${this.cause.message}` : ""
    switch (this.reason) {
      case "InvalidTarget":
        return `invalid target "${this.target}"${cause}`
      case "ChannelFailed":
        return `could not create a channel for "${this.target}"${cause}`
      case "NotReady":
        return `channel to "${this.target}" did not become ready${cause}`
    }
  }
}

/**
 * Anything grpc-js's generated or generic client classes look like.
 *
 * @since 0.1.0
 */
export type ClientConstructor<C> = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions
) => C

/**
 * @since 0.1.0
 */
export declare namespace AnchoredChannel {
  /**
   * @since 0.1.0
   */
  export interface Service {
    /** The canonical target. */
    readonly target: string
    /** The underlying grpc-js channel, for `channelOverride` or nice-grpc. */
    readonly channel: grpc.Channel
    /** A client of the given class on this channel. Do not close it: the scope owns the channel. */
    readonly client: <C>(constructor: ClientConstructor<C>) => C
    /** The connection slots with their state and the calls picked for each. */
    readonly stats: Effect.Effect<ChannelStats>
    /** Stats on every connectivity or address change, and every second while calls flow. */
    readonly changes: Stream.Stream<ChannelStats>
    /** The channel's connectivity state. */
    readonly state: Effect.Effect<grpc.connectivityState>
    /** Connects if idle and waits until at least one connection is READY. */
    readonly waitForReady: (timeout: Duration.DurationInput) => Effect.Effect<void, AnchoredChannelError>
  }

  /**
   * @since 0.1.0
   */
  export interface Options {
    /** `pass:///...` or `etcd://.../service#N`. */
    readonly target: string
    /** Defaults to insecure. */
    readonly credentials?: grpc.ChannelCredentials
    /** grpc-js channel options. */
    readonly channelOptions?: grpc.ChannelOptions
  }
}

/**
 * @since 0.1.0
 */
export class AnchoredChannel extends Context.Tag("grpc-anchor/AnchoredChannel")<
  AnchoredChannel,
  AnchoredChannel.Service
>() {}

const sameStats = (a: ChannelStats, b: ChannelStats): boolean =>
  a.connections.length === b.connections.length &&
  a.connections.every((x, i) => {
    const y = b.connections[i]!
    return x.address === y.address && x.index === y.index && x.state === y.state && x.picked === y.picked &&
      x.inFlight === y.inFlight
  })

const waitForReady = (
  channel: grpc.Channel,
  target: string,
  timeout: Duration.DurationInput
): Effect.Effect<void, AnchoredChannelError> =>
  Effect.async<void, AnchoredChannelError>((resume) => {
    const deadline = Date.now() + Duration.toMillis(Duration.decode(timeout))
    let done = false
    const check = (): void => {
      if (done) return
      const state = channel.getConnectivityState(true)
      if (state === grpc.connectivityState.READY) {
        done = true
        return resume(Effect.void)
      }
      if (state === grpc.connectivityState.SHUTDOWN) {
        done = true
        return resume(Effect.fail(new AnchoredChannelError({ reason: "NotReady", target, cause: new Error("channel is shut down") })))
      }
      channel.watchConnectivityState(state, deadline, (error) => {
        if (error && !done) {
          done = true
          const last = grpc.connectivityState[channel.getConnectivityState(false)]
          return resume(Effect.fail(new AnchoredChannelError({ reason: "NotReady", target, cause: new Error(`still ${last} at the deadline`) })))
        }
        check()
      })
    }
    check()
    // grpc-js has no way to cancel a watch; its timer ends at the deadline.
    return Effect.sync(() => {
      done = true
    })
  })

/**
 * Makes an anchored channel in the current scope.
 *
 * @since 0.1.0
 */
export const make = (
  options: AnchoredChannel.Options
): Effect.Effect<AnchoredChannel.Service, AnchoredChannelError, Scope.Scope> =>
  Effect.gen(function* () {
    registerAll()
    const parsed = Target.parse(options.target)
    if (Either.isLeft(parsed)) {
      return yield* new AnchoredChannelError({ reason: "InvalidTarget", target: options.target, cause: parsed.left })
    }
    const target = Target.format(parsed.right)
    const changes = yield* Effect.acquireRelease(PubSub.sliding<void>(1), PubSub.shutdown)
    const sink = makeSink(target, () => {
      // Called by grpc-js outside any fiber; publishing to a sliding PubSub never suspends.
      Effect.runSync(PubSub.publish(changes, undefined))
    })
    const credentials = options.credentials ?? grpc.credentials.createInsecure()
    // An etcd target without endpoints uses the Etcd service of this context, when there is one.
    const etcd = yield* Effect.serviceOption(Etcd)
    const etcdOption = Option.isSome(etcd) ? { [ETCD_CLIENT_KEY]: etcd.value } : {}
    // The etcd resolver logs (skipped records, etcd outages) through this context's logger.
    const runtime = yield* Effect.runtime<never>()
    const channel = yield* Effect.acquireRelease(
      Effect.try({
        try: () => new grpc.Channel(target, credentials, { ...options.channelOptions, ...etcdOption, [RUNTIME_KEY]: runtime, [STATS_KEY]: sink }),
        catch: (cause) => new AnchoredChannelError({ reason: "ChannelFailed", target, cause })
      }),
      (channel) => Effect.sync(() => channel.close())
    )
    const read = Effect.sync(() => sink.read())
    const service: AnchoredChannel.Service = {
      target,
      channel,
      client: (constructor) => new constructor(target, credentials, { channelOverride: channel }),
      stats: read,
      changes: Stream.fromPubSub(changes).pipe(
        Stream.merge(Stream.fromSchedule(Schedule.spaced("1 second"))),
        Stream.mapEffect(() => read),
        (signals) => Stream.concat(Stream.fromEffect(read), signals),
        Stream.changesWith(sameStats)
      ),
      state: Effect.sync(() => channel.getConnectivityState(false)),
      waitForReady: (timeout) => waitForReady(channel, target, timeout)
    }
    return service
  })

/**
 * A layer providing an {@link AnchoredChannel}.
 *
 * @since 0.1.0
 */
export const layer = (options: AnchoredChannel.Options): Layer.Layer<AnchoredChannel, AnchoredChannelError> =>
  Layer.scoped(AnchoredChannel, make(options))

/**
 * A layer whose target is read through `Config` (e.g. `Config.string("GRPC_TARGET")`).
 *
 * @since 0.1.0
 */
export const layerConfig = (
  target: Config.Config<string>,
  options: Omit<AnchoredChannel.Options, "target"> = {}
): Layer.Layer<AnchoredChannel, AnchoredChannelError | ConfigError.ConfigError> =>
  Layer.scoped(
    AnchoredChannel,
    Effect.flatMap(target, (target) => make({ ...options, target }))
  )
