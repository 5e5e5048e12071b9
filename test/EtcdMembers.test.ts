/**
 * EtcdMembers, case by case: the order of members to try, the probe
 * backoff, due probes and member-list changes, with the exact values a
 * caller reads (the model-based property test covers long sequences).
 */
import { describe, expect, it } from "@effect/vitest"
import * as EtcdMembers from "../src/core/EtcdMembers.js"

const A = "a:2379"
const B = "b:2379"
const C = "c:2379"
const D = "d:2379"

/** Fails `host` `times` times in a row at `now`. */
const failTimes = (state: EtcdMembers.Members, host: string, times: number, now: number): EtcdMembers.Members => {
  let s = state
  for (let i = 0; i < times; i++) s = EtcdMembers.onFailure(s, host, now)
  return s
}

const member = (state: EtcdMembers.Members, host: string): EtcdMembers.Member | undefined =>
  state.members.find((m) => m.host === host)

describe("EtcdMembers.make", () => {
  it("drops duplicates and starts every member healthy, with the default backoff", () => {
    const state = EtcdMembers.make([A, B, A, C])
    expect(state).toEqual({
      members: [
        { host: A, healthy: true, failures: 0, probeAt: 0 },
        { host: B, healthy: true, failures: 0, probeAt: 0 },
        { host: C, healthy: true, failures: 0, probeAt: 0 }
      ],
      cursor: 0,
      backoff: { probeBase: 250, probeCap: 2_000 }
    })
    expect(EtcdMembers.DEFAULT_BACKOFF).toEqual({ probeBase: 250, probeCap: 2_000 })
    expect(EtcdMembers.hosts(state)).toEqual([A, B, C])
    expect(EtcdMembers.make([A], { probeBase: 10, probeCap: 20 }).backoff).toEqual({ probeBase: 10, probeCap: 20 })
  })
})

describe("EtcdMembers.order", () => {
  it("rotates the healthy members one step per call", () => {
    let state = EtcdMembers.make([A, B, C])
    const seen: Array<ReadonlyArray<string>> = []
    for (let i = 0; i < 4; i++) {
      const next = EtcdMembers.order(state, 0)
      seen.push(next.hosts)
      state = next.state
    }
    expect(seen).toEqual([
      [A, B, C],
      [B, C, A],
      [C, A, B],
      [A, B, C]
    ])
    expect(state.cursor).toBe(4)
  })

  it("wraps the cursor at 720720 (every member count up to 16 divides it)", () => {
    const state = { ...EtcdMembers.make([A, B, C]), cursor: 720_719 }
    const next = EtcdMembers.order(state, 0)
    expect(next.hosts).toEqual([C, A, B]) // 720719 % 3 = 2
    expect(next.state.cursor).toBe(0)
    expect(EtcdMembers.order(next.state, 0).hosts).toEqual([A, B, C])
  })

  it("puts suspect members last: due probes first, then fewer failures, then the earlier probe", () => {
    let state = EtcdMembers.make([A, B, C, D, "e:2379"])
    state = failTimes(state, A, 3, 0) // probe at 1000
    state = failTimes(state, B, 1, 0) // probe at 250
    state = failTimes(state, C, 2, 100) // probe at 600
    state = failTimes(state, D, 2, 0) // probe at 500
    // At 550: B (250) and D (500) are due; A (1000) and C (600) are not.
    expect(EtcdMembers.order(state, 550).hosts).toEqual(["e:2379", B, D, C, A])
    // At 700 C is due too: B (1 failure), then D and C (2 failures) by probe time.
    expect(EtcdMembers.order(state, 700).hosts).toEqual(["e:2379", B, D, C, A])
    // At 0 none is due: fewer failures first, then the earlier probe.
    expect(EtcdMembers.order(state, 0).hosts).toEqual(["e:2379", B, D, C, A])
    // A probe due exactly now counts as due.
    expect(EtcdMembers.order(state, 1_000).hosts).toEqual(["e:2379", B, D, C, A])
  })

  it("puts a due member with many failures before one with few that is not due", () => {
    let state = EtcdMembers.make([A, B])
    state = failTimes(state, A, 4, 0) // probe at 2000
    state = failTimes(state, B, 1, 1_900) // probe at 2150
    expect(EtcdMembers.order(state, 1_999).hosts).toEqual([B, A])
    expect(EtcdMembers.order(state, 2_000).hosts).toEqual([A, B])
  })

  it("still lists every member when all are suspect, and rotates nothing then", () => {
    let state = EtcdMembers.make([A, B])
    state = failTimes(state, A, 1, 0)
    state = failTimes(state, B, 1, 10)
    const first = EtcdMembers.order(state, 0)
    expect(first.hosts).toEqual([A, B])
    expect(EtcdMembers.order(first.state, 0).hosts).toEqual([A, B])
  })
})

