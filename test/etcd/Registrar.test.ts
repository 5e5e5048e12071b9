/**
 * Registrar against a real etcd (one server for the file; every test
 * registers its own service).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Etcd from "../../src/adapters/etcd/Etcd.js"
import * as Registrar from "../../src/adapters/etcd/Registrar.js"
import { captureLogs, leaseOf, waitUntil } from "../support/etcd.js"
import { etcdForFile } from "../support/etcdForFile.js"

const server = etcdForFile({ checkHandles: true })

const logs = captureLogs()
const EtcdLive = () => Etcd.layer({ hosts: server.endpoints }).pipe(Layer.provide(logs.layer))
const provide = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.provide(EtcdLive()), Effect.provide(logs.layer))

/** The raw value and lease (hex) of a key, as etcdctl sees them; undefined when absent. */
const rawRecord = (key: string) =>
  Effect.gen(function* () {
    const lease = yield* leaseOf(server.ctl, key)
    if (lease === undefined) return undefined
    const value = yield* Effect.promise(() => server.ctlOk(["get", key, "--print-value-only"]))
    return { value: value.replace(/\n$/, ""), lease: lease === "0" ? undefined : lease }
  })

/** Starts a registrar in its own scope, so the test can close it. */
const start = (options: Registrar.RegistrarOptions) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const registrar = yield* Registrar.make(options).pipe(Scope.provide(scope))
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    return { registrar, close: Scope.close(scope, Exit.void) }
  })

