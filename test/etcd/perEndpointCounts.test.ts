/**
 * Per-endpoint connection counts from etcd records
 * (`{"grpc_anchor.connections": N}` in a record's Metadata), end to end: a
 * real etcd, real grpc-js servers on loopback, records written by the
 * Registrar, registerEndpoint and etcdctl. The servers' ConnectionObservers
 * count the connections.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import { describe, expect, it } from "vitest"
import * as Etcd from "../../src/adapters/etcd/Etcd.js"
import * as Registrar from "../../src/adapters/etcd/Registrar.js"
import type { EchoServer } from "../../packages/cli/src/echo/echo.js"
import { AnchoredChannel, register, registerEndpoint } from "../../src/main/index.js"
import { captureLogs } from "../support/etcd.js"
import { etcdForFile } from "../support/etcdForFile.js"
import { callMany, cleanupAfterEach, echoServers, eventually, tally } from "../support/grpc.js"
import { pooled as openPooled } from "../support/pooled.js"

register()

const etcd = etcdForFile()

const defer = cleanupAfterEach()

const servers = echoServers(defer)

const at = (server: EchoServer) => `127.0.0.1:${server.port}`
const live = (server: EchoServer) => server.observer.connections().length
const put = (service: string, server: EchoServer, metadata = "null") =>
  etcd.ctlOk(["put", `${service}/${at(server)}`, `{"Op":0,"Addr":"${at(server)}","Metadata":${metadata}}`])
const valueOf = async (key: string) => (await etcd.ctlOk(["get", key, "--print-value-only"])).replace(/\n$/, "")

const pooled = (target: string) => {
  const opened = openPooled(target, { "grpc.use_local_subchannel_pool": 1 })
  defer(opened.close)
  return opened
}

/** Runs a Registrar until the test ends; resolves once its record is in etcd. */
const registrar = async (options: Registrar.RegistrarOptions): Promise<Registrar.Registrar.Shape> => {
  const scope = Effect.runSync(Scope.make())
  defer(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  return Effect.runPromise(
    Effect.gen(function* () {
      // The etcd client lives in the same scope, closed after the registrar's revoke.
      const context = yield* Layer.buildWithScope(Etcd.layer({ hosts: etcd.endpoints }), scope)
      const made = yield* Registrar.make(options).pipe(Scope.provide(scope), Effect.provideContext(context))
      yield* made.awaitRegistered.pipe(Effect.timeout("10 seconds"))
      return made
    }).pipe(Effect.orDie)
  )
}

describe("per-endpoint connection counts from etcd", () => {
  it("gives a record registered with connections 3 three connections, another record the target's #1, and follows a change", async () => {
    const service = "counts/echo"
    const [a, b] = await servers("a", "b")
    const registration = await registerEndpoint({ etcd: { hosts: etcd.endpoints }, service, address: at(a!), ttl: 5, connections: 3 })
    defer(() => registration.close())
    expect(registration.value).toBe(`{"Op":0,"Addr":"${at(a!)}","Metadata":{"grpc_anchor.connections":3}}`)
    await put(service, b!)
    const { client, waitSlots } = pooled(`etcd://${etcd.endpoints[0]}/${service}`)
    await waitSlots(4)
    expect(tally(await callMany(client, 40, 4))).toEqual({ a: 30, b: 10 })
    await eventually("3 + 1 connections seen by the servers", () => live(a!) === 3 && live(b!) === 1)

    // b's record now asks for "2": its pool follows, a's connections stay.
    const aIds = a!.observer.connections().map((c) => c.id).sort()
    await put(service, b!, `{"grpc_anchor.connections":"2"}`)
    await waitSlots(5)
    expect(tally(await callMany(client, 50, 5))).toEqual({ a: 30, b: 20 })
    expect(a!.observer.connections().map((c) => c.id).sort()).toEqual(aIds)
  })

  it("warns once about a bad count and keeps the endpoint at the target's count", async () => {
    const service = "bad-count"
    const [a, b] = await servers("a", "b")
    await put(service, a!, `{"grpc_anchor.connections":0,"zone":"x"}`)
    const logs = captureLogs()
    const result = await Effect.runPromise(
      Effect.gen(function* () {
        const anchored = yield* AnchoredChannel.AnchoredChannel
        yield* anchored.waitForReady("10 seconds")
        const readyCount = () => Effect.runPromise(anchored.stats).then((s) => s.connections.filter((c) => c.state === "READY").length)
        yield* Effect.promise(() => eventually("2 READY", async () => (await readyCount()) === 2))
        // Another change of the service: the bad record is reported again, not warned again.
        yield* Effect.promise(() => put(service, b!))
        yield* Effect.promise(() => eventually("4 READY", async () => (await readyCount()) === 4))
        return yield* anchored.stats
      }).pipe(
        Effect.provide(AnchoredChannel.layer({ target: `etcd:///${service}#2` }).pipe(Layer.provide(Etcd.layer({ hosts: etcd.endpoints })))),
        Effect.provide(logs.layer)
      )
    )
    expect(result.connections.filter((c) => c.address === at(a!)).map((c) => c.index).sort()).toEqual([0, 1])
    const warnings = logs.lines.filter((line) => line.level === "WARN" && line.annotations["address"] === at(a!))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]!.message).toMatch(/grpc_anchor\.connections.*is 0, not a connection count.*using the target's #2/)
    expect(warnings[0]!.annotations).toMatchObject({ service, reason: "InvalidConnections" })
  })

  it("Registrar writes Go's record format with the count in Metadata, byte for byte", async () => {
    const fixed = await registrar({ service: "written", address: "127.0.0.1:7001", ttl: 5, connections: 3 })
    expect(await valueOf(fixed.key)).toBe(`{"Op":0,"Addr":"127.0.0.1:7001","Metadata":{"grpc_anchor.connections":3}}`)
    expect(fixed.value).toBe(await valueOf(fixed.key))
    // A range is a string; other metadata keys stay, in Go's sorted key order.
    const range = await registrar({ service: "written", address: "127.0.0.1:7002", ttl: 5, metadata: { zone: "b", serverName: "x" }, connections: "2..8" })
    expect(await valueOf(range.key)).toBe(
      `{"Op":0,"Addr":"127.0.0.1:7002","Metadata":{"grpc_anchor.connections":"2..8","serverName":"x","zone":"b"}}`
    )
    const text = await registrar({ service: "written", address: "127.0.0.1:7003", ttl: 5, connections: "4" })
    expect(text.value).toBe(`{"Op":0,"Addr":"127.0.0.1:7003","Metadata":{"grpc_anchor.connections":4}}`)
  })

  it("Registrar and registerEndpoint refuse a bad count or non-object metadata with a typed error, writing nothing", async () => {
    const attempt = (options: Partial<Registrar.RegistrarOptions>) =>
      Effect.runPromise(
        Effect.scoped(Registrar.make({ service: "refused", address: "127.0.0.1:7009", ...options })).pipe(
          Effect.flip,
          Effect.provide(Etcd.layer({ hosts: etcd.endpoints }))
        )
      )
    for (const connections of [0, 257, "8..2", "x", 1.5]) {
      const error = await attempt({ connections })
      expect(error).toMatchObject({ _tag: "RegistrarError", reason: "InvalidConnections" })
      expect(error.message).toMatch(/cannot register: cannot set "grpc_anchor\.connections"/)
    }
    const notObject = await attempt({ connections: 2, metadata: "zone-a" })
    expect(notObject.message).toMatch(/the metadata is a string, not a JSON object or null/)
    await expect(
      registerEndpoint({ etcd: { hosts: etcd.endpoints }, service: "refused", address: "127.0.0.1:7009", connections: "0" })
    ).rejects.toMatchObject({ _tag: "RegistrarError", reason: "InvalidConnections" })
    expect(await valueOf("refused/127.0.0.1:7009")).toBe("")
  })
})
