/**
 * The `ewma` pick mode's estimate, exactly, through the picks of a pool of
 * two connections (with two, both are drawn every time, so the pick is the
 * cheaper one, a tie goes either way): the penalty of a connection without
 * a sample (100 ms, raised by the age of its waiting call up to 4x), the
 * decay with `ewmaDecayMs`, the peak, the blend (at least 1/16), the cap of
 * one sample at 4x, and the unanswered end counted as the slowest sample.
 * For the changes StrykerJS (`npm run test:mutation`) found no test
 * noticing; the shares under load are property-tested in
 * property-tests/BalancerLatency.test.ts.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Balancer from "../src/core/Balancer.js"

/** a:1 and b:1, one connection each, READY at 0, `ewma` with a 1 s decay, the hung rule off. */
const pool = () => {
  const b = Balancer.make({ startWaitMs: 0, pickMode: "ewma", ewmaDecayMs: 1_000, hungAfterMs: 0 })
  const out = Balancer.step(b, {
    _tag: "Addresses",
    now: 0,
    target: "pass:///x",
    endpoints: [{ address: "a:1", count: 1 }, { address: "b:1", count: 1 }],
    overCap: "fail",
    offset: 7
  })
  const ids = new Map<string, number>()
  const keys = new Map<number, string>()
  for (const slot of out.create) {
    ids.set(slot.address, slot.id)
    keys.set(slot.id, slot.address)
    Balancer.step(b, { _tag: "StateChanged", now: 0, slot: slot.id, state: "READY" })
  }
  const id = (address: string) => ids.get(address)!
  return {
    start: (address: string, now: number, n = 1) => {
      for (let i = 0; i < n; i++) Balancer.callStarted(b, id(address), now)
    },
    end: (address: string, now: number, latencyMs?: number, answered = true) => Balancer.callEnded(b, id(address), now, answered, latencyMs),
    /** A call on `address` from `from` to `to`, answered, measured. */
    call: (address: string, from: number, to: number) => {
      Balancer.callStarted(b, id(address), from)
      Balancer.callEnded(b, id(address), to, true, to - from)
    },
    /** Where 16 picks at `now` go, each in its own turn (no pending pick left): the cheaper, or both on a tie. */
    choose: (now: number) => {
      const got = new Set<string>()
      for (let i = 0; i < 16; i++) {
        got.add(keys.get(Balancer.pick(b, now))!)
        Balancer.settlePicks(b)
      }
      return [...got].sort().join(",")
    }
  }
}

describe("Balancer ewma: a connection without a sample", () => {
  it("costs 100 ms before any sample, raised by the age of its first waiting call, up to 4x", () => {
    const p = pool()
    expect(p.choose(0)).toBe("a:1,b:1")
    p.start("a:1", 0)
    p.start("b:1", 30)
    // a: max(100, age 100), b: 100: a tie.
    expect(p.choose(100)).toBe("a:1,b:1")
    // a: 101 x 2 against b: 100 x 2.
    expect(p.choose(101)).toBe("b:1")
    // a: capped at 400 against b: 399.
    expect(p.choose(429)).toBe("b:1")
    expect(p.choose(430)).toBe("a:1,b:1")
    expect(p.choose(5_000)).toBe("a:1,b:1")
  })

  it("counts no age for calls that ended unanswered, nor once a call was answered", () => {
    const p = pool()
    // a: its one call ended unanswered (not measured): no call waits.
    p.start("a:1", 0)
    p.end("a:1", 10, undefined, false)
    expect(p.choose(300)).toBe("a:1,b:1")
    // A new pool. b: two calls, one answered (not measured): the other waits, but not since an answer.
    const q = pool()
    q.start("b:1", 0, 2)
    q.end("b:1", 10)
    q.start("a:1", 250)
    // b: 100 x 2, a: max(100, age 50) x 2.
    expect(q.choose(300)).toBe("a:1,b:1")
  })
})

