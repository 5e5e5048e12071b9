/**
 * A watch that moves between members delivers every event exactly once
 * (issue 14: "the watch re-established on a healthy member from the last
 * revision it delivered: nothing lost, nothing repeated"). A writer puts
 * 1..N into one key of a real 3-member cluster while the member the watch
 * is on is hung (SIGSTOP) and later the member it moved to is killed. The
 * truth is etcd's own history of the key, read afterwards by a fresh watch
 * on the healthy cluster: the moving watch must have delivered exactly its
 * revisions, in order, and must have moved. (The history can hold a value
 * twice: a put sent to the hung member is also sent to another one, and the
 * hung one may still apply it when it wakes; see the README on hedging.)
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import * as Etcd from "../../src/adapters/etcd/Etcd.js"
import { etcdCluster, expectNoOpenHandles, waitUntil } from "../support/etcd.js"

afterAll(() => expectNoOpenHandles())

/** Puts written in all. */
const N = 300

describe("watch failover (real 3-member cluster)", () => {
  it.live("delivers every put exactly once while its member hangs and then the next one dies", () =>
    Effect.gen(function* () {
      const cluster = yield* etcdCluster(3)
      const etcd = yield* Etcd.make({ hosts: cluster.endpoints, autoSync: false })
      const seen = yield* Ref.make<ReadonlyArray<readonly [bigint, string]>>([])
      const hosts = yield* Ref.make<ReadonlyArray<string>>([])
      const start = (yield* etcd.range("revision", { key: "wf/k" })).header.revision + 1n
      yield* etcd.watch("watch wf/k", { key: "wf/k", startRevision: start }).pipe(
        Stream.runForEach((signal) => {
          switch (signal._tag) {
            case "Connected":
              return Ref.update(hosts, (all) => [...all, signal.host])
            case "Data":
              return Ref.update(seen, (all) => [...all, ...signal.events.map((e) => [e.kv.mod_revision, e.kv.value.toString()] as const)])
            case "Cancelled":
              return Effect.die(signal.error)
          }
        }),
        Effect.forkScoped
      )
      yield* waitUntil("the watch is created", Effect.map(Ref.get(hosts), (all) => all.length === 1))

      const written = yield* Ref.make(0)
      const writer = yield* Effect.forkScoped(
        Effect.forEach(
          Array.from({ length: N }, (_, i) => i + 1),
          (value) => etcd.put(`put ${value}`, { key: "wf/k", value: String(value) }).pipe(Effect.andThen(Ref.set(written, value)), Effect.andThen(Effect.sleep("5 millis"))),
          { discard: true }
        )
      )
      const memberOf = (host: string) => cluster.members.findIndex((m) => m.endpoint === host)

      // Hang the watch's member a third of the way in, for 3 s.
      yield* waitUntil("a third written", Effect.map(Ref.get(written), (n) => n >= N / 3))
      const first = memberOf((yield* Ref.get(hosts))[0]!)
      cluster.members[first]!.pause()
      yield* waitUntil("the watch moved", Effect.map(Ref.get(hosts), (all) => all.length >= 2), { timeout: "5 seconds" })
      yield* Effect.sleep("3 seconds")
      cluster.members[first]!.resume()

      // Kill the member it moved to two thirds of the way in.
      yield* waitUntil("two thirds written", Effect.map(Ref.get(written), (n) => n >= (2 * N) / 3), { timeout: "30 seconds" })
      const second = memberOf((yield* Ref.get(hosts)).at(-1)!)
      yield* Effect.promise(() => cluster.kill(second))
      yield* Fiber.join(writer)
      yield* waitUntil("every put seen", Effect.map(Ref.get(seen), (all) => all.some(([, value]) => value === String(N))), {
        timeout: "10 seconds"
      })
      yield* Effect.sleep("500 millis")

      // etcd's history of the key, from a watch that never moved.
      const last = (yield* etcd.range("last", { key: "wf/k" })).kvs[0]!.mod_revision
      const history = yield* etcd.watch("history", { key: "wf/k", startRevision: start }).pipe(
        Stream.flatMap((signal) => Stream.fromIterable(signal._tag === "Data" ? signal.events : [])),
        Stream.takeUntil((event) => event.kv.mod_revision >= last),
        Stream.map((event) => [event.kv.mod_revision, event.kv.value.toString()] as const),
        Stream.runCollect,
        Effect.timeout("10 seconds")
      )
      const all = yield* Ref.get(seen)
      const moves = yield* Ref.get(hosts)
      const values = new Set(history.map(([, value]) => value))
      console.log(
        `watch failover: ${all.length} events delivered, ${history.length} revisions in etcd's history of the key ` +
          `(${N} values written, ${history.length - values.size} applied twice); the watch was created on ${moves.join(" -> ")}`
      )
      expect(all).toEqual(history)
      expect(values.size).toBe(N)
      expect(new Set(moves).size).toBeGreaterThanOrEqual(2)
    }).pipe(Effect.scoped)
  )
})
