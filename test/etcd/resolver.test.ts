/**
 * The `etcd` resolver end to end: a real etcd (started by the harness), real
 * grpc-js servers on loopback, records in Go's naming/endpoints format.
 */
import * as grpc from "@grpc/grpc-js"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { describe, expect, it } from "vitest"
import * as Etcd from "../../src/adapters/etcd/Etcd.js"
import { setDefaultEtcd } from "../../src/adapters/grpc/EtcdResolver.js"
import { call, EchoClient, type Echo, type EchoServer } from "../../packages/cli/src/echo/echo.js"
import { AnchoredChannel, register } from "../../src/main/index.js"
import { withEnv } from "../support/env.js"
import { captureLogs } from "../support/etcd.js"
import { etcdForFile } from "../support/etcdForFile.js"
import { callMany, cleanupAfterEach, echoServers, eventually, makeClient, tally } from "../support/grpc.js"
import { pooledClosedBy } from "../support/pooled.js"

register()

const etcd = etcdForFile()

const defer = cleanupAfterEach()

const servers = echoServers(defer)

const record = (port: number, metadata = "null") => `{"Op":0,"Addr":"127.0.0.1:${port}","Metadata":${metadata}}`
const put = (service: string, server: EchoServer) => etcd.ctlOk(["put", `${service}/127.0.0.1:${server.port}`, record(server.port)])
const del = (service: string, server: EchoServer) => etcd.ctlOk(["del", `${service}/127.0.0.1:${server.port}`])

/** A pooled client closed after the test (see test/support/pooled.ts). */
const pooled = pooledClosedBy(defer)

