/**
 * The hung rule (every pick mode) at its boundaries, through picks, the
 * slots' `hung` / `avoided` views and the lines `settlePicks` returns, for
 * the changes StrykerJS (`npm run test:mutation`) found no test noticing:
 * the threshold (the floor, 8 x the other address's latency, the half for
 * the latest start), which answer counts as "another address", the probe
 * rounds (1, 2, ... up to 8, patience while calls are in flight, starting
 * over after an unanswered end) and the way back.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Balancer from "../src/core/Balancer.js"
import type * as Expansion from "../src/core/Expansion.js"

/** The probe period and the threshold's floor in these tests. */
const H = 100

/** A serving pool, every connection READY at 0, the hung rule at `H`; `id("a:1#0")` names a slot. */
const pool = (endpoints: ReadonlyArray<Expansion.Weighted>, options: Partial<Balancer.Options> = {}) => {
  const b = Balancer.make({ startWaitMs: 0, suspicionMs: 0, hungAfterMs: H, trace: true, ...options })
  const ids = new Map<string, number>()
  const keys = new Map<number, string>()
  const out = Balancer.step(b, { _tag: "Addresses", now: 0, target: "pass:///x", endpoints, overCap: "fail", offset: 0 })
  for (const slot of out.create) {
    ids.set(`${slot.address}#${slot.index}`, slot.id)
    keys.set(slot.id, `${slot.address}#${slot.index}`)
    Balancer.step(b, { _tag: "StateChanged", now: 0, slot: slot.id, state: "READY" })
  }
  const id = (key: string) => ids.get(key)!
  return {
    b,
    id,
    start: (key: string, now: number) => Balancer.callStarted(b, id(key), now),
    end: (key: string, now: number, answered = true) => Balancer.callEnded(b, id(key), now, answered),
    /** A call on `key` from `now` answered `ms` later. */
    answer: (key: string, now: number, ms: number) => {
      Balancer.callStarted(b, id(key), now)
      Balancer.callEnded(b, id(key), now + ms)
    },
    /** `n` picks at `now` (one event-loop turn), as slot keys. */
    picks: (now: number, n: number) => {
      const got: Array<string> = []
      for (let i = 0; i < n; i++) got.push(keys.get(Balancer.pick(b, now)) ?? "none")
      Balancer.settlePicks(b)
      return got
    },
    view: (key: string) => Balancer.slots(b).find((s) => s.id === id(key))!,
    notes: () => Balancer.settlePicks(b)
  }
}

/**
 * a:1 gets 3 calls (at 0, `second`, `last`) and none answered; b:1 answers
 * one call from `bAt` taking `bMs`. The events run in time order.
 */
const stalled = (second: number, last: number, bAt: number, bMs: number, options: Partial<Balancer.Options> = {}) => {
  const p = pool([{ address: "a:1", count: 1 }, { address: "b:1", count: 1 }], options)
  const events: Array<[number, () => void]> = [
    [0, () => p.start("a:1#0", 0)],
    [second, () => p.start("a:1#0", second)],
    [last, () => p.start("a:1#0", last)],
    [bAt, () => p.start("b:1#0", bAt)],
    [bAt + bMs, () => p.end("b:1#0", bAt + bMs)]
  ]
  // Stable: at equal times, a:1's start comes first.
  for (const [, run] of events.sort((x, y) => x[0] - y[0])) run()
  return p
}

const both = ["a:1#0", "b:1#0"]

