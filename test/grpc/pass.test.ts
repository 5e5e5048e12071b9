/**
 * The `pass` resolver and `anchor_round_robin` against real grpc-js servers
 * on loopback: connection counts seen by the servers, exact call ratios,
 * failover when a backend process dies, and its return.
 */
import * as grpc from "@grpc/grpc-js"
import { describe, expect, it } from "@effect/vitest"
import { call, type Echo, type EchoServer } from "../../packages/cli/src/echo/echo.js"
import { createChannel, register } from "../../src/main/index.js"
import { startEchoProcess, type EchoProcess } from "../../packages/cli/src/echo/echoProcess.js"
import { callMany, cleanupAfterEach, echoServers, eventually, makeClient, tally } from "../support/grpc.js"
import { pooledClosedBy } from "../support/pooled.js"

register()

const defer = cleanupAfterEach()

const servers = echoServers(defer)

/** A pooled client closed after the test (see test/support/pooled.ts). */
const pooled = pooledClosedBy(defer)

const liveConnections = (server: EchoServer) => server.observer.connections().length

describe("pass:/// targets", () => {
  it("opens exactly N connections per address, seen from each server", async () => {
    const [a, b] = await servers("a", "b")
    const { client, waitSlots } = pooled(`pass:///127.0.0.1:${a!.port}#2,127.0.0.1:${b!.port}#1`)
    await waitSlots(3)
    await callMany(client, 30)
    await eventually("server-side connection counts", () => liveConnections(a!) === 2 && liveConnections(b!) === 1)
    expect(liveConnections(a!)).toBe(2)
    expect(liveConnections(b!)).toBe(1)
  })

  it("sends every 3 consecutive calls 2 to A and 1 to B, interleaved, halving A's calls over its 2 connections", async () => {
    const [a, b] = await servers("a", "b")
    const { client, waitSlots } = pooled(`pass:///127.0.0.1:${a!.port}#2,127.0.0.1:${b!.port}#1`)
    await waitSlots(3)
    const answers = await callMany(client, 300)
    for (let i = 0; i + 3 <= answers.length; i++) {
      expect(tally(answers.slice(i, i + 3))).toEqual({ a: 2, b: 1 })
    }
    const perConnection = a!.observer.connections().map((c) => c.calls)
    expect(perConnection).toEqual([100, 100])
    expect(b!.observer.connections().map((c) => c.calls)).toEqual([100])
  })

  it.each([
    { counts: [3, 1], periods: 50 },
    { counts: [1, 1, 1], periods: 100 },
    { counts: [5, 2], periods: 40 },
    { counts: [4, 1, 2], periods: 30 }
  ])("follows the counts $counts exactly over whole periods, with 16 calls in flight", async ({ counts, periods }) => {
    const names = counts.map((_, i) => `s${i}`)
    const started = await servers(...names)
    const target = `pass:///${started.map((s, i) => `127.0.0.1:${s.port}#${counts[i]}`).join(",")}`
    const total = counts.reduce((x, y) => x + y, 0)
    const { client, waitSlots } = pooled(target)
    await waitSlots(total)
    const answers = await callMany(client, total * periods, 16)
    const expected = Object.fromEntries(names.map((name, i) => [name, counts[i]! * periods]))
    expect(tally(answers)).toEqual(expected)
    started.forEach((server, i) => {
      // Each of a server's connections carries the same share of its calls.
      expect(server.observer.connections().map((c) => c.calls)).toEqual(Array(counts[i]).fill(periods))
    })
  })

  it("shares connections between channels with equal target and options, and not with a local subchannel pool", async () => {
    const [a] = await servers("a")
    const target = `pass:///127.0.0.1:${a!.port}#2`
    const first = pooled(target)
    const second = pooled(target)
    await Promise.all([first.waitSlots(2), second.waitSlots(2)])
    await callMany(first.client, 4)
    await callMany(second.client, 4)
    expect(liveConnections(a!)).toBe(2)
    const own = pooled(target, { "grpc.use_local_subchannel_pool": 1 })
    await own.waitSlots(2)
    await eventually("4 connections", () => liveConnections(a!) === 4)
  })

  it("fails the client constructor at once on a malformed target, with the core's message", () => {
    const bad = "pass:///127.0.0.1:1,,127.0.0.1:2"
    expect(() => makeClient(bad)).toThrowError(/no address.*position 20/)
    expect(() => makeClient("pass:///127.0.0.1:99999")).toThrowError(/65535/)
    expect(() => createChannel("pass:///a:1#0", grpc.credentials.createInsecure())).toThrowError(/#0|1\.\.256|256/)
  })

  it("fails the client constructor at once when the target asks for more connections than the channel's cap", () => {
    const target = "pass:///127.0.0.1:1#256,127.0.0.1:2#256"
    expect(() => makeClient(target, { "grpc_anchor.max_connections": 300 })).toThrowError(
      /asks for 512 connections, over this channel's cap of 300.*grpc_anchor\.max_connections/
    )
    // Another malformed setting (the policy's to report) does not skip the cap check.
    expect(() => makeClient(target, { "grpc_anchor.max_connections": 300, "grpc_anchor.hung_after_ms": -1 })).toThrowError(/over this channel's cap of 300/)
    // Under the cap (here the default, 4,096) the channel is made; so it is when
    // the user's service config names a policy, which then decides alone.
    makeClient(target).close()
    makeClient(target, {
      "grpc_anchor.max_connections": 300,
      "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] })
    }).close()
  })

  it("reports the target when no connection can be made, and waits under waitForReady", async () => {
    // Port 1 on loopback: nothing listens there, connections are refused at once.
    const { client } = pooled("pass:///127.0.0.1:1#2")
    const error = await call(client, { deadlineMs: 5_000 }).then(
      () => undefined,
      (e: grpc.ServiceError) => e
    )
    expect(error?.code).toBe(grpc.status.UNAVAILABLE)
    expect(error?.details).toContain("pass:///127.0.0.1:1#2")
    const waiting = await call(client, { deadlineMs: 300, waitForReady: true }).then(
      () => undefined,
      (e: grpc.ServiceError) => e
    )
    expect(waiting?.code).toBe(grpc.status.DEADLINE_EXCEEDED)
  })
})

describe("failover with real backend processes", () => {
  const processes = async (...names: Array<string>): Promise<Array<EchoProcess>> => {
    const started = await Promise.all(names.map((name) => startEchoProcess({ name })))
    for (const p of started) defer(() => p.kill())
    return started
  }

  it("skips a killed backend at once and takes it back when it restarts on the same port", async () => {
    const [a, b, c] = await processes("a", "b", "c")
    const target = `pass:///127.0.0.1:${a!.port}#2,127.0.0.1:${b!.port}#1,127.0.0.1:${c!.port}#1`
    const { client, slots, waitSlots } = pooled(target, { "grpc.initial_reconnect_backoff_ms": 100, "grpc.max_reconnect_backoff_ms": 500 })
    await waitSlots(4)

    // Steady traffic: 8 calls in flight, each recording when it started.
    const results: Array<{ readonly startedAt: number; readonly ok: boolean; readonly server?: string; readonly error?: string }> = []
    let running = true
    const traffic = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (running) {
          const startedAt = performance.now()
          await call(client as Echo, { deadlineMs: 5_000 }).then(
            (server) => results.push({ startedAt, ok: true, server }),
            (error: grpc.ServiceError) => results.push({ startedAt, ok: false, error: error.details })
          )
        }
      })
    )
    const stopTraffic = async () => {
      running = false
      await traffic
    }
    defer(stopTraffic)

    await eventually("traffic on all", () => new Set(results.map((r) => r.server)).size === 3)
    await c!.kill()
    // After the kill: the process is gone and the client has read the close of
    // its connection (a call racing that read, within the same millisecond or
    // two, can still be sent on it; bench:failover measures that window).
    await eventually(
      "the client to see c's connection drop",
      () => slots().every((s) => s.address !== `127.0.0.1:${c!.port}` || s.state !== "READY"),
      { timeoutMs: 5_000, intervalMs: 1 }
    )
    const killedAt = performance.now()
    await eventually("200 calls after the kill", () => results.filter((r) => r.startedAt > killedAt).length >= 200)
    const afterKill = results.filter((r) => r.startedAt > killedAt)
    expect(afterKill.filter((r) => !r.ok)).toEqual([])
    expect(afterKill.filter((r) => r.server === "c")).toEqual([])

    const restarted = await startEchoProcess({ name: "c", port: c!.port })
    defer(() => restarted.kill())
    const restartedAt = performance.now()
    await eventually("c serving again", () => results.some((r) => r.startedAt > restartedAt && r.server === "c"), { timeoutMs: 15_000 })
    await stopTraffic()
    const stats = await restarted.stats()
    expect(stats.connections.length).toBe(1)
    expect(stats.calls).toBeGreaterThan(0)
    // Nothing that started after the kill failed, through the restart.
    expect(results.filter((r) => r.startedAt > killedAt && !r.ok)).toEqual([])
  })
})
