/**
 * `AnchoredChannel`: a grpc-js channel with grpc-anchor's connection pool,
 * owned by an Effect scope. The channel is closed, and with it every
 * connection, when the scope closes.
 *
 * What a layer needs follows from its target, in its type: a `pass:` target
 * needs nothing; `etcd:///SERVICE` needs the {@link Etcd.Etcd} service (the
 * etcd client of your app, e.g. `Etcd.layerConfig(Etcd.config)`); a target
 * that names its etcd endpoints (`etcd://10.0.0.5:2379/SERVICE`) opens its
 * own client to them, with TLS and credentials read through `Config`
 * (`Etcd.credentialsConfig`) from your app's ConfigProvider. A target known
 * only at run time (a `string`) may be an `etcd:///` one, so it needs
 * `Etcd` too. An AnchoredChannel never falls back to `register({ etcd })` or
 * `ETCD_ENDPOINTS`: those belong to plain grpc-js channels.
 *
 * The `etcd` resolver of an AnchoredChannel runs its watch in the Effect
 * context the channel was made in: its warnings (skipped records, etcd
 * outages) go through your app's logger.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { AnchoredChannel, Etcd } from "grpc-anchor"
 *
 * const program = Effect.gen(function* () {
 *   const anchored = yield* AnchoredChannel.AnchoredChannel
 *   const client = anchored.client(EchoClient)
 *   yield* anchored.waitForReady("5 seconds")
 *   yield* Effect.log(yield* anchored.stats)
 * })
 *
 * // Layer<AnchoredChannel, AnchoredChannelError>: needs nothing.
 * const Pass = AnchoredChannel.layer({ target: "pass:///10.0.0.1:9080#2,10.0.0.2:9090" })
 * // Layer<AnchoredChannel, AnchoredChannelError, Etcd>: needs your etcd client.
 * const Billing = AnchoredChannel.layer({ target: "etcd:///billing#2" }).pipe(Layer.provide(Etcd.layerConfig(Etcd.config)))
 * program.pipe(Effect.provide(Pass), Effect.runPromise)
 * ```
 *
 * @since 0.1.0
 */
import * as grpc from "@grpc/grpc-js"
import type * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Target from "../../core/Target.js"
import * as Etcd from "../etcd/Etcd.js"
import { failureOf } from "./internal/failureOf.js"
import { CONTEXT_KEY, ETCD_CLIENT_KEY, STATS_KEY } from "./internal/keys.js"
import { makeSink } from "./internal/stats.js"
import { registerAll } from "./register.js"
import type { ChannelStats } from "./Stats.js"

/**
 * Why an anchored channel could not be made or used.
 *
 * @example
 * ```ts
 * AnchoredChannel.make({ target: "pass:///10.0.0.1:80#999" }).pipe(
 *   Effect.catchTag("AnchoredChannelError", (e) => Effect.logError(e.reason, e.message)) // InvalidTarget, "... position 21 ..."
 * )
 * ```
 *
 * @category errors
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
 * @example
 * ```ts
 * const EchoClient: ClientConstructor<grpc.Client> = grpc.makeGenericClientConstructor(EchoService, "Echo")
 * anchored.client(EchoClient)
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type ClientConstructor<C> = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions
) => C

/**
 * The services a channel to `T` needs: none for `pass:` targets and for
 * `etcd://` targets that name their etcd endpoints, {@link Etcd.Etcd} for
 * `etcd:///SERVICE` and for any target not known when the code is
 * type-checked.
 *
 * @example
 * ```ts
 * type A = AnchoredChannel.Requirements<"pass:///10.0.0.1:9080#2"> // never
 * type B = AnchoredChannel.Requirements<"etcd:///billing#2">       // Etcd.Etcd
 * type C = AnchoredChannel.Requirements<string>                    // Etcd.Etcd
 *
 * // A target built in a variable keeps its scheme in its type with `as const`:
 * const target = `pass:///${host}:9080#2` as const
 * AnchoredChannel.layer({ target }) // Layer<AnchoredChannel, AnchoredChannelError>
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export type Requirements<T extends string> = T extends `pass:${string}` ? never
  : T extends `etcd:///${string}` ? Etcd.Etcd
  : T extends `etcd://${string}/${string}` ? never
  : Etcd.Etcd

/**
 * The types of the {@link AnchoredChannel} service: its shape and its options.
 *
 * @example
 * ```ts
 * const useChannel = (anchored: AnchoredChannel.AnchoredChannel.Shape) => anchored.waitForReady("5 seconds")
 * ```
 *
 * @since 0.1.0
 */