describe("EtcdMembers.onFailure and onSuccess", () => {
  it("backs off from probeBase, doubling, up to probeCap", () => {
    const delays: Array<number> = []
    let state = EtcdMembers.make([A, B])
    for (let i = 0; i < 6; i++) {
      state = EtcdMembers.onFailure(state, A, 10_000)
      delays.push(member(state, A)!.probeAt - 10_000)
    }
    expect(delays).toEqual([250, 500, 1_000, 2_000, 2_000, 2_000])
    expect(member(state, A)).toEqual({ host: A, healthy: false, failures: 6, probeAt: 12_000 })
    expect(member(state, B)).toEqual({ host: B, healthy: true, failures: 0, probeAt: 0 })
  })

  it("uses the state's own backoff", () => {
    const state = failTimes(EtcdMembers.make([A], { probeBase: 100, probeCap: 350 }), A, 3, 0)
    expect(member(state, A)?.probeAt).toBe(350)
    expect(member(failTimes(EtcdMembers.make([A], { probeBase: 100, probeCap: 350 }), A, 2, 0), A)?.probeAt).toBe(200)
  })

  it("makes a suspect member healthy again when it answers", () => {
    const suspect = failTimes(EtcdMembers.make([A, B]), A, 3, 0)
    const healed = EtcdMembers.onSuccess(suspect, A)
    expect(member(healed, A)).toEqual({ host: A, healthy: true, failures: 0, probeAt: 0 })
    expect(EtcdMembers.nextProbe(healed)).toBeUndefined()
    // The failures start over: the next failure waits probeBase again.
    expect(member(EtcdMembers.onFailure(healed, A, 5), A)?.probeAt).toBe(255)
  })

  it("returns the same state for an answer from a healthy member or news about an unknown host", () => {
    const state = EtcdMembers.make([A, B])
    expect(EtcdMembers.onSuccess(state, A)).toBe(state)
    expect(EtcdMembers.onSuccess(state, "x:1")).toBe(state)
    expect(EtcdMembers.onFailure(state, "x:1", 0)).toBe(state)
  })
})

describe("EtcdMembers.dueProbes and nextProbe", () => {
  it("returns the due suspects and pushes their next probe back", () => {
    let state = EtcdMembers.make([A, B, C])
    state = failTimes(state, A, 1, 0) // due at 250
    state = failTimes(state, B, 2, 0) // due at 500
    expect(EtcdMembers.nextProbe(state)).toBe(250)
    expect(EtcdMembers.dueProbes(state, 249).hosts).toEqual([])
    const due = EtcdMembers.dueProbes(state, 250)
    expect(due.hosts).toEqual([A])
    expect(member(due.state, A)).toEqual({ host: A, healthy: false, failures: 2, probeAt: 750 })
    expect(member(due.state, B)).toEqual(member(state, B))
    expect(EtcdMembers.nextProbe(due.state)).toBe(500)
    const both = EtcdMembers.dueProbes(state, 600)
    expect(both.hosts).toEqual([A, B])
    expect(EtcdMembers.nextProbe(both.state)).toBe(600 + 500)
  })

  it("has no probe when every member is healthy", () => {
    const state = EtcdMembers.make([A, B])
    expect(EtcdMembers.nextProbe(state)).toBeUndefined()
    expect(EtcdMembers.dueProbes(state, 1e9)).toEqual({ hosts: [], state })
  })

  it("finds the earliest probe wherever it is in the list", () => {
    let state = EtcdMembers.make([A, B, C])
    state = failTimes(state, A, 1, 300) // 550
    state = failTimes(state, B, 1, 500) // 750
    state = failTimes(state, C, 1, 0) // 250
    expect(EtcdMembers.nextProbe(state)).toBe(250)
  })
})

describe("EtcdMembers.setHosts", () => {
  it("keeps the states of kept members, adds new ones healthy, forgets dropped ones", () => {
    let state = EtcdMembers.make([A, B, C])
    state = failTimes(state, B, 2, 0)
    const next = EtcdMembers.setHosts(state, [D, B, D, A])
    expect(next.members).toEqual([
      { host: D, healthy: true, failures: 0, probeAt: 0 },
      { host: B, healthy: false, failures: 2, probeAt: 500 },
      { host: A, healthy: true, failures: 0, probeAt: 0 }
    ])
    expect(next.cursor).toBe(state.cursor)
    expect(next.backoff).toBe(state.backoff)
  })

  it("ignores an empty member list", () => {
    const state = EtcdMembers.make([A, B])
    expect(EtcdMembers.setHosts(state, [])).toBe(state)
  })
})
