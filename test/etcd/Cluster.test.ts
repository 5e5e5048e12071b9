/**
 * Issue 14 against a real 3-member etcd cluster on loopback: one member hung
 * (SIGSTOP), killed and restarted on its data, killed while it leads, or cut
 * off from its peers (its peer traffic cut by the harness's proxies while
 * clients still reach it), while two stable backends registered with
 * `registerEndpoint({ etcd: { hosts: [m0, m1, m2] }, ttl: 5 })` serve a
 * client on `etcd://m0,m1,m2/cluster/echo#2` with 32 calls in flight, one
 * new backend registers and another deregisters. The scenario and its
 * measures are in test/support/clusterFaults.ts; each prints what a user
 * sees and asserts the goals: 0 failed calls, no live backend's
 * record ever absent from etcd, `registerEndpoint` and `close()` under 2 s,
 * a join or a leave reaching the client's picks under 2 s (worst case).
 *
 * Run time: every member is hung and cut off in turn (the faults that
 * matter most: a hung or partitioned member keeps its TCP connections);
 * "killed" and "leader killed" run once each (a kill resets the
 * connections, the easy case). `CLUSTER_FAULTS=all` runs every fault on
 * every member; npm run bench:etcd-cluster does, 3 times, with medians.
 *
 * Last, the fault cycles: members paused and cut off in turn, many times;
 * the process's etcd sockets and its timers must not grow.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { register } from "../../src/main/index.js"
import {
  describeResult,
  type FaultKind,
  FAULT_KINDS,
  type FaultResult,
  type Fleet,
  longestGap,
  memberLabel,
  ms,
  runFault,
  startFleet,
  startPoller
} from "../support/clusterFaults.js"
import { connectedPorts, type EtcdCluster, expectNoOpenHandles, startCluster } from "../support/etcd.js"

register()

/** The goal for registerEndpoint, close(), and a join or leave reaching the client, with one bad member (printed here; measured by `npm run bench:etcd-cluster`). */
const GOAL_MS = 2_000
/** How long each fault lasts. */
const FAULT_MS = 8_000
/**
 * What the test asserts of those times: each finished while the fault still
 * lasted (they begin 1 s into it), so none waited for the bad member to come
 * back. Speed goals belong to the bench (a loaded machine stretches them);
 * this bound still fails a client that sticks to the bad member, as the
 * etcd3-based one did (registerEndpoint up to 10.3 s).
 */
const DURING_FAULT_MS = FAULT_MS - 2_000
/** Fault cycles (`CLUSTER_CYCLES` to change; the issue speaks of 50). */
const CYCLES = Number(process.env.CLUSTER_CYCLES ?? 20)
/** How long a member stays paused or cut off in one cycle. */
const CYCLE_FAULT_MS = 1_500
/** Cycles before the baseline count (connections and timers settle after the first faults). */
const WARMUP_CYCLES = 4

const plan: ReadonlyArray<readonly [FaultKind, number]> =
  process.env.CLUSTER_FAULTS === "all"
    ? [["healthy", -1], ...FAULT_KINDS.flatMap((kind) => [0, 1, 2].map((m): readonly [FaultKind, number] => [kind, kind === "leader" ? -1 : m]))]
    : [
        ["healthy", -1],
        ["pause", 0],
        ["pause", 1],
        ["pause", 2],
        ["isolate", 0],
        ["isolate", 1],
        ["isolate", 2],
        ["kill", 1],
        ["leader", -1]
      ]

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

let cluster: EtcdCluster
let fleet: Fleet
const results: Array<FaultResult> = []

beforeAll(async () => {
  cluster = await startCluster(3)
  fleet = await startFleet(cluster)
}, 60_000)

afterAll(async () => {
  if (results.length > 0) {
    console.log(
      [
        `etcd cluster faults, what the client and etcd showed (ms; goal < ${GOAL_MS} with one bad member, asserted < ${DURING_FAULT_MS}):`,
        "fault      member        register  close  key gone  join  leave  last call  failed  gaps",
        ...results.map(
          (r) =>
            `${(r.kind === "healthy" ? "no fault" : r.kind).padEnd(10)} ${memberLabel(r).padEnd(12)} ${ms(r.registerMs).padStart(9)} ${ms(r.closeMs).padStart(6)} ${ms(r.unregisterMs).padStart(9)} ${ms(r.joinMs).padStart(5)} ${ms(r.leaveMs).padStart(6)} ${ms(r.lastCallMs).padStart(10)} ${String(r.failed.length).padStart(7)} ${String(r.gaps.length).padStart(5)}`
        )
      ].join("\n")
    )
  }
  await fleet?.close()
  await cluster?.stop()
  await expectNoOpenHandles(15_000)
}, 120_000)

