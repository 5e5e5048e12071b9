/**
 * Members found, not only listed (issue 14, item 4): a client configured
 * with one member of a real 3-member cluster learns the other two from
 * etcd's member list, and goes on registering and discovering when the one
 * member it was given is killed. With `autoSync: false` it knows only what it
 * was given.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Discovery from "../../src/adapters/etcd/Discovery.js"
import * as Etcd from "../../src/adapters/etcd/Etcd.js"
import * as Registrar from "../../src/adapters/etcd/Registrar.js"
import { captureLogs, etcdCluster, expectNoOpenHandles, follow, waitUntil } from "../support/etcd.js"

afterAll(() => expectNoOpenHandles())

const hostsOf = (etcd: Etcd.Etcd.Shape) => Effect.map(etcd.members, (members) => members.map((m) => m.host).sort())

describe("etcd member list sync (real 3-member cluster)", () => {
  it.live("a client given one member learns the others and survives that member's death", () =>
    Effect.gen(function* () {
      const cluster = yield* etcdCluster(3)
      const first = cluster.endpoints[0]!
      const logs = captureLogs()
      const EtcdLive = Etcd.layer({ hosts: first, autoSync: "1 second" })
      yield* Effect.gen(function* () {
        const etcd = yield* Etcd.Etcd
        expect(yield* hostsOf(etcd)).toEqual([first])
        yield* waitUntil(
          "the client knows all three members",
          Effect.map(hostsOf(etcd), (hosts) => hosts.length === 3),
          { timeout: "10 seconds" }
        )
        expect(yield* hostsOf(etcd)).toEqual([...cluster.endpoints].sort())

        const f = yield* follow("synced")
        const one = yield* Registrar.make({ service: "synced", address: "127.0.0.1:6301", ttl: 2 })
        yield* one.awaitRegistered
        yield* f.waitFor("registered before the kill", ["127.0.0.1:6301"])

        // The only member the client was given dies for good.
        yield* Effect.promise(() => cluster.kill(0))
        const two = yield* Registrar.make({ service: "synced", address: "127.0.0.1:6302", ttl: 2 })
        yield* two.awaitRegistered.pipe(Effect.timeout("5 seconds"))
        yield* f.waitFor("a registration after the kill", ["127.0.0.1:6301", "127.0.0.1:6302"], { timeout: "5 seconds" })
        // Two TTLs later both are still there: their keep-alives moved to live members.
        yield* Effect.sleep("4 seconds")
        const listed = yield* etcd.range("check", { ...Etcd.prefixRange("synced/"), keys_only: true })
        expect(listed.kvs.map((kv) => kv.key.toString()).sort()).toEqual(["synced/127.0.0.1:6301", "synced/127.0.0.1:6302"])
      }).pipe(
        Effect.provide(Discovery.layer().pipe(Layer.provideMerge(EtcdLive))),
        Effect.provide(logs.layer),
        Effect.scoped
      )
    })
  )

  it.live("with autoSync off, only the given members are used", () =>
    Effect.gen(function* () {
      const cluster = yield* etcdCluster(3)
      const etcd = yield* Etcd.make({ hosts: cluster.endpoints[1]!, autoSync: false })
      yield* etcd.status
      yield* Effect.sleep("1500 millis")
      expect(yield* hostsOf(etcd)).toEqual([cluster.endpoints[1]])
    }).pipe(Effect.scoped)
  )
})
