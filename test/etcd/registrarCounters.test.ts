/**
 * Registrar.Counters against a real etcd (one server for the file): what a
 * lease revoked or a key deleted behind the registrar's back does to them,
 * keep-alives moving the renewal time, and the Promise API's handle.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Etcd from "../../src/adapters/etcd/Etcd.js"
import * as Registrar from "../../src/adapters/etcd/Registrar.js"
import { registerEndpoint } from "../../src/main/promise/registerEndpoint.js"
import { captureLogs, eventually, leaseOf, waitUntil } from "../support/etcd.js"
import { etcdForFile } from "../support/etcdForFile.js"

const server = etcdForFile({ checkHandles: true })
const logs = captureLogs()
const provide = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.scoped,
    Effect.provide(Layer.suspend(() => Etcd.layer({ hosts: server.endpoints })).pipe(Layer.provide(logs.layer))),
    Effect.provide(logs.layer)
  )

/** Waits until the registrar is registered under a lease other than `leaseId`, and returns that lease. */
const registeredOnAnotherLease = (registrar: Registrar.Registrar.Shape, leaseId: string) =>
  waitUntil(
    "registered under a new lease",
    registrar.status.pipe(Effect.map((s) => s._tag === "Registered" && s.leaseId !== leaseId))
  ).pipe(Effect.andThen(registrar.status), Effect.map((s) => (s._tag === "Registered" ? s.leaseId : "")))

describe("Registrar.Counters (real etcd)", () => {
  it.live("a lease revoked behind its back: one re-grant, one re-put, one move; a key deleted: one more re-put only", () =>
    provide(
      Effect.gen(function* () {
        const registrar = yield* Registrar.make({ service: "counted", address: "127.0.0.1:7100", ttl: 5 })
        const first = yield* registrar.awaitRegistered.pipe(Effect.timeout("10 seconds"))
        expect(yield* registrar.counters).toMatchObject({ leaseRegrants: 0, recordReputs: 0, leaseMoves: 0 })

        yield* Effect.promise(() => server.ctlOk(["lease", "revoke", first.leaseId]))
        const second = yield* registeredOnAnotherLease(registrar, first.leaseId)
        expect(yield* leaseOf(server.ctl, registrar.key)).toBe(second)
        expect(yield* registrar.counters).toMatchObject({ leaseRegrants: 1, recordReputs: 1, leaseMoves: 1 })

        const before = yield* registrar.status
        yield* Effect.promise(() => server.ctlOk(["del", registrar.key]))
        // Put back under the same lease: a re-put, neither a re-grant nor a move.
        yield* waitUntil(
          "the record put back",
          registrar.status.pipe(Effect.map((s) => s._tag === "Registered" && before._tag === "Registered" && s.revision !== before.revision))
        )
        expect(yield* leaseOf(server.ctl, registrar.key)).toBe(second)
        expect(yield* registrar.counters).toMatchObject({ leaseRegrants: 1, recordReputs: 2, leaseMoves: 1 })
      })
    ))

  it.live("keep-alives move the time of the last renewal, as the Clock reads it", () =>
    provide(
      Effect.gen(function* () {
        // A 1 s lease is renewed about every 330 ms.
        const registrar = yield* Registrar.make({ service: "counted", address: "127.0.0.1:7101", ttl: 1 })
        yield* registrar.awaitRegistered.pipe(Effect.timeout("10 seconds"))
        yield* waitUntil("a first renewal", registrar.counters.pipe(Effect.map((c) => c.lastKeepAliveMillis !== undefined)))
        const first = (yield* registrar.counters).lastKeepAliveMillis!
        const start = Date.now()
        expect(Math.abs(first - start)).toBeLessThan(60_000)
        yield* waitUntil("a later renewal", registrar.counters.pipe(Effect.map((c) => c.lastKeepAliveMillis! > first)), {
          timeout: "10 seconds"
        })
        // Renewals of one lease are no re-grants.
        expect(yield* registrar.counters).toMatchObject({ leaseRegrants: 0, recordReputs: 0, leaseMoves: 0 })
      })
    ))

  it("registerEndpoint's handle reads the same counters, after close() too", async () => {
    const registration = await registerEndpoint({ etcd: { hosts: server.endpoints }, service: "counted", address: "127.0.0.1:7102", ttl: 5 })
    try {
      expect(registration.counters()).toMatchObject({ leaseRegrants: 0, recordReputs: 0, leaseMoves: 0 })
      const leaseId = (registration.status() as { leaseId: string }).leaseId
      await server.ctlOk(["lease", "revoke", leaseId])
      await eventually(
        "a new lease",
        () => {
          const status = registration.status()
          return status._tag === "Registered" && status.leaseId !== leaseId
        },
        { timeoutMs: 15_000, intervalMs: 50 }
      )
      expect(registration.counters()).toMatchObject({ leaseRegrants: 1, recordReputs: 1, leaseMoves: 1 })
    } finally {
      await registration.close()
    }
    expect(registration.counters().leaseRegrants).toBe(1)
  })
})
