/**
 * Where the retries go after a connection ends with calls in flight
 * (src/core/balancer/replacement.ts), for the changes StrykerJS found no
 * test noticing (`npm run test:mutation`): a fresh pick stays, the newest
 * fresh connection of the address, the pool's newest, "fresh" at exactly its
 * bound, the bound only moving later, the window lasting until every
 * replacement answered, and least_request's pending count moving with a
 * redirected pick.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Balancer from "../src/core/Balancer.js"

/**
 * Serving `list` (`address#count,...`); each connection's attempt begins
 * (CONNECTING) at the time `opened` gives and is READY at once; the clock
 * then stands at `at`.
 */
const pool = (list: string, opened: Record<string, number>, at: number, options: Partial<Balancer.Options> = {}, offset = 0) => {
  const b = Balancer.make({ startWaitMs: 0, suspicionMs: 0, ...options })
  const endpoints = list.split(",").map((entry) => {
    const [address, count] = entry.split("#")
    return { address: address!, count: Number(count ?? 1) }
  })
  const ids = new Map<string, number>()
  const keys = new Map<number, string>()
  for (const slot of Balancer.step(b, { _tag: "Addresses", now: 0, target: "pass:///x", endpoints, overCap: "fail", offset }).create) {
    ids.set(`${slot.address}#${slot.index}`, slot.id)
    keys.set(slot.id, `${slot.address}#${slot.index}`)
  }
  let now = 0
  const set = (key: string, state: Balancer.ConnectionState) => Balancer.step(b, { _tag: "StateChanged", now, slot: ids.get(key)!, state })
  for (const [key, t] of Object.entries(opened).sort((x, y) => x[1] - y[1])) {
    now = t
    set(key, "CONNECTING")
    set(key, "READY")
  }
  now = at
  Balancer.step(b, { _tag: "TimerFired", now })
  return {
    b,
    set,
    /** `key` ends (IDLE) carrying `calls` calls. */
    end: (key: string, calls: number) => {
      for (let i = 0; i < calls; i++) Balancer.callStarted(b, ids.get(key)!)
      return set(key, "IDLE")
    },
    picks: (n: number) => Array.from({ length: n }, () => {
      const id = Balancer.pick(b)
      return id < 0 ? null : keys.get(id)!
    }),
    advance: (ms: number) => {
      now += ms
      return Balancer.step(b, { _tag: "TimerFired", now })
    }
  }
}