export declare namespace AnchoredChannel {
  /**
   * What an anchored channel offers.
   *
   * @example
   * ```ts
   * const anchored: AnchoredChannel.Shape = yield* AnchoredChannel.AnchoredChannel
   * const billing = anchored.client(BillingClient)
   * ```
   *
   * @since 0.2.0
   */
  export interface Shape {
    /** The canonical target. */
    readonly target: string
    /** The underlying grpc-js channel, for `channelOverride` or nice-grpc. */
    readonly channel: grpc.Channel
    /** A client of the given class on this channel. Do not close it: the scope owns the channel. */
    readonly client: <C>(constructor: ClientConstructor<C>) => C
    /** The connection slots with their state and the calls picked for each. */
    readonly stats: Effect.Effect<ChannelStats>
    /** Stats now, then on every connectivity or address change, and every second while calls flow. */
    readonly changes: Stream.Stream<ChannelStats>
    /** The channel's connectivity state. */
    readonly state: Effect.Effect<grpc.connectivityState>
    /**
     * Connects if idle and waits until at least one connection is READY. At
     * the deadline it fails with `NotReady`, whose message says why in the
     * words a plain grpc-js call would get: e.g. `service "billing" has no
     * endpoints registered in etcd`, no answer from etcd, or the last
     * connection error.
     */
    readonly waitForReady: (timeout: Duration.Input) => Effect.Effect<void, AnchoredChannelError>
  }

  /**
   * How to make an anchored channel.
   *
   * @example
   * ```ts
   * const options: AnchoredChannel.Options = {
   *   target: "pass:///10.0.0.1:9080#2",
   *   credentials: grpc.credentials.createSsl(),
   *   channelOptions: { "grpc.keepalive_time_ms": 30_000 }
   * }
   * ```
   *
   * @since 0.1.0
   */
  export interface Options<T extends string = string> {
    /** `pass:///...` or `etcd://.../service#N`. */
    readonly target: T
    /** Defaults to insecure. */
    readonly credentials?: grpc.ChannelCredentials
    /** grpc-js channel options. */
    readonly channelOptions?: grpc.ChannelOptions
  }
}

/**
 * The AnchoredChannel service.
 *
 * @example
 * ```ts
 * const program = Effect.gen(function* () {
 *   const anchored = yield* AnchoredChannel.AnchoredChannel
 *   return anchored.target
 * })
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class AnchoredChannel extends Context.Service<AnchoredChannel, AnchoredChannel.Shape>()(
  "grpc-anchor/AnchoredChannel"
) {}

const sameStats = (a: ChannelStats, b: ChannelStats): boolean =>
  a.connections.length === b.connections.length &&
  a.connections.every((x, i) => {
    const y = b.connections[i]!
    return x.address === y.address && x.index === y.index && x.state === y.state && x.picked === y.picked &&
      x.inFlight === y.inFlight
  })

/**
 * The NotReady error at the deadline: in TRANSIENT_FAILURE, with the reason a
 * plain grpc-js call gets (no endpoints registered, etcd unreachable, the
 * last connection error); otherwise the state the channel is still in.
 */
const notReady = (channel: grpc.Channel, target: string, slots: () => number): Effect.Effect<never, AnchoredChannelError> =>
  Effect.flatMap(Effect.promise(() => failureOf(channel)), (why) => {
    const state = grpc.connectivityState[channel.getConnectivityState(false)]
    // Before the etcd resolver's first-list timeout (grpc_anchor.etcd_resolution_timeout_ms) the channel has no reason yet.
    const noList = target.startsWith("etcd:") && slots() === 0 ? ", with no endpoint list from etcd yet" : ""
    return Effect.fail(
      new AnchoredChannelError({ reason: "NotReady", target, cause: new Error(why ?? `still ${state} at the deadline${noList}`) })
    )
  })