describe("Balancer ewma: the estimate", () => {
  it("decays toward 0 with time constant ewmaDecayMs since the last sample", () => {
    const p = pool()
    // a: 10 ms at 10; the pool's typical latency is 10 ms, b's penalty.
    p.call("a:1", 0, 10)
    expect(p.choose(10)).toBe("a:1,b:1")
    expect(p.choose(11)).toBe("a:1")
    // With a call in flight a costs 2 x 10 e^(-dt/1000): above b's 10 until dt = 1000 ln 2 = 693.1 ms.
    p.start("a:1", 20)
    expect(p.choose(703)).toBe("b:1")
    expect(p.choose(704)).toBe("a:1")
  })

  it("takes a sample above the estimate at once (the peak), at most 4x the larger of the estimate and the typical latency", () => {
    const p = pool()
    p.call("a:1", 0, 10)
    // b's first call takes 1 s: it counts as 4 x 10 = 40.
    p.call("b:1", 0, 1_000)
    // a: 10 e^(-0.99) = 3.716; with 9 calls in flight 37.2 < 40, with 10 40.9 > 40.
    p.start("a:1", 1_000, 9)
    expect(p.choose(1_000)).toBe("a:1")
    p.start("a:1", 1_000)
    expect(p.choose(1_000)).toBe("b:1")
  })

  it("blends a sample below the estimate in with weight max(1 - e^(-dt/tau), 1/16)", () => {
    const p = pool()
    p.call("a:1", 0, 10)
    // dt = 10 ms: the time weight (0.00995) is below 1/16, so a = 10 x 15/16 + 2 / 16 = 9.5,
    // while the typical latency (b's penalty) blends by time alone: 9.92.
    p.call("a:1", 18, 20)
    expect(p.choose(20)).toBe("a:1")
    // A sample that replaced the estimate (2) would still win with a call in flight; 9.5 x 2 does not.
    p.start("a:1", 20)
    expect(p.choose(20)).toBe("b:1")
  })

  it("counts a call that ended unanswered as the slowest sample (4x), raising the estimate only", () => {
    const p = pool()
    p.call("a:1", 0, 10)
    // Failed fast after 2 ms: a = 4 x 10 = 40, against b's 10 x (calls + 1).
    p.start("a:1", 10)
    p.end("a:1", 12, 2, false)
    p.start("b:1", 12, 2)
    expect(p.choose(12)).toBe("b:1")
    p.start("b:1", 12, 2)
    expect(p.choose(12)).toBe("a:1")
  })

  it("before any sample, counts an unanswered end as 4 x 100 ms", () => {
    const p = pool()
    p.start("a:1", 0)
    p.end("a:1", 1, 1, false)
    // a = 400 against b: 100 x (calls + 1).
    p.start("b:1", 1, 2)
    expect(p.choose(1)).toBe("b:1")
    // 400 x 1 against 100 x 4: equal costs, fewer calls in flight wins.
    p.start("b:1", 1)
    expect(p.choose(1)).toBe("a:1")
    p.start("b:1", 1)
    expect(p.choose(1)).toBe("a:1")
  })

  it("does not count an unanswered end that only equals the capped penalty", () => {
    const p = pool()
    p.start("a:1", 0, 2)
    // At 400 the waiting call's age reaches 4 x 100: the slowest sample would not raise it.
    p.end("a:1", 400, 400, false)
    // Still the penalty at 1400 (400 x 2, not a decaying 400 e^-1 x 2 = 294), against b's 100 x 4.
    p.start("b:1", 1_400, 3)
    expect(p.choose(1_400)).toBe("b:1")
  })

  it("ignores a latency that is negative or not finite, and counts one of 0", () => {
    for (const latency of [-5, Number.NaN, Number.POSITIVE_INFINITY]) {
      const p = pool()
      p.start("a:1", 0)
      p.end("a:1", 10, latency)
      expect(p.choose(10), String(latency)).toBe("a:1,b:1")
    }
    const p = pool()
    p.start("a:1", 0)
    p.end("a:1", 10, 0)
    expect(p.choose(10)).toBe("a:1")
  })
})

describe("Balancer ewma: samples over time", () => {
  it("replaces a measured estimate with a slower sample (the peak), not a blend", () => {
    const p = pool()
    p.call("a:1", 0, 10)
    // 40 ms at 50 (4 x 10, not capped): a = 40; a blend would be 11.9. b: the typical 11.2 x 3.
    p.call("a:1", 10, 50)
    p.start("b:1", 50, 2)
    expect(p.choose(50)).toBe("b:1")
  })

  it("blends with the time weight when it is over 1/16, as the typical latency does", () => {
    const p = pool()
    p.call("a:1", 0, 10)
    // 2 ms at 1010, 1 s after the first: both a and the typical latency are 10 e^-1 + 2 (1 - e^-1).
    p.call("a:1", 1_008, 1_010)
    expect(p.choose(1_010)).toBe("a:1,b:1")
  })

  it("blends by adding the weighted sample", () => {
    const p = pool()
    p.call("a:1", 0, 10)
    p.call("a:1", 18, 20)
    // a = 9.5 with 14 calls in flight (142.5) against the typical 9.92 with 13 (138.9).
    p.start("a:1", 20, 14)
    p.start("b:1", 20, 13)
    expect(p.choose(20)).toBe("b:1")
  })

  it("forgets a connection's estimate when it is READY anew: the penalty until its next answer", () => {
    const b = Balancer.make({ startWaitMs: 0, pickMode: "ewma", ewmaDecayMs: 1_000, hungAfterMs: 0, suspicionMs: 0 })
    const out = Balancer.step(b, {
      _tag: "Addresses",
      now: 0,
      target: "pass:///x",
      endpoints: [{ address: "a:1", count: 1 }, { address: "b:1", count: 1 }],
      overCap: "fail",
      offset: 7
    })
    const [a, c] = out.create.map((slot) => slot.id)
    for (const id of [a!, c!]) Balancer.step(b, { _tag: "StateChanged", now: 0, slot: id, state: "READY" })
    const call = (id: number, from: number, to: number) => {
      Balancer.callStarted(b, id, from)
      Balancer.callEnded(b, id, to, true, to - from)
    }
    call(a!, 0, 10)
    call(c!, 0, 40)
    // a reconnects: its 10 ms (9.7 by now) is forgotten; it costs the typical 10.9. b: 40.
    Balancer.step(b, { _tag: "StateChanged", now: 40, slot: a!, state: "IDLE" })
    Balancer.step(b, { _tag: "StateChanged", now: 40, slot: a!, state: "READY" })
    for (let i = 0; i < 3; i++) Balancer.callStarted(b, a!, 40)
    // a: 10.9 x 4 = 43.6 > 40 (9.7 x 4 = 38.8 had it kept its estimate).
    for (let i = 0; i < 8; i++) {
      expect(Balancer.pick(b, 40)).toBe(c)
      Balancer.settlePicks(b)
    }
  })
})
