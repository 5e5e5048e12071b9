/**
 * The 3-member cluster harness itself (test/support/etcd.ts `startCluster`,
 * test/support/peerProxy.ts): that `isolate` really cuts a member off from
 * its peers in both directions while its client port still answers, that
 * `heal`, `pause`/`resume` and `leader` do what the fault tests assume, and
 * that `stop` leaves nothing open.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type EtcdCluster, etcdctl, etcdctlOk, eventually, expectNoOpenHandles, startCluster } from "../support/etcd.js"
import { memberStatus, rangeKeys } from "../support/etcdGateway.js"

/** The cluster runs with --election-timeout=250: a member cut off notices within a few of them. */
const NOTICE_MS = 3_000

let cluster: EtcdCluster

beforeAll(async () => {
  cluster = await startCluster(3)
})

afterAll(async () => {
  await cluster?.stop()
  await expectNoOpenHandles(10_000)
})

const port = (index: number) => cluster.members[index]!.spec.clientPort

/** Whether member `index` has a leader, as it says itself (a serializable view: it answers while cut off). */
const hasLeader = async (index: number): Promise<boolean> => {
  const status = await memberStatus(port(index))
  return status !== undefined && status.leader !== "0"
}

/** A serializable read of `key` on member `index` alone (what it holds, without asking the leader). */
const localValue = async (index: number, key: string): Promise<string | undefined> => {
  const result = await etcdctl([cluster.endpoints[index]!], ["get", key, "--print-value-only", "--consistency=s"])
  return result.code === 0 ? result.stdout.trim() : undefined
}

describe("startCluster: isolate, heal, pause, resume, leader", () => {
  it("names a leader that every member follows", async () => {
    const leader = await cluster.leader()
    const statuses = await Promise.all([0, 1, 2].map((i) => memberStatus(port(i))))
    const leaderId = statuses[leader]!.memberId
    expect(statuses.map((s) => s?.leader)).toEqual([leaderId, leaderId, leaderId])
  })

  it.each(["a follower", "the leader"])("isolates %s from its peers in both directions, its client port still answering; heal brings it back", async (which) => {
    await cluster.waitHealthy()
    const leader = await cluster.leader()
    const victim = which === "the leader" ? leader : (leader + 1) % 3
    const others = [0, 1, 2].filter((i) => i !== victim)
    const before = await cluster.proxyStats()
    expect(before.unknown, "every peer connection traced to its member").toBe(0)
    expect(before.live.length).toBeGreaterThan(0)

    const key = `harness/isolated-${victim}-${Date.now()}`
    await cluster.isolate(victim)
    try {
      const cut = await cluster.proxyStats()
      expect(cut.cut).toBeGreaterThan(before.cut)
      expect(cut.live.filter((relay) => relay.split("->").includes(String(victim)))).toEqual([])

      // The victim loses its leader (a cut-off leader steps down: etcd runs with
      // CheckQuorum), its /health turns false; the other two keep or elect one.
      await eventually(`m${victim} without a leader`, async () => !(await hasLeader(victim)), { timeoutMs: NOTICE_MS, intervalMs: 50 })
      await eventually(`m${victim} unhealthy`, async () => !(await cluster.healthy(victim)), { timeoutMs: NOTICE_MS, intervalMs: 50 })
      const newLeader = await cluster.leader(NOTICE_MS)
      expect(others).toContain(newLeader)
      for (const i of others) expect(await cluster.healthy(i)).toBe(true)

      // Nothing reaches it: a write through the others is not replicated to it,
      // and it still serves its client port (a serializable read of its own copy).
      await etcdctlOk(others.map((i) => cluster.endpoints[i]!), ["put", key, "written while cut off"])
      expect(await localValue(others[0]!, key)).toBe("written while cut off")
      await new Promise((resolve) => setTimeout(resolve, 500))
      expect(await localValue(victim, key)).toBe("")
      // A linearizable read on it fails: it cannot reach the leader.
      expect(await rangeKeys(port(victim), key)).toBeUndefined()

      // Still cut off a few election timeouts later (the proxies refuse its redials).
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      expect(await hasLeader(victim)).toBe(false)
      expect((await cluster.proxyStats()).refused).toBeGreaterThan(0)
    } finally {
      await cluster.heal(victim)
    }
    await cluster.waitHealthy(10_000)
    for (const i of [0, 1, 2]) expect(await cluster.healthy(i)).toBe(true)
    await eventually(`m${victim} caught up`, async () => (await localValue(victim, key)) === "written while cut off", { timeoutMs: 5_000, intervalMs: 100 })
    expect((await cluster.proxyStats()).unknown).toBe(0)
  }, 60_000)

  it("pause hangs a member (no answer on its client port), the others keep a leader; resume brings it back", async () => {
    await cluster.waitHealthy()
    const leader = await cluster.leader()
    const victim = (leader + 1) % 3
    cluster.pause(victim)
    try {
      expect(cluster.members[victim]!.paused).toBe(true)
      expect(cluster.available()).not.toContain(victim)
      expect(await memberStatus(port(victim))).toBeUndefined()
      expect(await cluster.healthy(victim)).toBe(false)
      expect(await cluster.leader()).toBe(leader)
    } finally {
      cluster.resume(victim)
    }
    expect(cluster.members[victim]!.paused).toBe(false)
    await cluster.waitHealthy(10_000)
    expect(await cluster.healthy(victim)).toBe(true)
  }, 30_000)

  it("leader() follows a new leader after the leader is killed; restart brings the member back on its data", async () => {
    await cluster.waitHealthy()
    const leader = await cluster.leader()
    await cluster.ctlOk(["put", "harness/kept", "yes"])
    await cluster.crash(leader)
    const next = await cluster.leader()
    expect(next).not.toBe(leader)
    expect(cluster.available()).not.toContain(leader)
    await cluster.restart(leader)
    await cluster.waitHealthy(10_000)
    expect(await localValue(leader, "harness/kept")).toBe("yes")
  }, 30_000)
})