describe("Balancer hung rule: when a connection is avoided", () => {
  it("avoids it once the second call has waited exactly the threshold and the latest started exactly half of it later", () => {
    const p = stalled(10, 60, 20, 1)
    expect(p.picks(109, 2).sort()).toEqual(both)
    expect(p.picks(110, 2)).toEqual(["b:1#0", "b:1#0"])
    expect(p.view("a:1#0")).toMatchObject({ hung: true, avoided: 1, pickable: false })
    expect(Balancer.avoidances(p.b)).toBe(1)
    expect(p.picks(111, 2)).toEqual(["b:1#0", "b:1#0"])
    expect(Balancer.avoidances(p.b)).toBe(1)
  })

  it("tells why in the lines settlePicks returns", () => {
    const p = stalled(10, 60, 20, 1)
    Balancer.pick(p.b, 110)
    Balancer.pick(p.b, 110)
    expect(p.notes()).toEqual([
      "a:1#0: 3 calls unanswered, the second for 100 ms, while b:1 answers; avoided (hung) until a call is answered, one probe every 100 ms"
    ])
    expect(p.notes()).toEqual([])
  })

  it("writes no lines with the trace off", () => {
    const p = stalled(10, 60, 20, 1, { trace: false })
    const lines: Array<ReadonlyArray<string>> = []
    expect(Balancer.pick(p.b, 110)).toBe(p.id("b:1#0"))
    lines.push(p.notes())
    for (let i = 0; i < 3; i++) p.end("a:1#0", 111, false)
    expect(Balancer.pick(p.b, 210)).toBe(p.id("a:1#0"))
    lines.push(p.notes())
    p.start("a:1#0", 220)
    p.end("a:1#0", 230)
    expect(p.view("a:1#0").hung).toBe(false)
    lines.push(p.notes())
    expect(lines).toEqual([[], [], []])
  })

  it("names the other address in that line also when a sibling answered last", () => {
    const p = pool([{ address: "a:1", count: 2 }, { address: "b:1", count: 1 }])
    p.start("a:1#0", 0)
    p.start("a:1#0", 10)
    p.answer("b:1#0", 20, 1)
    p.start("a:1#0", 60)
    p.answer("a:1#1", 70, 1)
    p.notes()
    for (let i = 0; i < 3; i++) Balancer.pick(p.b, 110)
    expect(p.view("a:1#0").hung).toBe(true)
    expect(p.notes()).toEqual([
      "a:1#0: 3 calls unanswered, the second for 100 ms, while b:1 answers; avoided (hung) until a call is answered, one probe every 100 ms"
    ])
  })

  it("does not avoid it when the latest call started less than half the threshold after the second", () => {
    const p = stalled(10, 59, 20, 1)
    expect(p.picks(500, 2).sort()).toEqual(both)
    expect(p.view("a:1#0").hung).toBe(false)
  })

  it("does not avoid it with two calls waiting, or with the rule off", () => {
    const p = pool([{ address: "a:1", count: 1 }, { address: "b:1", count: 1 }])
    p.start("a:1#0", 0)
    p.start("a:1#0", 10)
    p.answer("b:1#0", 20, 1)
    expect(p.picks(500, 2).sort()).toEqual(both)
    const off = stalled(10, 60, 20, 1, { hungAfterMs: 0 })
    expect(off.picks(500, 2).sort()).toEqual(both)
    expect(off.view("a:1#0").hung).toBe(false)
    // ewma counts the calls waiting too (its penalty reads them): the rule stays off.
    const ewma = stalled(10, 60, 20, 1, { hungAfterMs: 0, pickMode: "ewma" })
    // b:1 loaded so that the picks land on a:1 too (where the rule would look).
    ewma.start("b:1#0", 500)
    for (let i = 0; i < 40; i++) ewma.start("b:1#0", 500)
    expect(ewma.picks(500, 8)).toContain("a:1#0")
    expect(ewma.view("a:1#0").hung).toBe(false)
    expect(Balancer.avoidances(ewma.b)).toBe(0)
  })

  it("does not avoid it when the other address last answered when the second call started, not after", () => {
    const p = stalled(10, 60, 5, 5)
    expect(p.picks(500, 2).sort()).toEqual(both)
    const after = stalled(10, 60, 5, 6)
    expect(after.picks(500, 2)).toEqual(["b:1#0", "b:1#0"])
  })

  it("raises the threshold to 8 times the other address's latency", () => {
    // b:1 answers in 20 ms: T = 160, the latest start must be 80 after the second.
    const p = stalled(10, 90, 20, 20)
    expect(p.picks(169, 2).sort()).toEqual(both)
    expect(p.picks(170, 2)).toEqual(["b:1#0", "b:1#0"])
    const early = stalled(10, 89, 20, 20)
    expect(early.picks(1_000, 2).sort()).toEqual(both)
  })

  it("averages the other address's latency over its answers (1/8 of each new one)", () => {
    // b:1 answers in 20 ms, then in 100 ms: 20 + (100 - 20) / 8 = 30, T = 240.
    const p = pool([{ address: "a:1", count: 1 }, { address: "b:1", count: 1 }])
    p.start("a:1#0", 0)
    p.start("a:1#0", 10)
    p.answer("b:1#0", 20, 20)
    p.answer("b:1#0", 40, 100)
    p.start("a:1#0", 140)
    expect(p.picks(249, 2).sort()).toEqual(both)
    expect(p.picks(250, 2)).toEqual(["b:1#0", "b:1#0"])
  })

  it("measures the latency by the calls in flight over time: two calls at once for 10 ms answer in 10 ms each", () => {
    // Area 2 x 10 over 1 answer, then 1 x 10 over the next: samples 20 and 10, latency 20 + (10 - 20) / 8.
    const p = pool([{ address: "a:1", count: 1 }, { address: "b:1", count: 1 }])
    p.start("a:1#0", 0)
    p.start("a:1#0", 10)
    p.start("b:1#0", 20)
    p.start("b:1#0", 20)
    p.end("b:1#0", 30)
    p.end("b:1#0", 40)
    // latency 18.75: T = 150, the latest start 75 after the second.
    p.start("a:1#0", 85)
    expect(p.picks(159, 2).sort()).toEqual(both)
    expect(p.picks(160, 2)).toEqual(["b:1#0", "b:1#0"])
  })

  it("takes as the other address the latest one that answered, not the one before", () => {
    // c:1 answers in 30 ms (T would be 240), then b:1 in 1 ms: b:1 is the other address, T = 100.
    const p = pool([{ address: "a:1", count: 1 }, { address: "b:1", count: 1 }, { address: "c:1", count: 1 }])
    p.start("c:1#0", 0)
    p.start("a:1#0", 0)
    p.start("a:1#0", 10)
    p.end("c:1#0", 30)
    p.start("b:1#0", 40)
    p.end("b:1#0", 41)
    p.start("a:1#0", 60)
    expect(p.picks(109, 3).sort()).toEqual(["a:1#0", "b:1#0", "c:1#0"])
    expect(p.picks(110, 4).filter((key) => key === "a:1#0")).toEqual([])
  })

  it("takes as the other address the one before when its own address answered last", () => {
    // b:1 answered before the second call started; the sibling a:1#1 answers after: no other address since.
    const p = pool([{ address: "a:1", count: 2 }, { address: "b:1", count: 1 }])
    p.answer("b:1#0", 0, 5)
    p.start("a:1#0", 5)
    p.start("a:1#0", 10)
    p.start("a:1#0", 60)
    p.answer("a:1#1", 70, 1)
    p.answer("a:1#1", 80, 1)
    expect(p.picks(500, 3).sort()).toEqual(["a:1#0", "a:1#1", "b:1#0"])
    expect(p.view("a:1#0").hung).toBe(false)
  })
})

