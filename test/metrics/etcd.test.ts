/**
 * etcd metrics read by the OpenTelemetry SDK (in-memory exporter) while a
 * real etcd service changes and its member hangs: endpoints known, the
 * subset's size and moves, the mass-removal grace holding addresses, the
 * cap trimming, the time since etcd's last answer, watch restarts by reason.
 */
import { afterAll, describe, expect, it } from "vitest"
import type { EchoServer } from "../../packages/cli/src/echo/echo.js"
import { AnchorRoundRobin, Etcd, EtcdResolver, Metrics, register, Registrar } from "../../src/main/index.js"
import * as Effect from "effect/Effect"
import { etcdForFile } from "../support/etcdForFile.js"
import { cleanupAfterEach, echoServers, eventually } from "../support/grpc.js"
import { pooled } from "../support/pooled.js"
import { has, type Read, sdk, valueOf } from "./support.js"

register()
const etcd = etcdForFile()
const defer = cleanupAfterEach()
const servers = echoServers(defer)
const otel = sdk()
afterAll(() => otel.close())

const TARGET = "grpc_anchor.target"
const SERVICE = "grpc_anchor.service"
const REASON = "grpc_anchor.reason"

const put = (service: string, server: EchoServer) =>
  etcd.ctlOk(["put", `${service}/${server.address}`, `{"Op":0,"Addr":"${server.address}","Metadata":null}`])

/** Reads until `ok` holds (bounded); returns the last read. */
const readUntil = async (what: string, ok: (points: ReadonlyArray<Read>) => boolean, timeoutMs = 10_000) => {
  let points: ReadonlyArray<Read> = []
  await eventually(what, async () => ok((points = await otel.read())), { timeoutMs }).catch((error: Error) => {
    const mine = points.filter((p) => p.value !== 0).map((p) => `${p.name}${JSON.stringify(p.attributes)}=${p.value}`)
    throw new Error(`${error.message}; last read: ${mine.join("; ")}`)
  })
  return points
}