const waitForReady = (
  channel: grpc.Channel,
  target: string,
  timeout: Duration.Input,
  slots: () => number
): Effect.Effect<void, AnchoredChannelError> =>
  Effect.callback<void, AnchoredChannelError>((resume) => {
    const deadline = Date.now() + Duration.toMillis(timeout)
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
          return resume(notReady(channel, target, slots))
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

/** The channel options by which an `etcd` target's resolver gets its client and runs in this context. */
const etcdOptions = (target: Target.Target): Effect.Effect<Record<string, unknown>, never, Etcd.Etcd> =>
  Effect.gen(function* () {
    if (target._tag === "Pass") return {}
    // The authority names the etcd endpoints: the resolver opens its own client to them.
    if (target.etcd.length > 0) return { [CONTEXT_KEY]: yield* Effect.context<never>() }
    return { [CONTEXT_KEY]: yield* Effect.context<never>(), [ETCD_CLIENT_KEY]: yield* Etcd.Etcd }
  })

/**
 * Makes an anchored channel in the current scope; closing the scope closes
 * the channel and every connection. The target's type says which services
 * it needs ({@link Requirements}).
 *
 * @example
 * ```ts
 * const calls = Effect.scoped(
 *   Effect.gen(function* () {
 *     const anchored = yield* AnchoredChannel.make({ target: "pass:///127.0.0.1:9080#2" })
 *     yield* anchored.waitForReady("5 seconds")
 *     return anchored.client(EchoClient)
 *   })
 * )
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <const T extends string>(
  options: AnchoredChannel.Options<T>
): Effect.Effect<AnchoredChannel.Shape, AnchoredChannelError, Scope.Scope | Requirements<T>> =>
  Effect.gen(function* () {
    registerAll()
    const parsed = Target.parse(options.target)
    if (Result.isFailure(parsed)) {
      return yield* new AnchoredChannelError({ reason: "InvalidTarget", target: options.target, cause: parsed.failure })
    }
    const target = Target.format(parsed.success)
    const resolverOptions = yield* etcdOptions(parsed.success)
    const changes = yield* Effect.acquireRelease(PubSub.sliding<void>(1), PubSub.shutdown)
    // Called by grpc-js outside any fiber; a sliding PubSub never suspends.
    const sink = makeSink(target, () => void PubSub.publishUnsafe(changes, undefined))
    const credentials = options.credentials ?? grpc.credentials.createInsecure()
    const channel = yield* Effect.acquireRelease(
      Effect.try({
        try: () => new grpc.Channel(target, credentials, { ...options.channelOptions, ...resolverOptions, [STATS_KEY]: sink }),
        catch: (cause) => new AnchoredChannelError({ reason: "ChannelFailed", target, cause })
      }),
      (channel) => Effect.sync(() => channel.close())
    )
    const read = Effect.sync(() => sink.read())
    const service: AnchoredChannel.Shape = {
      target,
      channel,
      client: (constructor) => new constructor(target, credentials, { channelOverride: channel }),
      stats: read,
      // Subscribed before the first read, so no change falls between the two.
      changes: Stream.unwrap(
        Effect.map(PubSub.subscribe(changes), (subscription) =>
          Stream.fromSubscription(subscription).pipe(
            Stream.merge(Stream.fromSchedule(Schedule.spaced("1 second"))),
            Stream.mapEffect(() => read),
            (signals) => Stream.concat(Stream.fromEffect(read), signals),
            Stream.changesWith(sameStats)
          ))
      ),
      state: Effect.sync(() => channel.getConnectivityState(false)),
      waitForReady: (timeout) => waitForReady(channel, target, timeout, () => sink.read().connections.length)
    }
    return service
    // The Etcd service is read only for `etcd:///` targets, exactly when Requirements<T> names it.
  }) as Effect.Effect<AnchoredChannel.Shape, AnchoredChannelError, Scope.Scope | Requirements<T>>

/**
 * A layer providing an {@link AnchoredChannel}; the channel lives as long as
 * the layer. A `pass:` target's layer needs nothing, an `etcd:///` target's
 * layer needs {@link Etcd.Etcd} ({@link Requirements}).
 *
 * @example
 * ```ts
 * const Pass = AnchoredChannel.layer({ target: "pass:///10.0.0.1:9080#2,10.0.0.2:9090" })
 * const Billing = AnchoredChannel.layer({ target: "etcd:///billing#2" }).pipe(
 *   Layer.provide(Etcd.layerConfig(Etcd.config))
 * )
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = <const T extends string>(
  options: AnchoredChannel.Options<T>
): Layer.Layer<AnchoredChannel, AnchoredChannelError, Requirements<T>> =>
  Layer.effect(AnchoredChannel, make(options))

/**
 * A layer whose target is read through `Config`. A target read at run time
 * can be an `etcd:///` target, so a `Config<string>` layer needs
 * {@link Etcd.Etcd}; a config typed as a `pass:` target needs nothing.
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * const Channel = AnchoredChannel.layerConfig(Config.String("GRPC_TARGET")).pipe(
 *   Layer.provide(Etcd.layerConfig(Etcd.config))
 * )
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerConfig = <T extends string>(
  target: Config.Config<T>,
  options: Omit<AnchoredChannel.Options, "target"> = {}
): Layer.Layer<AnchoredChannel, AnchoredChannelError | Config.ConfigError, Requirements<T>> =>
  Layer.effect(
    AnchoredChannel,
    Effect.flatMap(target, (target) => make({ ...options, target }))
  ) as Layer.Layer<AnchoredChannel, AnchoredChannelError | Config.ConfigError, Requirements<T>>
