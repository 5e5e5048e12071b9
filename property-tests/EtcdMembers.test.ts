/**
 * EtcdMembers, model-based: random sequences of successes, failures, probes,
 * picks and member-list changes against a reference model written from the
 * module's documented rules (not from its code):
 * - every known member is in every order, exactly once;
 * - healthy members come before suspect ones, and healthy ones rotate;
 * - a member that answered is healthy; one that failed is suspect until it
 *   answers again, and is probed after 250 ms doubling to at most 2 s;
 * - a member list change keeps the states of kept members.
 * The statistics printed show that the runs reach the interesting states
 * (every member suspect, all healthy, several suspect with probes due).
 */
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import * as EtcdMembers from "../src/core/EtcdMembers.js"

const HOSTS = ["m0:2379", "m1:2379", "m2:2379", "m3:2379", "m4:2379"]

/** The model: per host, healthy or the time of its next probe and its failures in a row. */
interface Model {
  readonly hosts: Array<string>
  readonly suspect: Map<string, { failures: number; probeAt: number }>
  now: number
}

type Command =
  | { readonly _tag: "Succeed"; readonly host: number }
  | { readonly _tag: "Fail"; readonly host: number }
  | { readonly _tag: "Advance"; readonly ms: number }
  | { readonly _tag: "Order" }
  | { readonly _tag: "Probe" }
  | { readonly _tag: "SetHosts"; readonly hosts: ReadonlyArray<number> }

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ _tag: fc.constant("Succeed" as const), host: fc.nat(4) }) },
  { weight: 5, arbitrary: fc.record({ _tag: fc.constant("Fail" as const), host: fc.nat(4) }) },
  { weight: 3, arbitrary: fc.record({ _tag: fc.constant("Advance" as const), ms: fc.integer({ min: 0, max: 3_000 }) }) },
  { weight: 4, arbitrary: fc.constant({ _tag: "Order" as const }) },
  { weight: 2, arbitrary: fc.constant({ _tag: "Probe" as const }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("SetHosts" as const), hosts: fc.uniqueArray(fc.nat(4), { minLength: 0, maxLength: 5 }) }) }
)

const delayAfter = (failures: number): number => Math.min(2_000, 250 * 2 ** (failures - 1))

describe("EtcdMembers (model-based)", () => {
  it("follows the documented rules over long random sequences", () => {
    const reached = { allSuspect: 0, allHealthy: 0, severalDue: 0, orders: 0, hostChanges: 0 }
    fc.assert(
      fc.property(fc.uniqueArray(fc.nat(4), { minLength: 1, maxLength: 5 }), fc.array(command, { minLength: 20, maxLength: 200 }), (initial, commands) => {
        let state = EtcdMembers.make(initial.map((i) => HOSTS[i]!))
        const model: Model = { hosts: initial.map((i) => HOSTS[i]!), suspect: new Map(), now: 0 }
        let lastHealthyFirst: string | undefined
        let lastHealthySet = ""
        for (const c of commands) {
          switch (c._tag) {
            case "Succeed": {
              const host = HOSTS[c.host]!
              state = EtcdMembers.onSuccess(state, host)
              model.suspect.delete(host)
              break
            }
            case "Fail": {
              const host = HOSTS[c.host]!
              state = EtcdMembers.onFailure(state, host, model.now)
              if (model.hosts.includes(host)) {
                const failures = (model.suspect.get(host)?.failures ?? 0) + 1
                model.suspect.set(host, { failures, probeAt: model.now + delayAfter(failures) })
              }
              break
            }
            case "Advance":
              model.now += c.ms
              break
            case "Order": {
              reached.orders++
              const { hosts, state: next } = EtcdMembers.order(state, model.now)
              state = next
              expect([...hosts].sort()).toEqual([...model.hosts].sort())
              const healthy = model.hosts.filter((h) => !model.suspect.has(h))
              expect(hosts.slice(0, healthy.length).sort()).toEqual([...healthy].sort())
              // The suspect members due for a probe come before the others.
              const rest = hosts.slice(healthy.length)
              const due = rest.map((h) => model.suspect.get(h)!.probeAt <= model.now)
              expect(due).toEqual([...due].sort((a, b) => Number(b) - Number(a)))
              if (healthy.length === 0 && model.hosts.length > 0) reached.allSuspect++
              if (healthy.length === model.hosts.length) reached.allHealthy++
              if (due.filter(Boolean).length >= 2) reached.severalDue++
              // With the same two or more healthy members as last time, the first one rotates.
              const set = [...healthy].sort().join(",")
              if (healthy.length >= 2 && lastHealthyFirst !== undefined && set === lastHealthySet) {
                expect(hosts[0]).not.toBe(lastHealthyFirst)
              }
              lastHealthyFirst = hosts[0]
              lastHealthySet = set
              break
            }
            case "Probe": {
              const { hosts, state: next } = EtcdMembers.dueProbes(state, model.now)
              state = next
              const due = model.hosts.filter((h) => (model.suspect.get(h)?.probeAt ?? Infinity) <= model.now)
              expect([...hosts].sort()).toEqual(due.sort())
              // A probe sent counts as a failure until it answers: the next one backs off.
              for (const h of due) {
                const failures = model.suspect.get(h)!.failures + 1
                model.suspect.set(h, { failures, probeAt: model.now + delayAfter(failures) })
              }
              break
            }
            case "SetHosts": {
              reached.hostChanges++
              const hosts = c.hosts.map((i) => HOSTS[i]!)
              state = EtcdMembers.setHosts(state, hosts)
              if (hosts.length > 0) {
                model.hosts.splice(0, model.hosts.length, ...hosts)
                for (const h of [...model.suspect.keys()]) if (!hosts.includes(h)) model.suspect.delete(h)
              }
              lastHealthyFirst = undefined
              break
            }
          }
          // After every command: the same health and probe times as the model.
          for (const member of state.members) {
            const suspect = model.suspect.get(member.host)
            expect(member.healthy).toBe(suspect === undefined)
            if (suspect !== undefined) expect(member.probeAt).toBe(suspect.probeAt)
          }
          const next = EtcdMembers.nextProbe(state)
          const probes = [...model.suspect.values()].map((s) => s.probeAt)
          expect(next).toBe(probes.length === 0 ? undefined : Math.min(...probes))
        }
      })
    )
    console.log(`EtcdMembers model: states reached over the runs: ${JSON.stringify(reached)}`)
    expect(reached.allSuspect).toBeGreaterThan(0)
    expect(reached.severalDue).toBeGreaterThan(0)
  })

  it("a member that fails is probed after 250 ms, doubling to at most 2 s", () => {
    let state = EtcdMembers.make(["a", "b"])
    const delays: Array<number> = []
    for (let i = 0; i < 6; i++) {
      state = EtcdMembers.onFailure(state, "a", 1_000)
      delays.push(state.members[0]!.probeAt - 1_000)
    }
    expect(delays).toEqual([250, 500, 1_000, 2_000, 2_000, 2_000])
    expect(EtcdMembers.order(state, 1_000).hosts).toEqual(["b", "a"])
    state = EtcdMembers.onSuccess(state, "a")
    expect(state.members[0]).toEqual({ host: "a", healthy: true, failures: 0, probeAt: 0 })
  })

  it("an empty member list changes nothing, and unknown hosts are ignored", () => {
    const state = EtcdMembers.make(["a", "b"])
    expect(EtcdMembers.setHosts(state, [])).toBe(state)
    expect(EtcdMembers.onFailure(state, "zz", 5)).toBe(state)
  })
})
