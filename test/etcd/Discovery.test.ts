/**
 * Discovery against a real etcd (one server for the file; every test uses
 * its own service names).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Discovery from "../../src/adapters/etcd/Discovery.js"
import * as Etcd from "../../src/adapters/etcd/Etcd.js"
import { captureLogs, follow } from "../support/etcd.js"
import { etcdForFile } from "../support/etcdForFile.js"

const server = etcdForFile({ checkHandles: true })

const record = (addr: string, metadata = "null") => `{"Op":0,"Addr":"${addr}","Metadata":${metadata}}`

/** Runs `body` with Discovery and Etcd on the test server, and captured logs. */
const withDiscovery = <A, E>(
  body: (tools: {
    readonly etcd: Etcd.Etcd.Shape
    readonly follow: typeof follow
    readonly logs: ReturnType<typeof captureLogs>["lines"]
  }) => Effect.Effect<A, E, Discovery.Discovery | Etcd.Etcd | Scope.Scope>
) => {
  const logs = captureLogs()
  return Effect.gen(function* () {
    const etcd = yield* Etcd.Etcd
    return yield* body({ etcd, follow, logs: logs.lines })
  }).pipe(
    Effect.provide(
      Discovery.layer().pipe(Layer.provideMerge(Etcd.layer({ hosts: server.endpoints })), Layer.provide(logs.layer))
    ),
    Effect.provide(logs.layer)
  )
}

