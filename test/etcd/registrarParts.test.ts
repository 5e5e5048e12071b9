/**
 * The Registrar's parts one by one (src/adapters/etcd/internal/registrar/):
 * the abandoned-lease cleanup and one lease session against a real etcd
 * (one server for the file), the status cell and the record check without.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import fc from "fast-check"
import * as Etcd from "../../src/adapters/etcd/Etcd.js"
import { makeAbandoned } from "../../src/adapters/etcd/internal/registrar/abandoned.js"
import * as Tally from "../../src/adapters/etcd/internal/registrar/counters.js"
import { check } from "../../src/adapters/etcd/internal/registrar/record.js"
import { retryScheduleFor } from "../../src/adapters/etcd/internal/registrar/retry.js"
import { LeaseLost, session } from "../../src/adapters/etcd/internal/registrar/session.js"
import { makeStatus } from "../../src/adapters/etcd/internal/registrar/status.js"
import { captureLogs, leaseOf, waitUntil } from "../support/etcd.js"
import { etcdForFile } from "../support/etcdForFile.js"

const server = etcdForFile({ checkHandles: true })
const logs = captureLogs()

/** An etcd client on the file's server, in the test's scope. */
const client = Effect.suspend(() => Etcd.make({ hosts: server.endpoints })).pipe(Effect.orDie)
const provideLogs = <A, E, R>(effect: Effect.Effect<A, E, R>) => effect.pipe(Effect.provide(logs.layer))

/** Whether etcd still has `lease` (hex), as etcdctl sees it. */
const leaseExists = (lease: bigint) =>
  Effect.promise(() => server.ctlOk(["lease", "timetolive", lease.toString(16)])).pipe(
    Effect.map((out) => !out.includes("already expired"))
  )

describe("abandoned leases (real etcd)", () => {
  it.live("revokes every abandoned lease but the current one, and forgets those etcd no longer has", () =>
    provideLogs(
      Effect.gen(function* () {
        const etcd = yield* client
        const abandoned = yield* makeAbandoned(etcd, Duration.seconds(2), {})
        const [a, current, gone] = yield* Effect.forEach([1, 2, 3], () => Effect.map(etcd.leaseGrant(60), (l) => l.id))
        yield* Effect.promise(() => server.ctlOk(["lease", "revoke", gone!.toString(16)]))
        for (const lease of [a!, current!, gone!]) yield* abandoned.add(lease)

        yield* abandoned.revokeExcept(current!)
        expect([...(yield* abandoned.pending)]).toEqual([current])
        expect(yield* leaseExists(a!)).toBe(false)
        expect(yield* leaseExists(current!)).toBe(true)
        yield* etcd.leaseRevoke(current!)
      })
    ).pipe(Effect.scoped))

  it.live("keeps a lease whose revoke timed out (etcd hung) for the next round", () =>
    provideLogs(
      Effect.gen(function* () {
        const etcd = yield* client
        const abandoned = yield* makeAbandoned(etcd, Duration.millis(300), {})
        const lease = (yield* etcd.leaseGrant(60)).id
        yield* abandoned.add(lease)
        yield* Effect.acquireRelease(Effect.sync(() => server.member.pause()), () => Effect.sync(() => server.member.resume()))
        yield* abandoned.revokeExcept(0n)
        expect([...(yield* abandoned.pending)]).toEqual([lease])
        server.member.resume()
        // The client may need a moment to trust the member again: a bounded wait, not a sleep.
        yield* waitUntil(
          "the abandoned lease revoked after etcd is back",
          abandoned.revokeExcept(0n).pipe(Effect.andThen(abandoned.pending), Effect.map((set) => set.size === 0)),
          { timeout: "15 seconds", interval: "100 millis" }
        )
        expect(yield* leaseExists(lease)).toBe(false)
      })
    ).pipe(Effect.scoped))

  it.live("runs one revoke round at a time: a round asked for while one waits on etcd does nothing", () =>
    provideLogs(
      Effect.gen(function* () {
        const etcd = yield* client
        // Two leases, each revoke bounded by 1 s: a round against a hung etcd takes 2 s.
        const abandoned = yield* makeAbandoned(etcd, Duration.seconds(1), {})
        const leases = yield* Effect.forEach([1, 2], () => Effect.map(etcd.leaseGrant(60), (l) => l.id))
        for (const lease of leases) yield* abandoned.add(lease)
        yield* Effect.acquireRelease(Effect.sync(() => server.member.pause()), () => Effect.sync(() => server.member.resume()))
        const first = yield* Effect.forkChild(abandoned.revokeExcept(0n))
        yield* Effect.sleep("100 millis")
        // Returns without waiting for the first round (which would take it past the first's end).
        yield* abandoned.revokeExcept(0n)
        expect(first.pollUnsafe()).toBeUndefined()
        server.member.resume()
        yield* Fiber.join(first)
        yield* waitUntil(
          "both revoked",
          abandoned.revokeExcept(0n).pipe(Effect.andThen(abandoned.pending), Effect.map((set) => set.size === 0)),
          { timeout: "15 seconds", interval: "100 millis" }
        )
      })
    ).pipe(Effect.scoped))
})