describe("a 3-member etcd cluster with one member hung, killed or cut off: nothing shows", () => {
  for (const [kind, member] of plan) {
    const who = kind === "leader" ? "the leader" : kind === "healthy" ? "no member" : `m${member}`
    it(`${kind === "healthy" ? "healthy cluster" : kind} (${who}): 0 failed calls, no record gap, registerEndpoint, close(), join and leave while the fault lasts`, async () => {
      const r = await runFault(fleet, kind, member, { faultMs: FAULT_MS })
      results.push(r)
      console.log(describeResult(r))
      expect.soft(r.problems, "the scenario could not measure everything").toEqual([])
      expect.soft(r.failed.length, `failed calls: ${JSON.stringify(r.failed.slice(0, 5))}`).toBe(0)
      // etcd releases before etcd-io/etcd#16822 (3.4.23 here) have a leader that comes back from a hang
      // (or from being cut off) revoke every lease it thinks expired while it
      // was away (etcd-io/etcd#15247, fixed by etcd-io/etcd#16822); the
      // Registrar puts each record back at once, so such a gap never lasts
      // into the next read. Any other gap is ours.
      if (r.wasLeader && (kind === "pause" || kind === "isolate")) {
        expect.soft(longestGap(r.gaps), `a record missing in two reads in a row: ${JSON.stringify(r.gaps.slice(0, 5))}`).toBeLessThanOrEqual(1)
      } else {
        expect.soft(r.gaps.length, `reads of etcd without a live backend's record: ${JSON.stringify(r.gaps.slice(0, 5))}`).toBe(0)
      }
      expect.soft(r.registerMs, "registerEndpoint (ms)").toBeLessThan(DURING_FAULT_MS)
      expect.soft(r.closeMs, "close() (ms)").toBeLessThan(DURING_FAULT_MS)
      expect.soft(r.joinMs, "join: new key in etcd -> first call to it (ms)").toBeLessThan(DURING_FAULT_MS)
      expect.soft(r.leaveMs, "leave: key gone from etcd -> address dropped by the client (ms)").toBeLessThan(DURING_FAULT_MS)
      expect.soft(r.lastCallMs, "leave: key gone from etcd -> last call to it (ms)").toBeLessThan(DURING_FAULT_MS)
    }, 150_000)
  }

  it(`no etcd socket or timer grows over ${CYCLES} fault cycles (each member paused, then cut off, in turn)`, async () => {
    await cluster.waitHealthy()
    const clientPorts = new Set(cluster.members.map((m) => m.spec.clientPort))
    const failuresBefore = fleet.traffic.failures.length
    /** Counted with the traffic held, so calls in flight (and their deadline timers) do not blur it. */
    const count = async () => {
      await fleet.traffic.hold()
      try {
        await sleep(1_000)
        const resources = process.getActiveResourcesInfo()
        return {
          etcdSockets: connectedPorts().filter((port) => clientPorts.has(port)).length,
          tcp: resources.filter((name) => name.startsWith("TCP")).length,
          timers: resources.filter((name) => name === "Timeout").length,
          all: resources.length
        }
      } finally {
        fleet.traffic.release()
      }
    }
    const poller = startPoller(fleet)
    let baseline: Awaited<ReturnType<typeof count>> | undefined
    try {
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        if (cycle === WARMUP_CYCLES) baseline = await count()
        const member = cycle % 3
        if (cycle % 2 === 0) {
          cluster.pause(member)
          await sleep(CYCLE_FAULT_MS)
          cluster.resume(member)
        } else {
          await cluster.isolate(member)
          await sleep(CYCLE_FAULT_MS)
          await cluster.heal(member)
        }
        await cluster.waitHealthy(15_000)
        await sleep(300)
      }
    } finally {
      for (const member of [0, 1, 2]) {
        cluster.resume(member)
        if (cluster.isolated(member)) await cluster.heal(member)
      }
    }
    await sleep(2_000)
    const end = await count()
    const reads = await poller.stop()
    const failed = fleet.traffic.failures.slice(failuresBefore)
    console.log(
      `${CYCLES} fault cycles of ${CYCLE_FAULT_MS} ms: after ${WARMUP_CYCLES} cycles ${JSON.stringify(baseline)}, at the end ${JSON.stringify(end)}; ` +
        `${failed.length} failed calls, ${reads.gaps.length} record gaps in ${reads.polls} reads`
    )
    // A leak of one per fault would add CYCLES - WARMUP_CYCLES; allow a few in passing (a redial under way).
    const slack = 4
    expect.soft(end.etcdSockets, "TCP connections to etcd members").toBeLessThanOrEqual(baseline!.etcdSockets + slack)
    expect.soft(end.tcp, "TCP handles").toBeLessThanOrEqual(baseline!.tcp + slack)
    expect.soft(end.timers, "timers").toBeLessThanOrEqual(baseline!.timers + slack)
    expect.soft(failed.length, `failed calls: ${JSON.stringify(failed.slice(0, 5))}`).toBe(0)
    // Leaders are among the members paused: see etcd-io/etcd#15247 above.
    expect.soft(longestGap(reads.gaps), `a record missing in two reads in a row: ${JSON.stringify(reads.gaps.slice(0, 5))}`).toBeLessThanOrEqual(1)
  }, 240_000)
})
