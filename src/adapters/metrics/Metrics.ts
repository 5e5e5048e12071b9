/**
 * Metrics of grpc-anchor's pools, etcd services and registrations, for
 * OpenTelemetry and for Effect, from one source: the counters the core and
 * the adapters keep anyway, read when metrics are collected. Nothing is
 * added to a call's path: picks were already counted per connection.
 *
 * - OpenTelemetry: {@link register} puts observable instruments on your
 *   `MeterProvider` (meter `grpc-anchor`). `@opentelemetry/api` is an
 *   optional peer dependency: grpc-anchor imports nothing from it, so an
 *   app that does not call `register` loads and pays nothing.
 * - Effect: {@link layer} puts the same metrics in the `Metric` registry,
 *   as series whose value is read when `Metric.snapshot` runs (and so by
 *   Effect's OpenTelemetry exporter).
 *
 * Every metric is listed in {@link definitions} (and the README): names
 * `grpc_anchor.*`, UCUM units, attributes `grpc_anchor.target`,
 * `grpc_anchor.address`, `grpc_anchor.state`, `grpc_anchor.service`,
 * `grpc_anchor.reason`. Every channel's pool is reported, plain grpc-js
 * channels and AnchoredChannels alike, from its first address list until
 * it is closed.
 *
 * @example
 * ```ts
 * import { metrics } from "@opentelemetry/api"
 * import { Metrics } from "grpc-anchor"
 * // After your OpenTelemetry SDK has set the global MeterProvider:
 * const registration = Metrics.register(metrics.getMeterProvider())
 * // ... on shutdown:
 * registration.unregister()
 * ```
 *
 * @since 0.3.0
 */
import * as Duration from "effect/Duration"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { collect as collectPoints, type Definition, definitions as all, type Kind, type Point } from "./internal/collect.js"
import { runEffectView } from "./internal/effect.js"
import { type BatchResultLike, type MeterLike, type MeterProviderLike, type ObservableLike, registerOn } from "./internal/otel.js"

export type { BatchResultLike, Definition, Kind, MeterLike, MeterProviderLike, ObservableLike, Point }

/**
 * Every metric grpc-anchor reports: name, kind (`gauge` or `counter`),
 * unit, attributes and meaning.
 *
 * @example
 * ```ts
 * import { Metrics } from "grpc-anchor"
 * Metrics.definitions.map((d) => `${d.name} (${d.unit})`) // ["grpc_anchor.connections ({connection})", ...]
 * ```
 *
 * @since 0.3.0
 */
export const definitions: ReadonlyArray<Definition> = Object.values(all)

/**
 * Every metric's values now, as both views report them: one point per
 * metric and attribute set (two channels on the same target are added
 * up). O(connections + watches + registrations); for tests, tools and
 * other metric systems.
 *
 * @example
 * ```ts
 * import { Metrics } from "grpc-anchor"
 * const ready = Metrics.collect().filter((p) => p.definition.name === "grpc_anchor.connections" && p.attributes["grpc_anchor.state"] === "READY")
 * ```
 *
 * @since 0.3.0
 */
export const collect = (): ReadonlyArray<Point> => collectPoints()

/**
 * What {@link register} returns: `unregister` stops the reports (the
 * instruments stay on the meter, silent; OpenTelemetry cannot delete them).
 *
 * @example
 * ```ts
 * import { metrics } from "@opentelemetry/api"
 * import { Metrics } from "grpc-anchor"
 * const registration: Metrics.Registration = Metrics.register(metrics.getMeterProvider())
 * process.once("SIGTERM", () => registration.unregister())
 * ```
 *
 * @since 0.3.0
 */
export interface Registration {
  readonly unregister: () => void
}

/**
 * Registers grpc-anchor's observable instruments on `provider` (an
 * `@opentelemetry/api` `MeterProvider`, e.g. `metrics.getMeterProvider()`
 * once your SDK has set it, or the SDK's `MeterProvider` itself). Values
 * are read when the SDK collects; nothing runs between collections.
 * Register once per provider.
 *
 * @throws TypeError when `provider` is not a `MeterProvider` (a defect in
 * the caller).
 *
 * @example
 * ```ts
 * import { MeterProvider } from "@opentelemetry/sdk-metrics"
 * import { PrometheusExporter } from "@opentelemetry/exporter-prometheus"
 * import { Metrics } from "grpc-anchor"
 * const exporter = new PrometheusExporter({ host: "127.0.0.1", port: 9464 })
 * const provider = new MeterProvider({ readers: [exporter] })
 * const registration = Metrics.register(provider) // curl 127.0.0.1:9464/metrics
 * ```
 *
 * @since 0.3.0
 */
export const register = (provider: MeterProviderLike): Registration => {
  if (typeof (provider as { getMeter?: unknown } | null | undefined)?.getMeter !== "function") {
    throw new TypeError(
      `Metrics.register needs an OpenTelemetry MeterProvider (the SDK's MeterProvider, or metrics.getMeterProvider() ` +
        `from @opentelemetry/api once your SDK has set it), got ${provider === null ? "null" : typeof provider}`
    )
  }
  // The meter's version is the package version this module ships in.
  return registerOn(provider, "0.3.0")
}

/**
 * A layer that reports grpc-anchor's metrics as Effect `Metric`s in the
 * registry of its context, for as long as it lives. Their values are read
 * from the sources whenever `Metric.snapshot` runs (Effect's observable
 * series, `Metric.registerUnsafe`); which series exist follows the pools,
 * services and registrations every `interval` (default 1 second), so a
 * new address shows up within that time. Counters are Effect counters,
 * the others gauges; the unit is at the end of each description.
 *
 * @throws RangeError when `interval` is not a finite duration above 0 (a
 * defect in the caller).
 *
 * @example
 * ```ts
 * import { Effect, Layer, Metric } from "effect"
 * import { AnchoredChannel, Metrics } from "grpc-anchor"
 * const program = Effect.gen(function* () {
 *   const anchored = yield* AnchoredChannel.AnchoredChannel
 *   yield* anchored.waitForReady("5 seconds")
 *   const snapshot = yield* Metric.snapshot
 *   return snapshot.filter((m) => m.id === "grpc_anchor.connections")
 * })
 * program.pipe(
 *   Effect.provide(Layer.merge(AnchoredChannel.layer({ target: "pass:///127.0.0.1:9080#2" }), Metrics.layer())),
 *   Effect.runPromise
 * )
 * ```
 *
 * @since 0.3.0
 */
export const layer = (options: { readonly interval?: Duration.Input } = {}): Layer.Layer<never> => {
  const interval = options.interval === undefined ? Option.some(Duration.seconds(1)) : Duration.fromInput(options.interval)
  if (Option.isNone(interval) || !Duration.isFinite(interval.value) || Duration.toMillis(interval.value) <= 0) {
    throw new RangeError(
      `Metrics.layer: interval must be a finite duration above 0 (e.g. "1 second", 500), got ${JSON.stringify(String(options.interval))}`
    )
  }
  return Layer.effectDiscard(runEffectView(interval.value))
}