/** The parts one session needs, on the file's etcd, for a record `key` -> `value`. */
const registration = (key: string, ttl: number) =>
  Effect.gen(function* () {
    const etcd = yield* client
    const revokeTimeout = Duration.seconds(2)
    return {
      etcd,
      record: { ttl, address: key.split("/")[1]!, key, value: `{"Op":0,"Addr":"${key.split("/")[1]}","Metadata":null}` },
      schedule: retryScheduleFor(ttl),
      revokeTimeout,
      annotations: { key },
      status: yield* makeStatus,
      counters: yield* Tally.makeCounters,
      abandoned: yield* makeAbandoned(etcd, revokeTimeout, {})
    }
  })

describe("one lease session (real etcd)", () => {
  it.live("puts the record under a new lease; a lease revoked from outside ends it with LeaseLost and abandons the lease", () =>
    provideLogs(
      Effect.gen(function* () {
        const r = yield* registration("session/127.0.0.1:8000", 5)
        const fiber = yield* Effect.forkChild(session(r, 1))
        const registered = yield* r.status.awaitRegistered.pipe(Effect.timeout("10 seconds"))
        expect(yield* leaseOf(server.ctl, r.record.key)).toBe(registered.leaseId)
        expect(yield* r.counters.get).toMatchObject({ leaseRegrants: 0, recordReputs: 0, leaseMoves: 0 })

        yield* Effect.promise(() => server.ctlOk(["lease", "revoke", registered.leaseId]))
        const exit = yield* Fiber.await(fiber).pipe(Effect.timeout("10 seconds"))
        expect(Exit.isFailure(exit)).toBe(true)
        const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.findErrorOption(exit.cause)) : undefined
        expect(error).toBeInstanceOf(LeaseLost)
        expect(error?.reason).toMatch(/lease lost/)
        expect([...(yield* r.abandoned.pending)].map((id) => id.toString(16))).toEqual([registered.leaseId])
      })
    ).pipe(Effect.scoped))

  it.live("interrupted (the registrar closing), it revokes its lease: the record is gone at once", () =>
    provideLogs(
      Effect.gen(function* () {
        const r = yield* registration("session/127.0.0.1:8001", 30)
        const fiber = yield* Effect.forkChild(session(r, 1))
        yield* r.status.awaitRegistered.pipe(Effect.timeout("10 seconds"))
        yield* Fiber.interrupt(fiber)
        expect(yield* leaseOf(server.ctl, r.record.key)).toBeUndefined()
        expect((yield* r.abandoned.pending).size).toBe(0)
      })
    ).pipe(Effect.scoped))
})

