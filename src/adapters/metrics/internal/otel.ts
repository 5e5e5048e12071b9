/**
 * The OpenTelemetry view of {@link collect}: one observable instrument per
 * metric and one batch callback that reads the sources once per collection.
 * Written against the shape of `@opentelemetry/api`'s `MeterProvider`
 * (structurally), so grpc-anchor imports nothing from it: the optional peer
 * is loaded only by the app that passes its provider. Internal.
 */
import { collect, type Definition, definitions } from "./collect.js"

/**
 * What grpc-anchor uses of an `@opentelemetry/api` `MeterProvider`: any
 * OpenTelemetry provider fits (the SDK's, or `metrics.getMeterProvider()`).
 *
 * @example
 * ```ts
 * import { metrics } from "@opentelemetry/api"
 * import type { Metrics } from "grpc-anchor"
 * const provider: Metrics.MeterProviderLike = metrics.getMeterProvider()
 * ```
 *
 * @since 0.3.0
 */
export interface MeterProviderLike {
  getMeter(name: string, version?: string): MeterLike
}

/**
 * An observable instrument, opaque here.
 *
 * @example
 * ```ts
 * import type { Metrics } from "grpc-anchor"
 * const isInstrument = (u: unknown): u is Metrics.ObservableLike => typeof u === "object" && u !== null
 * ```
 *
 * @since 0.3.0
 */
export type ObservableLike = object

/**
 * What grpc-anchor uses of an `@opentelemetry/api` `Meter`.
 *
 * @example
 * ```ts
 * import { metrics } from "@opentelemetry/api"
 * import type { Metrics } from "grpc-anchor"
 * const meter: Metrics.MeterLike = metrics.getMeterProvider().getMeter("grpc-anchor")
 * ```
 *
 * @since 0.3.0
 */
export interface MeterLike {
  createObservableGauge(name: string, options?: { readonly description?: string; readonly unit?: string }): ObservableLike
  createObservableCounter(name: string, options?: { readonly description?: string; readonly unit?: string }): ObservableLike
  addBatchObservableCallback(callback: (result: BatchResultLike) => void, observables: Array<ObservableLike>): void
  removeBatchObservableCallback(callback: (result: BatchResultLike) => void, observables: Array<ObservableLike>): void
}

/**
 * What grpc-anchor uses of an `@opentelemetry/api` `BatchObservableResult`.
 *
 * @example
 * ```ts
 * import type { Metrics } from "grpc-anchor"
 * const zero = (result: Metrics.BatchResultLike, instrument: Metrics.ObservableLike) => result.observe(instrument, 0)
 * ```
 *
 * @since 0.3.0
 */
export interface BatchResultLike {
  observe(observable: ObservableLike, value: number, attributes?: Record<string, string>): void
}

/** How long a gauge whose source went is still observed, at 0. */
const GONE_MS = 10 * 60_000

/** Registers the instruments on `provider`'s meter `grpc-anchor`; the result removes the callback. */
export const registerOn = (provider: MeterProviderLike, version: string): { readonly unregister: () => void } => {
  const meter = provider.getMeter("grpc-anchor", version)
  const instruments = new Map<Definition, ObservableLike>()
  for (const definition of Object.values(definitions)) {
    const options = { description: definition.description, unit: definition.unit }
    instruments.set(
      definition,
      definition.kind === "counter"
        ? meter.createObservableCounter(definition.name, options)
        : meter.createObservableGauge(definition.name, options)
    )
  }
  const observables = [...instruments.values()]
  // The SDK's cumulative readers (the Prometheus exporter's among them) keep
  // reporting the last value of a series that is no longer observed: a gauge
  // whose source went (an address removed, a watch ended) is observed at 0
  // for GONE_MS more (every reader of the provider collects in that time),
  // so it does not stay at its last value. A counter keeps its total.
  type Series = { readonly instrument: ObservableLike; readonly attributes: Record<string, string> }
  let gauges = new Map<string, Series>()
  const gone = new Map<string, Series & { readonly since: number }>()
  const callback = (result: BatchResultLike): void => {
    const now = Date.now()
    const seen = new Map<string, Series>()
    for (const point of collect(now)) {
      const instrument = instruments.get(point.definition)!
      const attributes = { ...point.attributes }
      result.observe(instrument, point.value, attributes)
      if (point.definition.kind === "gauge") {
        const key = `${point.definition.name}\u0000${point.definition.attributes.map((a) => attributes[a]).join("\u0000")}`
        seen.set(key, { instrument, attributes })
        gone.delete(key)
      }
    }
    for (const [key, series] of gauges) if (!seen.has(key)) gone.set(key, { ...series, since: now })
    for (const [key, series] of gone) {
      if (now - series.since > GONE_MS) gone.delete(key)
      else result.observe(series.instrument, 0, series.attributes)
    }
    gauges = seen
  }
  meter.addBatchObservableCallback(callback, observables)
  let registered = true
  return {
    unregister: () => {
      if (!registered) return
      registered = false
      meter.removeBatchObservableCallback(callback, observables)
    }
  }
}
