/**
 * Bounded size for etcd sets (issue 10, finding 5): an `etcd:` service whose
 * registered backends ask for more connections than the channel's cap
 * (`grpc_anchor.max_connections`) is not refused (the set is not the
 * client's to fix): the pool keeps whole addresses in ascending address
 * order while they fit and leaves the rest out (traced under
 * `GRPC_TRACE=anchor_round_robin`). Real etcd, real echo servers.
 */
import { describe, expect, it } from "@effect/vitest"
import { startEchoServer, type EchoServer } from "../../packages/cli/src/echo/echo.js"
import { register } from "../../src/main/index.js"
import { etcdForFile } from "../support/etcdForFile.js"
import { cleanupAfterEach } from "../support/grpc.js"
import { attempt, echoClient, summarize } from "../support/stress.js"

register()

const defer = cleanupAfterEach()
const etcd = etcdForFile()

/** The record etcd's Go endpoints manager writes (see README, "etcd records"). */
const record = (address: string): string => JSON.stringify({ Op: 0, Addr: address, Metadata: null })

describe("connection cap, etcd sets", () => {
  it("keeps whole addresses in address order while they fit, and dials none of the others", async () => {
    const servers: Array<EchoServer> = await Promise.all(["s0", "s1", "s2"].map((name) => startEchoServer({ name })))
    for (const server of servers) defer(() => server.close({ force: true }))
    const service = `cap-${Date.now()}`
    for (const server of servers) await etcd.ctlOk(["put", `${service}/${server.address}`, record(server.address)])
    // The order the pool keeps: ascending address.
    const sorted = [...servers].sort((x, y) => (x.address < y.address ? -1 : x.address > y.address ? 1 : 0))
    const [first, second, third] = sorted as [EchoServer, EchoServer, EchoServer]

    // 3 addresses #2 = 6 connections, over a cap of 5: the first two addresses fit (4), the third does not.
    const client = echoClient(`etcd://${etcd.endpoints[0]}/${service}#2`, {
      "grpc.use_local_subchannel_pool": 1,
      "grpc_anchor.max_connections": 5
    })
    defer(() => client.close())
    const outcomes = []
    for (let i = 0; i < 40; i++) outcomes.push(await attempt(client, { deadlineMs: 10_000, waitForReady: true }))
    console.log(`etcd set over the cap: ${summarize(outcomes)}; left out ${third.address}`)

    const answered: Record<string, number> = {}
    for (const outcome of outcomes) answered[outcome.answeredBy ?? `status ${outcome.code}`] = (answered[outcome.answeredBy ?? `status ${outcome.code}`] ?? 0) + 1
    expect(answered).toEqual({ [first.name]: 20, [second.name]: 20 })
    expect(first.observer.connections().filter((connection) => connection.open)).toHaveLength(2)
    expect(second.observer.connections().filter((connection) => connection.open)).toHaveLength(2)
    expect(third.observer.connections()).toEqual([])
  })
})
