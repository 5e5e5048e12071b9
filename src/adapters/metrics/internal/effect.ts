/**
 * The Effect view of {@link collect}: one series per point in the
 * `Metric.MetricRegistry` of the layer's context, registered with
 * `Metric.registerUnsafe`, so `Metric.snapshot` (and any exporter reading
 * it) reads the value from the sources when it runs: Effect's observable
 * gauge. Which series exist (addresses, services come and go) is
 * reconciled every `interval`. Internal.
 */
import type * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { collect, type Point } from "./collect.js"

const keyOf = (point: Point): string =>
  `${point.definition.name}\u0000${point.definition.attributes.map((a) => point.attributes[a]).join("\u0000")}`

/** Registers the series in the current context's registry, reconciled every `interval`; removed with the scope. */
export const runEffectView = (interval: Duration.Duration): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const context = yield* Effect.context<never>()
    /** The values of the current collection, by series; one collection per synchronous snapshot. */
    let cache: Map<string, number> | undefined
    const read = (): Map<string, number> => {
      if (cache === undefined) {
        cache = new Map(collect().map((point) => [keyOf(point), point.value]))
        // Metric.snapshot reads every series in one synchronous pass: they share this collection.
        queueMicrotask(() => {
          cache = undefined
        })
      }
      return cache
    }
    const series = new Map<string, { readonly registration: Metric.Registration; last: number }>()
    const register = (key: string, point: Point): void => {
      const { definition } = point
      const options = { description: `${definition.description} (${definition.unit})`, attributes: { ...point.attributes } }
      const entry = { registration: undefined as unknown as Metric.Registration, last: point.value }
      // A series whose source went since the last reconcile keeps its last value until the next.
      const value = (): number => {
        const now = read().get(key)
        if (now !== undefined) entry.last = now
        return entry.last
      }
      const noop = () => {}
      entry.registration = definition.kind === "counter"
        ? Metric.registerUnsafe(Metric.counter(definition.name, { ...options, incremental: true }), context as Context.Context<never>, {
          get: () => ({ count: value(), incremental: true }),
          update: noop,
          modify: noop
        })
        : Metric.registerUnsafe(Metric.gauge(definition.name, options), context as Context.Context<never>, {
          get: () => ({ value: value() }),
          update: noop,
          modify: noop
        })
      series.set(key, entry)
    }
    const reconcile = Effect.sync(() => {
      const points = collect()
      const seen = new Set<string>()
      for (const point of points) {
        const key = keyOf(point)
        seen.add(key)
        if (!series.has(key)) register(key, point)
      }
      for (const [key, entry] of series) {
        if (!seen.has(key)) {
          entry.registration.remove()
          series.delete(key)
        }
      }
    })
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const entry of series.values()) entry.registration.remove()
        series.clear()
      })
    )
    yield* reconcile
    yield* Effect.forkScoped(Effect.repeat(reconcile, Schedule.spaced(interval)))
  })
