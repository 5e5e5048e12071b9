/**
 * The Effect view: `Metrics.layer` beside an AnchoredChannel, read with
 * `Metric.snapshot` while a real server dies, as an Effect app reads it.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import { startEchoServer } from "../../packages/cli/src/echo/echo.js"
import { AnchoredChannel, Metrics } from "../../src/main/index.js"
import { eventually } from "../support/grpc.js"

const TARGET = "grpc_anchor.target"
const ADDRESS = "grpc_anchor.address"
const STATE = "grpc_anchor.state"

/** The value of series `id` with attributes including `match` in a snapshot (gauge value or counter count). */
const valueIn = (snapshot: ReadonlyArray<Metric.Metric.Snapshot>, id: string, match: Record<string, string>): number | undefined => {
  const found = snapshot.find((m) => m.id === id && Object.entries(match).every(([k, v]) => m.attributes?.[k] === v))
  if (found === undefined) return undefined
  const state = found.state as { readonly value?: number; readonly count?: number }
  return state.value ?? state.count
}

describe("Metrics.layer (Effect)", () => {
  it.live("puts the pool's metrics in Metric.snapshot, read live, and removes them with the layer", () =>
    Effect.gen(function* () {
      const a = yield* Effect.acquireRelease(Effect.promise(() => startEchoServer({ name: "a" })), (s) => Effect.promise(() => s.close({ force: true })))
      const b = yield* Effect.acquireRelease(Effect.promise(() => startEchoServer({ name: "b" })), (s) => Effect.promise(() => s.close({ force: true })))
      const target: `pass:${string}` = `pass:///${a.address}#2,${b.address}`
      const registry = new Map()
      const program = Effect.gen(function* () {
        const anchored = yield* AnchoredChannel.AnchoredChannel
        yield* anchored.waitForReady("10 seconds")
        // The series appear at the layer's next reconcile (100 ms here); their values are read at the snapshot.
        const at = (server: { address: string }, state: string) => ({ [TARGET]: target, [ADDRESS]: server.address, [STATE]: state })
        yield* Effect.promise(() =>
          eventually("2 + 1 READY in the snapshot", () => {
            const snapshot = Metric.snapshotUnsafe(Context.make(Metric.MetricRegistry, registry))
            return valueIn(snapshot, "grpc_anchor.connections", at(a, "READY")) === 2 && valueIn(snapshot, "grpc_anchor.connections", at(b, "READY")) === 1
          })
        )
        let snapshot = yield* Metric.snapshot
        expect(valueIn(snapshot, "grpc_anchor.connections.wanted", { [TARGET]: target, [ADDRESS]: a.address })).toBe(2)
        const picks = snapshot.find((m) => m.id === "grpc_anchor.picks")
        expect(picks?.type).toBe("Counter")
        yield* Effect.promise(() => b.close({ force: true }))
        // Read live: no reconcile needed for a value to change.
        yield* Effect.promise(() =>
          eventually("b: 0 READY", () => {
            const now = Metric.snapshotUnsafe(Context.make(Metric.MetricRegistry, registry))
            return valueIn(now, "grpc_anchor.connections", at(b, "READY")) === 0
          })
        )
        snapshot = yield* Metric.snapshot
        expect(valueIn(snapshot, "grpc_anchor.connections.wanted", { [TARGET]: target, [ADDRESS]: b.address })).toBe(1)
        // Effect's own exporters read the same registry: its Prometheus text has the series too.
        const text = yield* PrometheusMetrics.format()
        expect(text).toMatch(new RegExp(`^grpc_anchor_connections_wanted\\{[^}]*grpc_anchor_address="${a.address}"[^}]*\\} 2$`, "m"))
      }).pipe(
        Effect.provide(Layer.merge(AnchoredChannel.layer({ target }), Metrics.layer({ interval: "100 millis" }))),
        Effect.provideService(Metric.MetricRegistry, registry)
      )
      yield* program
      // The layer is gone: so are its series.
      expect([...registry.values()].filter((m) => String(m.id).startsWith("grpc_anchor."))).toEqual([])
    }).pipe(Effect.scoped))

  it("refuses an interval that is not a finite duration above 0, naming it", () => {
    for (const interval of [0, -5, "Infinity" as const, "soon" as never]) {
      expect(() => Metrics.layer({ interval })).toThrow(/Metrics\.layer: interval must be a finite duration above 0/)
    }
    expect(() => Metrics.layer({ interval: "250 millis" })).not.toThrow()
  })
})
