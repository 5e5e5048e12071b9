/**
 * Deterministic subsetting (`etcd:///svc?subset=K`) end to end: a real etcd,
 * real grpc-js servers on loopback, one channel per client id (each with its
 * own subchannel pool, as separate processes would have). Each channel
 * connects to the K backends `Subset.select` names for its id, and follows
 * the service as backends join and leave.
 */
import * as os from "node:os"
import type * as grpc from "@grpc/grpc-js"
import { describe, expect, it } from "vitest"
import type { EchoServer } from "../../packages/cli/src/echo/echo.js"
import { Subset } from "../../src/main/core.js"
import { EtcdResolver, register } from "../../src/main/index.js"
import { etcdForFile } from "../support/etcdForFile.js"
import { callMany, cleanupAfterEach, echoServers, eventually, tally } from "../support/grpc.js"
import { pooled as openPooled, type Pooled } from "../support/pooled.js"

register()

const etcd = etcdForFile()

const defer = cleanupAfterEach()

const servers = echoServers(defer)

const at = (server: EchoServer) => `127.0.0.1:${server.port}`
const live = (server: EchoServer) => server.observer.connections().length
const put = (service: string, server: EchoServer) =>
  etcd.ctlOk(["put", `${service}/${at(server)}`, `{"Op":0,"Addr":"${at(server)}","Metadata":null}`])
const del = (service: string, server: EchoServer) => etcd.ctlOk(["del", `${service}/${at(server)}`])

const pooled = (target: string, options: grpc.ChannelOptions) => {
  const opened = openPooled(target, { ...options, "grpc.use_local_subchannel_pool": 1 })
  defer(opened.close)
  return opened
}

const addressesOf = (channel: Pooled) => [...new Set(channel.slots().map((s) => s.address))].sort()

/** Waits until every channel holds exactly the READY slots of the subset the core names for it. */
const settle = async (channels: ReadonlyArray<Pooled>, ids: ReadonlyArray<number>, backends: ReadonlyArray<string>, k: number, count = 1) => {
  for (const [i, channel] of channels.entries()) {
    const expected = [...Subset.select(backends, k, ids[i]!)].sort()
    await eventually(`client ${ids[i]} on ${expected.join(",")}`, () => {
      channel.client.getChannel().getConnectivityState(true) // connects an idle channel
      const slots = channel.slots()
      return slots.length === k * count && slots.every((s) => s.state === "READY") && addressesOf(channel).join() === expected.join()
    })
  }
}

describe("etcd:// ?subset=K", () => {
  it("connects each of 4 client ids to the 2 backends Subset.select names, 2 clients per backend, and follows a leave and a join", async () => {
    const service = "subset/echo"
    const started = await servers("s0", "s1", "s2", "s3", "s4")
    const [first, second, third, fourth, fifth] = started
    for (const server of [first!, second!, third!, fourth!]) await put(service, server)
    const ids = [0, 1, 2, 3]
    const channels = ids.map((id) => pooled(`etcd://${etcd.endpoints[0]}/${service}#2?subset=2`, { [EtcdResolver.CLIENT_ID_OPTION]: id }))
    let backends = [first!, second!, third!, fourth!].map(at)
    await settle(channels, ids, backends, 2, 2)
    // Four clients on four backends, 2 each: every backend has exactly 2 clients x #2 connections.
    await eventually("4 connections per backend", () => [first!, second!, third!, fourth!].every((s) => live(s) === 4))
    for (const channel of channels) {
      const answers = tally(await callMany(channel.client, 20, 2))
      expect(Object.keys(answers)).toHaveLength(2)
    }

    // A backend leaves: the clients that had it take another; each client keeps 2.
    await del(service, second!)
    backends = [first!, third!, fourth!].map(at)
    await settle(channels, ids, backends, 2, 2)

    // A new one joins: subsets follow the core's choice over the 4 backends.
    await put(service, fifth!)
    backends = [first!, third!, fourth!, fifth!].map(at)
    await settle(channels, ids, backends, 2, 2)
    for (const channel of channels) {
      const names = Object.keys(tally(await callMany(channel.client, 20, 2)))
      expect(names).toHaveLength(2)
      expect(names).not.toContain("s1")
    }
  }, 60_000)

  it("uses every backend when the service has no more than K, and the process's name when the channel sets no client id", async () => {
    const service = "subset/small"
    const [a, b, c] = await servers("a", "b", "c")
    await put(service, a!)
    await put(service, b!)
    const channel = pooled(`etcd://${etcd.endpoints[0]}/${service}?subset=2`, {})
    await channel.waitSlots(2)
    expect(addressesOf(channel)).toEqual([at(a!), at(b!)].sort())
    await put(service, c!)
    // The default client id is the name `${hostname}/${pid}`.
    const expected = [...Subset.select([a!, b!, c!].map(at), 2, `${os.hostname()}/${process.pid}`)].sort()
    await eventually(`the subset ${expected.join(",")}`, () => addressesOf(channel).join() === expected.join())
    await channel.waitSlots(2)
    expect(Object.keys(tally(await callMany(channel.client, 10)))).toHaveLength(2)
  })
})