describe("Balancer retries after a connection ends", () => {
  it("moves a stale pick to the newest fresh connection of its address, wherever it stands among the address's connections", () => {
    // b:1#0 lived 600 ms: fresh from 400. a:1#1 (450) is the newest fresh one; a:1#0 (400) and a:1#2 (420) are fresh too.
    const p = pool("a:1#4,b:1", { "a:1#0": 400, "a:1#1": 450, "a:1#2": 420, "a:1#3": 0, "b:1#0": 0 }, 600)
    const twin = pool("a:1#4,b:1", { "a:1#0": 400, "a:1#1": 450, "a:1#2": 420, "a:1#3": 0, "b:1#0": 0 }, 600, { replacementWaitMs: 0 })
    p.end("b:1#0", 4)
    twin.end("b:1#0", 4)
    const turns = twin.picks(4)
    expect(turns).toContain("a:1#3")
    expect(p.picks(4)).toEqual(turns.map((key) => (key === "a:1#3" ? "a:1#1" : key)))
  })

  it("places again first exactly the calls that waited, then lets picks go their own way while the window lasts", () => {
    const p = pool("a:1#2,b:1", { "a:1#0": 0, "a:1#1": 0, "b:1#0": 0 }, 500)
    p.end("a:1#0", 2)
    expect(p.picks(2)).toEqual([null, null]) // no fresh connection: both wait
    expect(new Set(p.picks(3))).toEqual(new Set(["a:1#1", "b:1#0"])) // later calls are not retries, and do not wait
    p.set("a:1#0", "CONNECTING")
    expect(p.set("a:1#0", "READY").publish).toEqual({ state: "READY", message: null })
    expect(p.picks(2)).toEqual(["a:1#0", "a:1#0"]) // the two that waited, on the replacement
    expect(new Set(p.picks(3))).toEqual(new Set(["a:1#0", "a:1#1", "b:1#0"])) // the window is still open
  })

  it("returns -1 without redirecting when the channel is not READY during a window", () => {
    const p = pool("a:1,b:1", { "a:1#0": 0, "b:1#0": 0 }, 500)
    p.end("a:1#0", 1)
    p.set("b:1#0", "TRANSIENT_FAILURE")
    p.set("a:1#0", "TRANSIENT_FAILURE")
    expect(Balancer.state(p.b)).toBe("TRANSIENT_FAILURE")
    expect(p.picks(2)).toEqual([null, null])
  })

  it("keeps a fresh pick (fresh from exactly a third of the ended life), else moves it to the newest fresh connection of its address", () => {
    // b:1#0 lived 600 ms: fresh means opened at 400 or later. a:1#0 (400) and a:1#1 (450) are, a:1#2 is not.
    const p = pool("a:1#3,b:1", { "a:1#0": 400, "a:1#1": 450, "a:1#2": 0, "b:1#0": 0 }, 600)
    const twin = pool("a:1#3,b:1", { "a:1#0": 400, "a:1#1": 450, "a:1#2": 0, "b:1#0": 0 }, 600, { replacementWaitMs: 0 })
    p.end("b:1#0", 3)
    twin.end("b:1#0", 3)
    const turns = twin.picks(3)
    expect(new Set(turns)).toEqual(new Set(["a:1#0", "a:1#1", "a:1#2"]))
    expect(p.picks(3)).toEqual(turns.map((key) => (key === "a:1#2" ? "a:1#1" : key)))
  })

  it("goes to the pool's newest connection (fresh at exactly the bound) when the address has none, not to an old sibling", () => {
    const p = pool("a:1#2,b:1,c:1", { "a:1#0": 0, "a:1#1": 0, "b:1#0": 0, "c:1#0": 400 }, 600)
    p.end("b:1#0", 3)
    expect(p.picks(3)).toEqual(["c:1#0", "c:1#0", "c:1#0"])
  })

  it("keeps the strictest bound of the ends in one turn: a longer life ending after a shorter one does not lower it", () => {
    // b:1#0 (opened 400, life 200): fresh from 533. a:1#0 (opened 0, life 600) would allow 400.
    const p = pool("a:1,b:1,c:1,d:1", { "a:1#0": 0, "b:1#0": 400, "c:1#0": 450, "d:1#0": 550 }, 600)
    p.end("b:1#0", 1)
    p.end("a:1#0", 1)
    expect(p.picks(2)).toEqual(["d:1#0", "d:1#0"])
  })

  it("lasts until every ended connection's replacement answered, not only the first", () => {
    const p = pool("a:1,b:1,c:1", { "a:1#0": 0, "b:1#0": 0, "c:1#0": 0 }, 500)
    p.end("a:1#0", 1)
    p.end("b:1#0", 1)
    p.set("a:1#0", "CONNECTING")
    expect(p.set("a:1#0", "READY").wakeAt).toBe(1_500) // b:1#0's replacement is still awaited
    p.set("b:1#0", "CONNECTING")
    expect(p.set("b:1#0", "READY").wakeAt).toBe(500)
  })

  it("moves a least_request pick's pending count to the connection it is redirected to, whatever the draws, until the turn ends", () => {
    // Offsets spread over 32 bits: they seed the draws, and nearby seeds draw alike at first.
    for (let i = 0; i < 12; i++) {
      const p = pool("a:1#2,b:1", { "a:1#0": 0, "a:1#1": 0, "b:1#0": 400 }, 500, { pickMode: "least_request" }, Math.imul(i, 0x9e3779b9) >>> 0)
      p.end("a:1#0", 2)
      expect(p.picks(2)).toEqual(["b:1#0", "b:1#0"])
      // Both picks count on b:1#0 until their calls start: the next draw prefers a:1#1.
      expect(p.picks(1)).toEqual(["a:1#1"])
      // The turn ends with no call started: no pick counts any more, so the next two picks take one each.
      Balancer.settlePicks(p.b)
      expect(new Set(p.picks(2))).toEqual(new Set(["a:1#1", "b:1#0"]))
    }
  })
})