describe("Registrar (real etcd)", () => {
  it.live("reports each status change once, not again on every keep-alive", () =>
    provide(
      Effect.gen(function* () {
        const { registrar } = yield* start({ service: "quiet", address: "127.0.0.1:5001", ttl: 1 })
        const seen = yield* registrar.changes.pipe(
          Stream.interruptWhen(Effect.sleep("2 seconds")),
          Stream.runCollect,
          Effect.forkChild
        )
        yield* registrar.awaitRegistered.pipe(Effect.timeout("10 seconds"))
        // A 1 s lease is kept alive about every 330 ms: several keep-alives happen in 2 s.
        const tags = (yield* Fiber.join(seen)).map((status) => status._tag)
        expect(tags.filter((tag) => tag === "Registered")).toEqual(["Registered"])
      })
    ))

  it.live("writes exactly the record Go's endpoints manager writes, under a lease of ttl", () =>
    provide(
      Effect.gen(function* () {
        const { registrar } = yield* start({ service: "exact", address: "127.0.0.1:5000", ttl: 7 })
        const registered = yield* registrar.awaitRegistered.pipe(Effect.timeout("10 seconds"))
        expect(registrar.key).toBe("exact/127.0.0.1:5000")
        const raw = yield* rawRecord("exact/127.0.0.1:5000")
        expect(raw?.value).toBe('{"Op":0,"Addr":"127.0.0.1:5000","Metadata":null}')
        expect(raw?.lease).toBe(registered.leaseId)
        const ttl = yield* Effect.promise(() => server.ctlOk(["lease", "timetolive", registered.leaseId]))
        expect(ttl).toMatch(/granted with TTL\(7s\)/)

        const meta = yield* start({ service: "exact", address: "[0:0::1]:5001", metadata: { zone: "b", weight: 2 } })
        yield* meta.registrar.awaitRegistered.pipe(Effect.timeout("10 seconds"))
        expect((yield* rawRecord("exact/[::1]:5001"))?.value).toBe(
          '{"Op":0,"Addr":"[::1]:5001","Metadata":{"weight":2,"zone":"b"}}'
        )
      })
    )
  )

  it.live("closing the scope removes the record at once", () =>
    provide(
      Effect.gen(function* () {
        const { close, registrar } = yield* start({ service: "closing", address: "127.0.0.1:5002" })
        yield* registrar.awaitRegistered.pipe(Effect.timeout("10 seconds"))
        expect(yield* rawRecord("closing/127.0.0.1:5002")).toBeDefined()
        yield* close
        // No polling: the revoke is done when close returns.
        expect(yield* rawRecord("closing/127.0.0.1:5002")).toBeUndefined()
        expect((yield* registrar.status)._tag).toBe("Closed")
      })
    )
  )

  it.live("puts its key back when it is deleted from outside", () =>
    provide(
      Effect.gen(function* () {
        const { registrar } = yield* start({ service: "deleted", address: "127.0.0.1:5003" })
        const first = yield* registrar.awaitRegistered.pipe(Effect.timeout("10 seconds"))
        yield* Effect.promise(() => server.ctlOk(["del", "deleted/127.0.0.1:5003"]))
        yield* waitUntil(
          "record put back",
          rawRecord("deleted/127.0.0.1:5003").pipe(Effect.map((r) => r !== undefined))
        )
        const raw = yield* rawRecord("deleted/127.0.0.1:5003")
        expect(raw?.value).toBe('{"Op":0,"Addr":"127.0.0.1:5003","Metadata":null}')
        expect(raw?.lease).toBe(first.leaseId)
      })
    )
  )

  it.live("grants a new lease when its lease is revoked from outside", () =>
    provide(
      Effect.gen(function* () {
        const { registrar } = yield* start({ service: "revoked", address: "127.0.0.1:5004", ttl: 5 })
        const first = yield* registrar.awaitRegistered.pipe(Effect.timeout("10 seconds"))
        yield* Effect.promise(() => server.ctlOk(["lease", "revoke", first.leaseId]))
        yield* waitUntil(
          "record back under a new lease",
          rawRecord("revoked/127.0.0.1:5004").pipe(Effect.map((r) => r !== undefined && r.lease !== first.leaseId))
        )
        const status = yield* registrar.status
        expect(status._tag).toBe("Registered")
        expect(status._tag === "Registered" && status.leaseId).toBe((yield* rawRecord("revoked/127.0.0.1:5004"))?.lease)
      })
    )
  )

  it.live("leaves a key another writer took over, and takes it back when deleted", () =>
    provide(
      Effect.gen(function* () {
        const { registrar } = yield* start({ service: "foreign", address: "127.0.0.1:5005" })
        yield* registrar.awaitRegistered.pipe(Effect.timeout("10 seconds"))
        const other = '{"Op":0,"Addr":"127.0.0.1:5005","Metadata":"other"}'
        yield* Effect.promise(() => server.ctlOk(["put", "foreign/127.0.0.1:5005", other]))
        yield* waitUntil(
          "warning about the other writer",
          Effect.sync(() => logs.lines.some((l) => l.level === "WARN" && l.message.includes("overwritten by another writer")))
        )
        expect((yield* rawRecord("foreign/127.0.0.1:5005"))?.value).toBe(other)
        yield* Effect.promise(() => server.ctlOk(["del", "foreign/127.0.0.1:5005"]))
        yield* waitUntil(
          "own record back",
          rawRecord("foreign/127.0.0.1:5005").pipe(Effect.map((r) => r?.value === registrar.value))
        )
      })
    )
  )

  it.effect.each([
    ["empty service", { service: "", address: "h:1" }, "InvalidService"],
    ["bad address", { service: "s", address: "h" }, "InvalidAddress"],
    ["zero ttl", { service: "s", address: "h:1", ttl: 0 }, "InvalidTtl"],
    ["fractional ttl", { service: "s", address: "h:1", ttl: 1.5 }, "InvalidTtl"]
  ] as const)("rejects %s", ([, options, reason]) =>
    Effect.gen(function* () {
      const error = yield* Registrar.make(options).pipe(
        Effect.flip,
        Effect.scoped,
        Effect.provide(Layer.succeed(Etcd.Etcd, {} as Etcd.Etcd.Shape))
      )
      expect(error.reason).toBe(reason)
    })
  )

  it.effect.each([
    [2, 500],
    [3, 750],
    [10, 1_000],
    [60, 1_000]
  ] as const)("retries a lease of %s s from 100 ms up to min(TTL/4, 1 s) apart (jittered x0.8..1.2), forever", ([ttl, cap]) =>
    Effect.gen(function* () {
      const step = yield* Schedule.toStep(Registrar.retryScheduleFor(ttl))
      const delays: Array<number> = []
      for (let i = 0; i < 30; i++) {
        const [, delay] = yield* step(i * 1_000, undefined)
        delays.push(Duration.toMillis(delay))
      }
      expect(delays[0]).toBeGreaterThanOrEqual(80)
      expect(delays[0]).toBeLessThanOrEqual(120)
      expect(Math.max(...delays)).toBeLessThanOrEqual(cap * 1.2)
      expect(delays.slice(-5).every((d) => d >= cap * 0.8)).toBe(true)
    })
  )
})
