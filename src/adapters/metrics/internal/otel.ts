/**
 * The OpenTelemetry view of {@link collect}: one observable instrument per
 * metric and one batch callback that reads the sources once per collection.
 * Written against the shape of `@opentelemetry/api`'s `MeterProvider`
 * (structurally), so grpc-anchor imports nothing from it: the optional peer
 * is loaded only by the app that passes its provider. Internal.
 */
import { collect, type Definition, definitions } from "./collect.js"

/** What grpc-anchor uses of an `@opentelemetry/api` `MeterProvider`. */
export interface MeterProviderLike {
  getMeter(name: string, version?: string): MeterLike
}

/** An observable instrument, opaque here. */
export type ObservableLike = object

/** What grpc-anchor uses of an `@opentelemetry/api` `Meter`. */
export interface MeterLike {
  createObservableGauge(name: string, options?: { readonly description?: string; readonly unit?: string }): ObservableLike
  createObservableCounter(name: string, options?: { readonly description?: string; readonly unit?: string }): ObservableLike
  addBatchObservableCallback(callback: (result: BatchResultLike) => void, observables: Array<ObservableLike>): void
  removeBatchObservableCallback(callback: (result: BatchResultLike) => void, observables: Array<ObservableLike>): void
}

/** What grpc-anchor uses of an `@opentelemetry/api` `BatchObservableResult`. */
export interface BatchResultLike {
  observe(observable: ObservableLike, value: number, attributes?: Record<string, string>): void
}

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
  const callback = (result: BatchResultLike): void => {
    for (const point of collect()) result.observe(instruments.get(point.definition)!, point.value, { ...point.attributes })
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