describe("etcd:// targets", () => {
  it("opens N connections to every registered backend and follows registrations and removals live", async () => {
    const service = "live/echo"
    const [a, b, c] = await servers("a", "b", "c")
    await put(service, a!)
    await put(service, b!)
    const { client, waitSlots } = pooled(`etcd://${etcd.endpoints[0]}/${service}#2`)
    await waitSlots(4)
    expect(tally(await callMany(client, 40, 4))).toEqual({ a: 20, b: 20 })
    expect([a!.observer.connections().length, b!.observer.connections().length]).toEqual([2, 2])
    const firstIds = [...a!.observer.connections(), ...b!.observer.connections()].map((x) => x.id).sort()

    // Register a third while traffic runs: it gets its share, nobody else reconnects.
    let running = true
    const failures: Array<string> = []
    const traffic = (async () => {
      while (running) await call(client, { deadlineMs: 5_000 }).catch((e: grpc.ServiceError) => failures.push(e.details))
    })()
    defer(async () => {
      running = false
      await traffic
    })
    await put(service, c!)
    await waitSlots(6)
    running = false
    await traffic
    expect(tally(await callMany(client, 60, 4))).toEqual({ a: 20, b: 20, c: 20 })
    const idsAfter = [...a!.observer.connections(), ...b!.observer.connections()].map((x) => x.id).sort()
    expect(idsAfter).toEqual(firstIds)
    expect(c!.observer.connections().length).toBe(2)

    // Remove one: its server stops receiving calls, the others carry on.
    await del(service, b!)
    await waitSlots(4)
    const before = b!.observer.totalCalls()
    expect(tally(await callMany(client, 40, 4))).toEqual({ a: 20, c: 20 })
    expect(b!.observer.totalCalls()).toBe(before)
    expect(failures).toEqual([])
  })

  it("lets calls in flight on a removed backend finish, sends it nothing new, and closes its connections", async () => {
    const service = "drain/echo"
    const [a, b] = await servers("a", "b")
    await put(service, a!)
    await put(service, b!)
    const { client, waitSlots } = pooled(`etcd://${etcd.endpoints[0]}/${service}#2`)
    await waitSlots(4)
    // 8 slow calls: 4 land on b's two connections.
    const slow = Array.from({ length: 8 }, () => call(client, { delayMs: 600, deadlineMs: 10_000 }))
    await eventually("b has calls in flight", () => b!.observer.totalCalls() === 4)
    await del(service, b!)
    await waitSlots(2)
    expect(tally(await Promise.all(slow))).toEqual({ a: 4, b: 4 })
    expect(tally(await callMany(client, 10, 2))).toEqual({ a: 10 })
    // grpc-js keeps an unused subchannel in its pool until the pool's next sweep (every 10 s).
    await eventually("b's connections closed", () => b!.observer.connections().length === 0, { timeoutMs: 15_000, intervalMs: 100 })
  }, 30_000)

  it("skips garbage records with the good ones still served, and never matches a longer service name", async () => {
    const service = "mixed"
    const [a, other] = await servers("a", "other")
    await put(service, a!)
    await etcd.ctlOk(["put", `${service}/garbage`, "not json"])
    await etcd.ctlOk(["put", `${service}/bad-addr`, `{"Op":0,"Addr":"nohostport","Metadata":null}`])
    await put(`${service}2`, other!) // mixed2/... belongs to another service
    const { client, waitSlots } = pooled(`etcd://${etcd.endpoints[0]}/${service}`)
    await waitSlots(1)
    expect(tally(await callMany(client, 10))).toEqual({ a: 10 })
  })

  it("fails calls naming the service while it has no endpoints, and serves waitForReady calls once one registers", async () => {
    const service = "empty-for-now"
    const [a] = await servers("a")
    const { client } = pooled(`etcd://${etcd.endpoints[0]}/${service}#2`)
    const error = await call(client, { deadlineMs: 5_000 }).then(
      () => undefined,
      (e: grpc.ServiceError) => e
    )
    expect(error?.code).toBe(grpc.status.UNAVAILABLE)
    expect(error?.details).toContain(service)
    const waiting = call(client, { deadlineMs: 10_000, waitForReady: true })
    await new Promise((resolve) => setTimeout(resolve, 200))
    await put(service, a!)
    await expect(waiting).resolves.toBe("a")
  })

  it("reports etcd as unavailable when it never answers, naming the service", async () => {
    // A loopback port with nothing listening stands for an unreachable etcd.
    const { client } = pooled("etcd://127.0.0.1:1/unreachable#2", { "grpc_anchor.etcd_resolution_timeout_ms": 500 })
    const error = await call(client, { deadlineMs: 5_000 }).then(
      () => undefined,
      (e: grpc.ServiceError) => e
    )
    expect(error?.code).toBe(grpc.status.UNAVAILABLE)
    expect(error?.details).toContain("unreachable")
    // It says why: the last error from etcd.
    expect(error?.details).toMatch(/last error: etcd list unreachable\/: Unavailable/)
  })

  it("throws at construction when an etcd:/// target has no etcd to ask, saying how to give one", async () => {
    await withEnv({ ETCD_ENDPOINTS: undefined }, () => {
      expect(() => makeClient("etcd:///nowhere#2")).toThrowError(/names no etcd endpoints.*ETCD_ENDPOINTS/)
      expect(() => makeClient("etcd:///#2")).toThrowError(/service/i)
    })
  })

  it.each([0, -5, 1.5, "2000", Number.NaN])("throws at construction for a bad first-resolution timeout (%s), naming the option", (bad) => {
    expect(() => makeClient("etcd://127.0.0.1:1/svc#2", { "grpc_anchor.etcd_resolution_timeout_ms": bad })).toThrowError(
      /grpc_anchor\.etcd_resolution_timeout_ms .*expected a whole number of milliseconds above 0/
    )
  })

  it("uses ETCD_ENDPOINTS, then register({ etcd }), for etcd:/// targets", async () => {
    const service = "from-env"
    const [a] = await servers("a")
    await put(service, a!)
    await withEnv({ ETCD_ENDPOINTS: etcd.endpoints.join(",") }, async () => {
      const { client } = pooled(`etcd:///${service}`)
      expect(await call(client, { waitForReady: true })).toBe("a")
    })
    register({ etcd: { hosts: etcd.endpoints } })
    try {
      await withEnv({ ETCD_ENDPOINTS: undefined }, async () => {
        const { client } = pooled(`etcd:///${service}`)
        expect(await call(client, { waitForReady: true })).toBe("a")
      })
    } finally {
      setDefaultEtcd(undefined)
    }
  })

  it("ignores ETCD_ENDPOINTS, even a broken one, when the target names its etcd endpoints", async () => {
    const service = "named-hosts"
    const [a] = await servers("a")
    await put(service, a!)
    await withEnv({ ETCD_ENDPOINTS: "," }, async () => {
      const { client } = pooled(`etcd://${etcd.endpoints[0]}/${service}`)
      expect(await call(client, { waitForReady: true, deadlineMs: 10_000 })).toBe("a")
    })
  })

  it("logs a skipped record through the Effect app's own logger when the channel is an AnchoredChannel", async () => {
    const service = "logged"
    const [a] = await servers("a")
    await put(service, a!)
    await etcd.ctlOk(["put", `${service}/broken`, "{not json"])
    const logs = captureLogs()
    await Effect.runPromise(
      Effect.gen(function* () {
        const anchored = yield* AnchoredChannel.AnchoredChannel
        yield* anchored.waitForReady("10 seconds")
      }).pipe(
        Effect.provide(AnchoredChannel.layer({ target: `etcd://${etcd.endpoints[0]}/${service}` })),
        Effect.provide(logs.layer)
      )
    )
    const warning = logs.lines.find((line) => line.level === "WARN" && line.annotations["key"] === `${service}/broken`)
    expect(warning?.message).toMatch(/not JSON/)
  })

  it("takes the Etcd layer of the Effect context for AnchoredChannel", async () => {
    const service = "effect/echo"
    const [a, b] = await servers("a", "b")
    await put(service, a!)
    await put(service, b!)
    const program = Effect.gen(function* () {
      const anchored = yield* AnchoredChannel.AnchoredChannel
      const client = anchored.client(EchoClient) as unknown as Echo
      yield* anchored.waitForReady("10 seconds")
      yield* Effect.promise(() =>
        eventually("4 READY", async () => (await Effect.runPromise(anchored.stats)).connections.filter((c) => c.state === "READY").length === 4)
      )
      const answers = yield* Effect.promise(() => callMany(client, 20, 2))
      return { answers: tally(answers), stats: yield* anchored.stats }
    })
    const result = await Effect.runPromise(
      program.pipe(
        Effect.provide(
          AnchoredChannel.layer({ target: `etcd:///${service}#2` }).pipe(Layer.provide(Etcd.layer({ hosts: etcd.endpoints })))
        )
      )
    )
    expect(result.answers).toEqual({ a: 10, b: 10 })
    expect(result.stats.connections.map((c) => `${c.address}#${c.index}`).sort()).toEqual(
      [`127.0.0.1:${a!.port}#0`, `127.0.0.1:${a!.port}#1`, `127.0.0.1:${b!.port}#0`, `127.0.0.1:${b!.port}#1`].sort()
    )
    // The scope closed the channel: every connection goes away.
    await eventually("connections closed", () => a!.observer.connections().length + b!.observer.connections().length === 0)
  })
})