describe("Discovery (real etcd)", () => {
  it.live("lists existing records, then follows puts and deletes", () =>
    withDiscovery(({ follow }) =>
      Effect.gen(function* () {
        yield* Effect.promise(() => server.ctlOk(["put", "list/a", record("10.0.0.1:80")]))
        yield* Effect.promise(() => server.ctlOk(["put", "list/b", record("10.0.0.2:80")]))
        const f = yield* follow("list")
        yield* f.waitFor("initial listing", ["10.0.0.1:80", "10.0.0.2:80"])
        yield* Effect.promise(() => server.ctlOk(["put", "list/c", record("10.0.0.3:80")]))
        yield* f.waitFor("after put", ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"])
        yield* Effect.promise(() => server.ctlOk(["del", "list/a"]))
        yield* f.waitFor("after delete", ["10.0.0.2:80", "10.0.0.3:80"])
        const all = yield* f.all
        expect(all.map((s) => s.addresses)).toEqual([
          ["10.0.0.1:80", "10.0.0.2:80"],
          ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"],
          ["10.0.0.2:80", "10.0.0.3:80"]
        ])
        expect(BigInt(all[2]!.revision)).toBeGreaterThan(BigInt(all[0]!.revision))
      })
    )
  )

  it.live("applies one transaction as one batch", () =>
    withDiscovery(({ etcd, follow }) =>
      Effect.gen(function* () {
        yield* Effect.promise(() => server.ctlOk(["put", "txn/base", record("10.1.0.1:80")]))
        const f = yield* follow("txn")
        yield* f.waitFor("initial", ["10.1.0.1:80"])
        const txn = yield* etcd.txn("txn", {
          compare: [{ key: "txn/base", target: "VERSION", result: "GREATER", version: 0n }],
          success: [
            { request_put: { key: "txn/a", value: record("10.1.0.2:80") } },
            { request_put: { key: "txn/b", value: record("10.1.0.3:80") } },
            { request_delete_range: { key: "txn/base" } }
          ],
          failure: []
        })
        expect(txn.succeeded).toBe(true)
        yield* f.waitFor("after txn", ["10.1.0.2:80", "10.1.0.3:80"])
        const all = yield* f.all
        expect(all.map((s) => s.addresses)).toEqual([["10.1.0.1:80"], ["10.1.0.2:80", "10.1.0.3:80"]])
      })
    )
  )

  it.live("a service never sees another service whose name it prefixes", () =>
    withDiscovery(({ follow }) =>
      Effect.gen(function* () {
        yield* Effect.promise(() => server.ctlOk(["put", "pre/a", record("10.2.0.1:80")]))
        yield* Effect.promise(() => server.ctlOk(["put", "pre2/a", record("10.2.0.2:80")]))
        yield* Effect.promise(() => server.ctlOk(["put", "pre", record("10.2.0.3:80")]))
        yield* Effect.promise(() => server.ctlOk(["put", "prefix/x", record("10.2.0.4:80")]))
        const f = yield* follow("pre")
        yield* f.waitFor("initial", ["10.2.0.1:80"])
        yield* Effect.promise(() => server.ctlOk(["put", "pre2/b", record("10.2.0.5:80")]))
        yield* Effect.promise(() => server.ctlOk(["put", "pre/b", record("10.2.0.6:80")]))
        yield* f.waitFor("own put only", ["10.2.0.1:80", "10.2.0.6:80"])
        expect((yield* f.all).flatMap((s) => s.addresses)).not.toContain("10.2.0.5:80")
      })
    )
  )

  it.live("discovers a record written with etcdctl in Go's format, duplicates once", () =>
    withDiscovery(({ follow }) =>
      Effect.gen(function* () {
        yield* Effect.promise(() =>
          server.ctlOk(["put", "gofmt/x", '{"Op":0,"Addr":"127.0.0.1:5000","Metadata":null}'])
        )
        const f = yield* follow("gofmt")
        yield* f.waitFor("etcdctl record", ["127.0.0.1:5000"])
        yield* Effect.promise(() => server.ctlOk(["put", "gofmt/y", '{"Op":0,"Addr":"127.0.0.1:5000","Metadata":null}']))
        yield* Effect.promise(() => server.ctlOk(["put", "gofmt/z", '{"Op":0,"Addr":"127.0.0.1:5001","Metadata":{"w":2}}']))
        yield* f.waitFor("duplicate counted once", ["127.0.0.1:5000", "127.0.0.1:5001"])
        yield* Effect.promise(() => server.ctlOk(["del", "gofmt/x"]))
        yield* Effect.promise(() => server.ctlOk(["put", "gofmt/w", record("127.0.0.1:5002")]))
        yield* f.waitFor("still there under the other key", ["127.0.0.1:5000", "127.0.0.1:5001", "127.0.0.1:5002"])
        const last = (yield* f.all).at(-1)!
        expect(last.endpoints).toContainEqual({ address: "127.0.0.1:5001", metadata: { w: 2 } })
        // Never two equal snapshots in a row.
        const all = yield* f.all
        for (let i = 1; i < all.length; i++) expect(all[i]!.endpoints).not.toEqual(all[i - 1]!.endpoints)
      })
    )
  )

  it.live("skips garbage with one warning per record revision; good records keep working", () =>
    withDiscovery(({ etcd, follow, logs }) =>
      Effect.gen(function* () {
        const garbage: ReadonlyArray<readonly [string, string | Buffer, string]> = [
          ["junk/text", "hello world", "InvalidJson"],
          ["junk/shape", '["10.3.0.9:80"]', "NotAnObject"],
          ["junk/addr", '{"Op":0,"Addr":"not an address","Metadata":null}', "InvalidAddr"],
          ["junk/op", '{"Op":1,"Addr":"10.3.0.8:80","Metadata":null}', "DeleteOp"],
          ["junk/bytes", Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 7919) % 256)), "InvalidJson"],
          ["junk/huge", `{"Op":0,"Addr":"${"x".repeat(1_000_000)}"}`, "InvalidAddr"]
        ]
        yield* Effect.promise(() => server.ctlOk(["put", "junk/good1", record("10.3.0.1:80")]))
        for (const [key, value] of garbage) yield* etcd.put(`put ${key}`, { key, value })
        const f = yield* follow("junk")
        yield* f.waitFor("good record listed", ["10.3.0.1:80"])
        const warningsFor = (key: string) =>
          logs.filter((l) => l.level === "WARN" && l.annotations["key"] === key && l.message.includes("bad endpoint record"))
        for (const [key, , problem] of garbage) {
          expect(warningsFor(key).map((l) => l.annotations["reason"])).toEqual([problem])
          expect(warningsFor(key)[0]!.message.length).toBeLessThan(1_000)
        }
        // More good records, and garbage written over a good one, while following.
        yield* Effect.promise(() => server.ctlOk(["put", "junk/good2", record("10.3.0.2:80")]))
        yield* f.waitFor("second good record", ["10.3.0.1:80", "10.3.0.2:80"])
        yield* Effect.promise(() => server.ctlOk(["put", "junk/good2", "{broken"]))
        yield* f.waitFor("good2 gone, good1 untouched", ["10.3.0.1:80"])
        // The same bad value again is a new revision: warned again, once.
        yield* Effect.promise(() => server.ctlOk(["put", "junk/text", "hello again"]))
        yield* Effect.promise(() => server.ctlOk(["put", "junk/good3", record("10.3.0.3:80")]))
        yield* f.waitFor("third good record", ["10.3.0.1:80", "10.3.0.3:80"])
        expect(warningsFor("junk/text")).toHaveLength(2)
        expect(warningsFor("junk/good2")).toHaveLength(1)
        expect(warningsFor("junk/op")).toHaveLength(1)
      })
    )
  )

  it.live("ignores records beyond the cap and says so once", () =>
    withDiscovery(({ follow, logs }) =>
      Effect.gen(function* () {
        for (let i = 1; i <= 5; i++) {
          yield* Effect.promise(() => server.ctlOk(["put", `capped/${i}`, record(`10.4.0.${i}:80`)]))
        }
        const f = yield* follow("capped", { cap: 3 })
        yield* f.waitFor("first three", ["10.4.0.1:80", "10.4.0.2:80", "10.4.0.3:80"])
        yield* Effect.promise(() => server.ctlOk(["put", "capped/6", record("10.4.0.6:80")]))
        yield* Effect.promise(() => server.ctlOk(["del", "capped/1"]))
        yield* Effect.promise(() => server.ctlOk(["put", "capped/7", record("10.4.0.7:80")]))
        yield* f.waitFor("slot reused", ["10.4.0.2:80", "10.4.0.3:80", "10.4.0.7:80"])
        expect(logs.filter((l) => l.level === "WARN" && l.message.includes("more than 3"))).toHaveLength(1)
      })
    )
  )

  it.live("emits nothing when a write does not change the set", () =>
    withDiscovery(({ follow }) =>
      Effect.gen(function* () {
        yield* Effect.promise(() => server.ctlOk(["put", "same/a", record("10.5.0.1:80")]))
        const f = yield* follow("same")
        yield* f.waitFor("initial", ["10.5.0.1:80"])
        yield* Effect.promise(() => server.ctlOk(["put", "same/a", record("10.5.0.1:80")]))
        yield* Effect.promise(() => server.ctlOk(["put", "other/a", record("10.5.0.9:80")]))
        yield* Effect.promise(() => server.ctlOk(["put", "same/b", record("10.5.0.2:80")]))
        yield* f.waitFor("next change", ["10.5.0.1:80", "10.5.0.2:80"])
        expect((yield* f.all).map((s) => s.addresses)).toEqual([["10.5.0.1:80"], ["10.5.0.1:80", "10.5.0.2:80"]])
      })
    )
  )
})