describe("status cell", () => {
  const registered = { _tag: "Registered", leaseId: "1", revision: "5" } as const
  const refused = new Etcd.EtcdError({ reason: "PermissionDenied", operation: "put", cause: undefined, detail: "no" })
  const unavailable = new Etcd.EtcdError({ reason: "Unavailable", operation: "put", cause: undefined, detail: "down" })

  it.effect("publishes a change once, never an equal status again", () =>
    Effect.gen(function* () {
      const status = yield* makeStatus
      const seen = yield* status.changes.pipe(Stream.take(3), Stream.runCollect, Effect.forkChild)
      yield* Effect.yieldNow
      yield* status.set({ ...registered })
      yield* status.set({ ...registered })
      yield* status.set({ _tag: "Reconnecting", leaseId: "1", reason: "keep-alive failed", error: unavailable })
      yield* status.set({ _tag: "Reconnecting", leaseId: "1", reason: "keep-alive failed", error: unavailable })
      yield* status.set({ _tag: "Closed" })
      expect((yield* Fiber.join(seen)).map((s) => s._tag)).toEqual(["Registering", "Registered", "Reconnecting"])
      expect((yield* status.get)._tag).toBe("Closed")
    }))

  it.effect("awaitRegistered: waits through transient errors, fails on one retrying cannot fix", () =>
    Effect.gen(function* () {
      const status = yield* makeStatus
      const waiting = yield* Effect.forkChild(status.awaitRegistered)
      yield* Effect.yieldNow
      yield* status.set({ _tag: "Reconnecting", leaseId: undefined, reason: "down", error: unavailable })
      yield* Effect.yieldNow
      expect(waiting.pollUnsafe()).toBeUndefined()
      yield* status.set({ _tag: "Reconnecting", leaseId: undefined, reason: "refused", error: refused })
      expect(yield* Effect.flip(Fiber.join(waiting))).toBe(refused)
      yield* status.set(registered)
      expect(yield* status.awaitRegistered).toEqual(registered)
    }))
})

describe("record check", () => {
  const circular: Record<string, unknown> = {}
  circular.self = circular
  it.each([
    ["the canonical address", { service: "s", address: "[0:0::1]:80" }, { key: "s/[::1]:80", address: "[::1]:80", ttl: 10 }],
    ["the count in the metadata", { service: "s", address: "h:1", connections: "2..8", ttl: 3 }, {
      value: '{"Op":0,"Addr":"h:1","Metadata":{"grpc_anchor.connections":"2..8"}}',
      ttl: 3
    }]
  ] as const)("builds %s", (_, options, expected) => {
    const checked = check(options)
    expect(Result.isSuccess(checked) && checked.success).toMatchObject(expected)
  })

  it.each([
    ["a bad count", { service: "s", address: "h:1", connections: "0" }, "InvalidConnections", /0/],
    ["a count on array metadata", { service: "s", address: "h:1", connections: 2, metadata: [1] }, "InvalidConnections", /object/],
    ["metadata JSON cannot hold", { service: "s", address: "h:1", metadata: circular }, "InvalidMetadata", /cannot be written as JSON/],
    ["a negative TTL", { service: "s", address: "h:1", ttl: -1 }, "InvalidTtl", /got -1/]
  ] as const)("refuses %s", (_, options, reason, detail) => {
    const checked = check(options)
    expect(Result.isFailure(checked) && checked.failure.reason).toBe(reason)
    expect(Result.isFailure(checked) && checked.failure.detail).toMatch(detail)
  })
})

describe("counters tally", () => {
  type Step =
    | { readonly _tag: "granted" }
    | { readonly _tag: "confirmed"; readonly lease: bigint; readonly put: boolean }
    | { readonly _tag: "alive"; readonly now: number }
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.constant({ _tag: "granted" as const }),
    // Few leases, so that a confirmation under the last lease and under another both come up.
    fc.record({ _tag: fc.constant("confirmed" as const), lease: fc.bigInt({ min: 1n, max: 3n }), put: fc.boolean() }),
    fc.record({ _tag: fc.constant("alive" as const), now: fc.nat() })
  )

  it("counts as documented: re-grants after the first grant, re-puts and moves after the first confirmation, the last renewal", () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        const tally = steps.reduce(
          (t, s) => (s._tag === "granted" ? Tally.granted(t) : s._tag === "confirmed" ? Tally.confirmed(t, s.lease, s.put) : Tally.alive(t, s.now)),
          Tally.initial
        )
        const confirms = steps.filter((s) => s._tag === "confirmed")
        const alives = steps.filter((s) => s._tag === "alive")
        expect(tally.counters).toEqual({
          leaseRegrants: Math.max(0, steps.filter((s) => s._tag === "granted").length - 1),
          recordReputs: confirms.filter((s, i) => i > 0 && (s.put || s.lease !== confirms[i - 1]!.lease)).length,
          leaseMoves: confirms.filter((s, i) => i > 0 && s.lease !== confirms[i - 1]!.lease).length,
          lastKeepAliveMillis: alives.at(-1)?.now
        })
      })
    )
  })
})