describe("Balancer hung rule: probes and the way back", () => {
  /** a:1 hung at 110 (see above), its 3 calls then ended unanswered. */
  const avoided = () => {
    const p = stalled(10, 60, 20, 1)
    expect(p.picks(110, 1)).toEqual(["b:1#0"])
    for (let i = 0; i < 3; i++) p.end("a:1#0", 111, false)
    p.notes()
    return p
  }

  /** The picks at `now` that go to a:1 before the first to b:1 (9 picks at most). */
  const round = (p: ReturnType<typeof pool>, now: number) => {
    const got = p.picks(now, 9)
    return got.indexOf("b:1#0")
  }

  it("lets 1 call through a probe period later, then 2, ... up to 8 per period", () => {
    const p = avoided()
    expect(round(p, 209)).toBe(0)
    const rounds: Array<number> = []
    for (let k = 0; k < 9; k++) rounds.push(round(p, 210 + k * H))
    expect(rounds).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 8])
    expect(p.view("a:1#0").hung).toBe(true)
  })

  it("traces each probe round", () => {
    const p = avoided()
    Balancer.pick(p.b, 210)
    expect(p.notes()).toEqual(["a:1#0: probe (1 call) while hung"])
    Balancer.pick(p.b, 310)
    Balancer.pick(p.b, 310)
    expect(p.notes()).toEqual(["a:1#0: probe (2 calls) while hung"])
  })

  it("starts the rounds over at one call when a call ends unanswered", () => {
    const p = avoided()
    expect([round(p, 210), round(p, 310), round(p, 410)]).toEqual([1, 2, 3])
    p.start("a:1#0", 420)
    p.end("a:1#0", 430, false)
    expect([round(p, 530), round(p, 630)]).toEqual([1, 2])
  })

  it("while its calls are in flight, waits 10 probe periods before the first probe", () => {
    const p = stalled(10, 60, 20, 1)
    expect(p.picks(110, 1)).toEqual(["b:1#0"])
    const rounds: Array<number> = []
    for (let t = 210; t <= 1_110; t += H) rounds.push(round(p, t))
    expect(rounds).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
  })

  it("takes calls again at its next answer, and says so", () => {
    const p = avoided()
    p.start("a:1#0", 150)
    p.end("a:1#0", 160)
    expect(p.notes()).toEqual(["a:1#0: a call was answered; taking calls again"])
    expect(p.view("a:1#0")).toMatchObject({ hung: false, pickable: true, avoided: 1 })
    expect(p.picks(170, 2).sort()).toEqual(both)
    // No probe round is left over for it.
    expect(p.picks(210, 4).sort()).toEqual([...both, ...both].sort())
  })

  it("takes calls again when its connection is READY anew, with a clean count", () => {
    const p = avoided()
    Balancer.step(p.b, { _tag: "StateChanged", now: 150, slot: p.id("a:1#0"), state: "IDLE" })
    Balancer.step(p.b, { _tag: "StateChanged", now: 160, slot: p.id("a:1#0"), state: "READY" })
    expect(p.view("a:1#0")).toMatchObject({ hung: false, pickable: true })
    expect(p.picks(170, 2).sort()).toEqual(both)
    // Its earlier calls do not count: two new ones are not enough.
    p.start("a:1#0", 200)
    p.start("a:1#0", 250)
    p.answer("b:1#0", 260, 1)
    expect(p.picks(1_000, 2).sort()).toEqual(both)
    // A third: hung again; no probe left from before it was READY anew comes due at once.
    p.start("a:1#0", 1_010)
    p.answer("b:1#0", 1_020, 1)
    for (let i = 0; i < 3; i++) p.end("a:1#0", 1_050, false)
    expect(p.picks(1_100, 2)).toEqual(["b:1#0", "b:1#0"])
    expect(p.view("a:1#0")).toMatchObject({ hung: true, avoided: 2 })
    expect(p.picks(1_150, 2)).toEqual(["b:1#0", "b:1#0"])
  })

  it("gets no probe while ejected by health checks; one a probe period after it is back", () => {
    const p = avoided()
    Balancer.step(p.b, { _tag: "HealthChanged", now: 150, slot: p.id("a:1#0"), healthy: false })
    expect(round(p, 210)).toBe(0)
    Balancer.step(p.b, { _tag: "HealthChanged", now: 250, slot: p.id("a:1#0"), healthy: true })
    expect(p.view("a:1#0").hung).toBe(true)
    expect(round(p, 349)).toBe(0)
    expect(round(p, 350)).toBe(1)
  })

  it("ends a probe round early when the connection answers, or is ejected", () => {
    const p = avoided()
    expect([round(p, 210), round(p, 310)]).toEqual([1, 2])
    // A round of 3: one pick, then an answer: back, the round's 2 left are not its.
    expect(p.picks(410, 1)).toEqual(["a:1#0"])
    p.start("a:1#0", 410)
    p.end("a:1#0", 411)
    const after = p.picks(411, 4)
    expect(after.filter((key) => key === "a:1#0")).toHaveLength(2)
    // Hung again later; a round of 1 (it starts over at 1), then ejected during a round of 2.
    const q = avoided()
    expect([round(q, 210), round(q, 310)]).toEqual([1, 2])
    expect(q.picks(410, 1)).toEqual(["a:1#0"])
    Balancer.step(q.b, { _tag: "HealthChanged", now: 412, slot: q.id("a:1#0"), healthy: false })
    expect(q.picks(412, 3)).toEqual(["b:1#0", "b:1#0", "b:1#0"])
  })

  it("starts the probe rounds of a connection hung again at one call", () => {
    const p = avoided()
    expect([round(p, 210), round(p, 310), round(p, 410)]).toEqual([1, 2, 3])
    // Back at its answer, then hung again by the same rule: 3 calls unanswered, another address answering.
    p.start("a:1#0", 500)
    p.end("a:1#0", 501)
    p.start("a:1#0", 510)
    p.start("a:1#0", 520)
    p.start("a:1#0", 570)
    p.answer("b:1#0", 580, 1)
    // Ended unanswered before it is found hung: no call in flight, and nothing starts its rounds over.
    for (let i = 0; i < 3; i++) p.end("a:1#0", 600, false)
    expect(p.picks(620, 1)).toEqual(["b:1#0"])
    expect(p.view("a:1#0")).toMatchObject({ hung: true, avoided: 2 })
    // Its first probe comes a probe period after this avoidance, not at a time left from the first.
    expect(p.picks(650, 2)).toEqual(["b:1#0", "b:1#0"])
    expect([round(p, 720), round(p, 820)]).toEqual([1, 2])
  })

  /** a:1 and c:1 hung at 110 (3 calls each, none answered; b:1 answers), their calls then ended unanswered. */
  const twoAvoided = () => {
    const p = pool([{ address: "a:1", count: 1 }, { address: "b:1", count: 1 }, { address: "c:1", count: 1 }])
    for (const t of [0, 10, 60]) {
      p.start("a:1#0", t)
      p.start("c:1#0", t)
      if (t === 10) p.answer("b:1#0", 20, 1)
    }
    expect(p.picks(110, 3)).toEqual(["b:1#0", "b:1#0", "b:1#0"])
    for (let i = 0; i < 3; i++) {
      p.end("a:1#0", 111, false)
      p.end("c:1#0", 111, false)
    }
    return p
  }

  it("probes two hung connections in the order they were avoided", () => {
    const p = twoAvoided()
    const first = p.picks(210, 3)
    expect(first.slice(0, 2).sort()).toEqual(["a:1#0", "c:1#0"])
    expect(first[2]).toBe("b:1#0")
  })

  it("probes no connection that left the pool", () => {
    const p = twoAvoided()
    // a:1 is listed no more (1 of 3 READY addresses: removed at once).
    const out = Balancer.step(p.b, {
      _tag: "Addresses",
      now: 150,
      target: "pass:///x",
      endpoints: [{ address: "b:1", count: 1 }, { address: "c:1", count: 1 }],
      overCap: "fail",
      offset: 0
    })
    expect(out.remove).toEqual([p.id("a:1#0")])
    expect(p.picks(210, 3)).toEqual(["c:1#0", "b:1#0", "b:1#0"])
  })

  it("gives the rest of a round to no connection that answered during it", () => {
    const p = twoAvoided()
    p.picks(210, 3)
    // The rounds of 2 at 310: a:1 takes its first pick and answers; the next picks are c:1's round.
    const first = p.picks(310, 1)[0]!
    const other = first === "a:1#0" ? "c:1#0" : "a:1#0"
    p.start(first, 310)
    p.end(first, 311)
    expect(p.picks(311, 2)).toEqual([other, other])
  })
})