describe("etcd service metrics (OpenTelemetry SDK, real etcd)", () => {
  it("show the endpoints, the subset and its moves, an etcd hang ridden out, and the grace holding addresses", async () => {
    const service = "metrics/echo"
    const started = await servers("s0", "s1", "s2")
    for (const server of started) await put(service, server)
    const target = `etcd://${etcd.endpoints[0]}/${service}?subset=2`
    const channel = pooled(target, { [EtcdResolver.CLIENT_ID_OPTION]: 0, [AnchorRoundRobin.REMOVAL_GRACE_MS_OPTION]: 60_000 })
    defer(channel.close)
    await channel.waitSlots(2)
    const ready = (points: ReadonlyArray<Read>) => valueOf(points, "grpc_anchor.connections", { [TARGET]: target, "grpc_anchor.state": "READY" })
    let points = await readUntil("3 endpoints, a subset of 2", (p) =>
      valueOf(p, "grpc_anchor.etcd.endpoints", { [SERVICE]: service }) === 3 && valueOf(p, "grpc_anchor.subset.size", { [TARGET]: target }) === 2)
    expect(ready(points)).toBe(2)
    expect(valueOf(points, "grpc_anchor.subset.moves", { [TARGET]: target })).toBe(0)
    // A quiet watch is answered every 0.4 x memberTimeout (1 s).
    expect(valueOf(points, "grpc_anchor.etcd.contact.age", { [SERVICE]: service })).toBeLessThan(1.5)

    // etcd hangs (SIGSTOP): no answer, the pool keeps serving; it resumes and the watch is re-created.
    etcd.member.pause()
    try {
      points = await readUntil("etcd silent for 2 s", (p) => valueOf(p, "grpc_anchor.etcd.contact.age", { [SERVICE]: service }) >= 2)
      expect(ready(points)).toBe(2)
    } finally {
      etcd.member.resume()
    }
    points = await readUntil("etcd answers again", (p) =>
      valueOf(p, "grpc_anchor.etcd.contact.age", { [SERVICE]: service }) < 1.5 &&
      valueOf(p, "grpc_anchor.etcd.watch.restarts", { [SERVICE]: service, [REASON]: "member_failover" }) >= 1, 20_000)

    // A chosen backend leaves: the third takes its place (a move), the subset stays 2.
    const chosen = [...new Set(channel.slots().map((s) => s.address))]
    const leaving = started.find((s) => s.address === chosen[0])!
    await etcd.ctlOk(["del", `${service}/${leaving.address}`])
    points = await readUntil("one move", (p) =>
      valueOf(p, "grpc_anchor.subset.moves", { [TARGET]: target }) === 1 && valueOf(p, "grpc_anchor.etcd.endpoints", { [SERVICE]: service }) === 2)
    expect(valueOf(points, "grpc_anchor.subset.size", { [TARGET]: target })).toBe(2)
    await channel.waitSlots(2)

    // Every record goes at once (a registry losing its leases): the grace keeps both READY backends.
    await etcd.ctlOk(["del", "--prefix", `${service}/`])
    points = await readUntil("the grace holds 2 addresses", (p) =>
      valueOf(p, "grpc_anchor.grace.addresses", { [TARGET]: target }) === 2 && valueOf(p, "grpc_anchor.etcd.endpoints", { [SERVICE]: service }) === 0)
    expect(ready(points)).toBe(2)
    await new Promise((resolve) => setTimeout(resolve, 300))
    points = await otel.read()
    const kept = points.filter((p) => p.name === "grpc_anchor.grace.duration" && p.attributes[TARGET] === target)
    expect(kept).toHaveLength(2)
    for (const p of kept) expect(p.value).toBeGreaterThanOrEqual(0.3)

    // They are registered again: the grace ends.
    for (const server of started) if (server !== leaving) await put(service, server)
    await readUntil("the grace is over", (p) => valueOf(p, "grpc_anchor.grace.addresses", { [TARGET]: target }) === 0)
  })

  it("count the addresses the cap leaves out, and a relist after etcd is wiped", async () => {
    const service = "metrics/capped"
    const started = await servers("c0", "c1", "c2")
    for (const server of started) await put(service, server)
    const target = `etcd://${etcd.endpoints[0]}/${service}#2`
    const channel = pooled(target, { [AnchorRoundRobin.MAX_CONNECTIONS_OPTION]: 4 })
    defer(channel.close)
    await channel.waitSlots(4)
    await readUntil("1 address trimmed", (p) => valueOf(p, "grpc_anchor.cap.trimmed", { [TARGET]: target }) === 1)
    const before = valueOf(await otel.read(), "grpc_anchor.etcd.watch.restarts", { [SERVICE]: service, [REASON]: "revision_reset" })
    await etcd.restart({ wipe: true })
    // Nothing listed after the wipe: the grace keeps the two READY addresses, the endpoints read 0.
    await readUntil("a relist after the revision went back", (p) =>
      valueOf(p, "grpc_anchor.etcd.watch.restarts", { [SERVICE]: service, [REASON]: "revision_reset" }) === before + 1 &&
      valueOf(p, "grpc_anchor.etcd.endpoints", { [SERVICE]: service }) === 0, 20_000)
  })

  it("show a registrar losing its lease: a re-grant, a re-put onto the new lease, a fresh keep-alive", async () => {
    const service = "metrics/registered"
    const address = "127.0.0.1:7300"
    const of = { [SERVICE]: service, "grpc_anchor.address": address }
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const registrar = yield* Registrar.make({ service, address, ttl: 5 })
          const first = yield* registrar.awaitRegistered
          let points = yield* Effect.promise(() => readUntil("a keep-alive", (p) => has(p, "grpc_anchor.registration.keepalive.age", of)))
          expect(valueOf(points, "grpc_anchor.registration.lease.regrants", of)).toBe(0)
          // The lease is revoked behind its back (an operator, or etcd losing it): the record goes with it.
          yield* Effect.promise(() => etcd.ctlOk(["lease", "revoke", first.leaseId]))
          points = yield* Effect.promise(() =>
            readUntil("a new lease", (p) =>
              valueOf(p, "grpc_anchor.registration.lease.regrants", of) === 1 && valueOf(p, "grpc_anchor.registration.lease.moves", of) === 1, 15_000)
          )
          expect(valueOf(points, "grpc_anchor.registration.reputs", of)).toBe(1)
          expect(valueOf(points, "grpc_anchor.registration.keepalive.age", of)).toBeLessThan(5)
        })
      ).pipe(Effect.provide(Etcd.layer({ hosts: etcd.endpoints[0]! })))
    )
    // Closed: it is no longer collected.
    expect(Metrics.collect().some((p) => p.attributes[SERVICE] === service)).toBe(false)
  })
})
