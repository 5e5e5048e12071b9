/**
 * Target options and count ranges through the `pass` resolver into
 * `anchor_round_robin`, against real grpc-js servers on loopback: `#MIN..MAX`
 * opens MIN connections and may grow to MAX, `?pick=` sets the pick mode (and
 * wins over the policy config's `pickMode`), `?subset=K` connects each
 * channel to K backends chosen from its client id.
 */
import type * as grpc from "@grpc/grpc-js"
import { describe, expect, it } from "@effect/vitest"
import { call, type EchoServer } from "../../packages/cli/src/echo/echo.js"
import { Subset } from "../../src/main/core.js"
import { PassResolver, register } from "../../src/main/index.js"
import { callMany, cleanupAfterEach, echoServers, eventually, makeClient, tally } from "../support/grpc.js"
import { pooledClosedBy } from "../support/pooled.js"

register()

const defer = cleanupAfterEach()

const servers = echoServers(defer)

/** A pooled client closed after the test (see test/support/pooled.ts). */
const pooled = pooledClosedBy(defer)

const at = (server: EchoServer) => `127.0.0.1:${server.port}`
const live = (server: EchoServer) => server.observer.connections().length

describe("pass:/// count ranges and options", () => {
  it("opens the minimum of #1..4 and the fixed #2 under ?pick=least_request, and serves calls", async () => {
    const [a, b] = await servers("a", "b")
    const { client, slots, waitSlots } = pooled(`pass:///${at(a!)}#1..4,${at(b!)}#2?pick=least_request`)
    await waitSlots(3)
    expect(slots().map((s) => `${s.address}#${s.index}`).sort()).toEqual([`${at(a!)}#0`, `${at(b!)}#0`, `${at(b!)}#1`].sort())
    const answers = await callMany(client, 30)
    expect(answers.every((name) => name === "a" || name === "b")).toBe(true)
    // One call at a time never saturates a connection: the range stays at its minimum.
    expect([live(a!), live(b!)]).toEqual([1, 2])
  })

  it("grows a #1..3 address up to 3 connections while its connections are saturated, and a fixed #1 stays at 1", async () => {
    const [a, b] = await servers("a", "b")
    const options = { "grpc_anchor.max_streams_per_connection": 2, "grpc.use_local_subchannel_pool": 1 }
    const adaptive = pooled(`pass:///${at(a!)}#1..3`, options)
    const fixed = pooled(`pass:///${at(b!)}#1`, options)
    await Promise.all([adaptive.waitSlots(1), fixed.waitSlots(1)])
    // 12 calls in flight on each, 6 times what one connection takes, new ones starting as others end.
    const opened = (server: EchoServer) => server.observer.connections({ includeClosed: true }).length
    await Promise.all([adaptive, fixed].map(({ client }) => callMany(client, 240, 12, { delayMs: 50, deadlineMs: 30_000 })))
    expect(opened(a!)).toBe(3)
    expect(adaptive.slots().length).toBe(3)
    expect(opened(b!)).toBe(1)
  })

  /** Sends one slow call, waits until a server holds it, then 10 quick calls one at a time. */
  const besideSlow = async (target: string, servers: ReadonlyArray<EchoServer>, options: grpc.ChannelOptions = {}) => {
    const { client, waitSlots } = pooled(target, options)
    await waitSlots(2)
    const before = servers.map((s) => s.observer.totalCalls())
    const slow = call(client, { delayMs: 3_000, deadlineMs: 15_000 })
    const started = () => servers.map((s, i) => s.observer.totalCalls() - before[i]!)
    await eventually("the slow call to reach a server", () => started().reduce((x, y) => x + y, 0) === 1)
    const holder = servers[started().indexOf(1)]!
    const quick = tally(await callMany(client, 10))
    await slow
    return { holder: holder === servers[0] ? "a" : "b", quick }
  }

  it("?pick=least_request sends calls away from a connection with a call in flight; round robin does not", async () => {
    const [a, b] = await servers("a", "b")
    const leastRequest = await besideSlow(`pass:///${at(a!)},${at(b!)}?pick=least_request`, [a!, b!])
    expect(leastRequest.quick[leastRequest.holder] ?? 0).toBe(0)
    expect(Object.values(leastRequest.quick)).toEqual([10])
    const roundRobin = await besideSlow(`pass:///${at(a!)},${at(b!)}`, [a!, b!], { "grpc.use_local_subchannel_pool": 1 })
    expect(roundRobin.quick[roundRobin.holder]).toBe(5)
  }, 30_000)

  it("takes the policy config's pickMode when the target names none, and the target's ?pick= over it", async () => {
    const [a, b] = await servers("a", "b")
    const config = {
      "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ anchor_round_robin: { pickMode: "least_request" } }] }),
      "grpc.use_local_subchannel_pool": 1
    }
    const fromConfig = await besideSlow(`pass:///${at(a!)},${at(b!)}`, [a!, b!], config)
    expect(fromConfig.quick[fromConfig.holder] ?? 0).toBe(0)
    const fromTarget = await besideSlow(`pass:///${at(a!)},${at(b!)}?pick=round_robin`, [a!, b!], config)
    expect(fromTarget.quick[fromTarget.holder]).toBe(5)
  }, 30_000)

  it("?subset=2 over 4 backends with client ids 0..3: each channel uses 2 backends and each backend serves exactly 2 channels", async () => {
    const started = await servers("s0", "s1", "s2", "s3")
    const target = `pass:///${started.map(at).join(",")}?subset=2`
    const channels = [0, 1, 2, 3].map((id) =>
      pooled(target, { [PassResolver.CLIENT_ID_OPTION]: id, "grpc.use_local_subchannel_pool": 1 })
    )
    await Promise.all(channels.map((c) => c.waitSlots(2)))
    for (const channel of channels) {
      expect(new Set(channel.slots().map((s) => s.address)).size).toBe(2)
      await callMany(channel.client, 4)
    }
    await eventually("8 connections in all", () => started.reduce((n, s) => n + live(s), 0) === 8)
    expect(started.map(live)).toEqual([2, 2, 2, 2])
  })

  it("?subset=2 over 5 backends with client ids 0..4: each channel connects to exactly 2, the ones Subset.select names", async () => {
    const started = await servers("s0", "s1", "s2", "s3", "s4")
    const addresses = started.map(at)
    const target = `pass:///${addresses.join(",")}?subset=2`
    const ids = [0, 1, 2, 3, 4]
    const channels = ids.map((id) => pooled(target, { [PassResolver.CLIENT_ID_OPTION]: String(id), "grpc.use_local_subchannel_pool": 1 }))
    await Promise.all(channels.map((c) => c.waitSlots(2)))
    const expected = new Map(addresses.map((a) => [a, 0]))
    channels.forEach((channel, i) => {
      const chosen = Subset.select(addresses, 2, ids[i]!)
      expect(channel.slots().map((s) => s.address).sort()).toEqual([...chosen].sort())
      for (const address of chosen) expected.set(address, expected.get(address)! + 1)
    })
    await eventually("10 connections in all", () => started.reduce((n, s) => n + live(s), 0) === 10)
    expect(started.map(live)).toEqual(addresses.map((a) => expected.get(a)))
    // Five clients on five backends: within popcount(5) = 2 of the mean 2 (the index mode's bound).
    expect(Math.max(...started.map(live)) - Math.min(...started.map(live))).toBeLessThanOrEqual(2)
  })

  it("a channel without a client id uses the process's name: a subset of the right size, the same for every such channel", async () => {
    const started = await servers("s0", "s1", "s2", "s3", "s4")
    const target = `pass:///${started.map(at).join(",")}?subset=3`
    const first = pooled(target, { "grpc.use_local_subchannel_pool": 1 })
    const second = pooled(target, { "grpc.use_local_subchannel_pool": 1 })
    await Promise.all([first.waitSlots(3), second.waitSlots(3)])
    const addressesOf = (c: typeof first) => c.slots().map((s) => s.address).sort()
    expect(new Set(addressesOf(first)).size).toBe(3)
    expect(addressesOf(second)).toEqual(addressesOf(first))
  })

  it("counts only the subset against the connection cap, and refuses a bad client id at construction", () => {
    const target = `pass:///${Array.from({ length: 10 }, (_, i) => `127.0.0.1:${i + 1}#100`).join(",")}`
    expect(() => makeClient(target, { "grpc_anchor.max_connections": 300 })).toThrowError(/asks for 1000 connections/)
    makeClient(`${target}?subset=3`, { "grpc_anchor.max_connections": 300 }).close()
    expect(() => makeClient(`${target}?subset=4`, { "grpc_anchor.max_connections": 300 })).toThrowError(/asks for 400 connections/)
    for (const bad of [-1, 1.5, 2 ** 32, "", true]) {
      expect(() => makeClient(`${target}?subset=3`, { [PassResolver.CLIENT_ID_OPTION]: bad })).toThrowError(
        /grpc_anchor\.client_id.*expected a client index/
      )
    }
  })
})
