/**
 * The pool state machine, rule by rule: slots and updates, the balanced
 * start, steady failure, sibling suspicion, retries after a connection
 * ends, the cap, the mass-removal grace,
 * health, exitIdle, messages, trace lines and the cost of an event.
 */
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import * as Balancer from "../src/core/Balancer.js"
import type * as Expansion from "../src/core/Expansion.js"

type State = Balancer.ConnectionState

/** Drives one balancer with a clock the test moves, naming slots `address#index`. */
const drive = (options: Partial<Balancer.Options> = {}) => {
  const b = Balancer.make({ trace: true, ...options })
  let now = 0
  const ids = new Map<string, number>()
  const keys = new Map<number, string>()
  const outputs: Array<Balancer.Output> = []
  const record = (out: Balancer.Output) => {
    for (const slot of out.create) {
      ids.set(`${slot.address}#${slot.index}`, slot.id)
      keys.set(slot.id, `${slot.address}#${slot.index}`)
    }
    for (const id of out.remove) ids.delete(keys.get(id)!)
    outputs.push(out)
    return out
  }
  const idOf = (key: string) => {
    const id = ids.get(key)
    if (id === undefined) throw new Error(`no slot ${key}`)
    return id
  }
  const d = {
    b,
    outputs,
    id: idOf,
    get now() {
      return now
    },
    update: (endpoints: ReadonlyArray<Expansion.Weighted> | string, target = "etcd:///svc", overCap: "fail" | "keepFirst" = "keepFirst") =>
      record(Balancer.step(b, { _tag: "Addresses", now, target, endpoints: typeof endpoints === "string" ? parse(endpoints) : endpoints, overCap, offset: 0 })),
    set: (key: string, state: State, error?: string) =>
      record(Balancer.step(b, { _tag: "StateChanged", now, slot: idOf(key), state, error })),
    setAll: (state: State, error?: string) => [...ids.keys()].map((key) => d.set(key, state, error)),
    health: (key: string, healthy: boolean) => record(Balancer.step(b, { _tag: "HealthChanged", now, slot: idOf(key), healthy })),
    advance: (ms: number) => {
      now += ms
      return record(Balancer.step(b, { _tag: "TimerFired", now }))
    },
    callsWaiting: () => record(Balancer.step(b, { _tag: "CallsWaiting", now })),
    state: () => Balancer.state(b),
    picks: (n: number) => Array.from({ length: n }, () => {
      const id = Balancer.pick(b)
      return id < 0 ? null : keys.get(id)!
    }),
    count: (n: number) => {
      const counts: Record<string, number> = {}
      for (const key of d.picks(n)) counts[String(key)] = (counts[String(key)] ?? 0) + 1
      return counts
    },
    keysOf: (list: ReadonlyArray<number>) => list.map((id) => keys.get(id)),
    slots: () => Balancer.slots(b).map((s) => `${s.address}#${s.index}`)
  }
  return d
}

/** "a:1#2,b:2" -> weighted list */
const parse = (text: string): Array<Expansion.Weighted> =>
  text === "" ? [] : text.split(",").map((entry) => {
    const [address, count] = entry.split("#")
    return { address: address!, count: count === undefined ? 1 : Number(count) }
  })

describe("Balancer", () => {
  describe("slots and address updates", () => {
    it("creates one slot per connection in rotation order and asks each to connect", () => {
      const d = drive()
      const out = d.update("a:1#2,b:2")
      expect(out.create.map((s) => `${s.address}#${s.index}`)).toEqual(["a:1#0", "b:2#0", "a:1#1"])
      expect(d.keysOf(out.connect)).toEqual(["a:1#0", "b:2#0", "a:1#1"])
      expect(out.publish).toEqual({ state: "CONNECTING", message: null })
      expect(d.slots()).toEqual(["a:1#0", "b:2#0", "a:1#1"])
    })

    it("merges an address listed twice", () => {
      const d = drive()
      expect(d.update("a:1,a:1#2").create.length).toBe(3)
    })

    it("keeps unchanged slots, releases removed ones and creates new ones", () => {
      const d = drive()
      d.update("a:1#2,b:2")
      const before = { a0: d.b && d.slots() }
      expect(before.a0).toHaveLength(3)
      const out = d.update("a:1,c:3")
      expect(out.create.map((s) => `${s.address}#${s.index}`)).toEqual(["c:3#0"])
      expect(out.remove.length).toBe(2)
      expect(d.slots().sort()).toEqual(["a:1#0", "c:3#0"])
    })

    it("continues the round robin at the slot it would have picked next", () => {
      const d = drive({ startWaitMs: 0 })
      d.update("a:1,b:2,c:3")
      d.setAll("READY")
      expect(d.picks(1)).toEqual(["a:1#0"])
      d.update("d:4,a:1,b:2,c:3")
      d.set("d:4#0", "READY")
      expect(d.picks(3)).toEqual(["b:2#0", "c:3#0", "d:4#0"])
    })

    it("reports the resolver's error while it has no slots, and keeps serving the last list otherwise", () => {
      const d = drive()
      const out = Balancer.step(d.b, { _tag: "ResolverError", now: 0, message: "etcd unreachable" })
      expect(out.publish?.state).toBe("TRANSIENT_FAILURE")
      expect(out.publish?.message).toContain("etcd unreachable")
      d.update("a:1")
      d.set("a:1#0", "READY")
      expect(Balancer.step(d.b, { _tag: "ResolverError", now: 0, message: "again" }).publish).toBeUndefined()
      expect(d.state()).toBe("READY")
    })

    it.each([
      { name: "before any list: the resolver's message alone (it names the target)", lists: [], message: "anchor_round_robin: etcd:///svc#2: no answer from etcd" },
      { name: "after a refused list: still none accepted", lists: ["refused"], message: "anchor_round_robin: etcd:///svc#2: no answer from etcd" },
      { name: "after an empty list: the target it named", lists: ["empty"], message: "anchor_round_robin: pass:///: etcd:///svc#2: no answer from etcd" }
    ])("a resolver error with no slots reads, $name", ({ lists, message }) => {
      const d = drive({ maxConnections: 1 })
      for (const list of lists) {
        const endpoints = list === "refused" ? [{ address: "a:1", count: 2 }] : []
        Balancer.step(d.b, { _tag: "Addresses", now: 0, target: "pass:///", endpoints, overCap: "fail", offset: 0 })
      }
      const out = Balancer.step(d.b, { _tag: "ResolverError", now: 0, message: "etcd:///svc#2: no answer from etcd" })
      expect(Balancer.failureMessage(d.b)).toBe(message)
      expect(out.publish?.message ?? message).toBe(message)
      expect(message).not.toContain("unknown target")
    })

    it("fails naming the target and the resolver note when the list is empty", () => {
      const d = drive()
      const out = Balancer.step(d.b, { _tag: "Addresses", now: 0, target: "etcd:///svc#2", endpoints: [], overCap: "keepFirst", offset: 0, note: "no records" })
      expect(out.publish).toEqual({ state: "TRANSIENT_FAILURE", message: "anchor_round_robin: no addresses for etcd:///svc#2 (no records)" })
    })
  })

  describe("balanced start", () => {
    it.each([
      { name: "every first attempt READY", events: [["a:1#0", "READY"], ["a:1#1", "READY"], ["b:2#0", "READY"]], after: "READY" },
      { name: "one failed, the others READY", events: [["a:1#0", "READY"], ["b:2#0", "TRANSIENT_FAILURE"], ["a:1#1", "READY"]], after: "READY" },
      { name: "one still connecting", events: [["a:1#0", "READY"], ["b:2#0", "READY"], ["a:1#1", "CONNECTING"]], after: "CONNECTING" },
      { name: "every attempt failed", events: [["a:1#0", "TRANSIENT_FAILURE"], ["a:1#1", "TRANSIENT_FAILURE"], ["b:2#0", "TRANSIENT_FAILURE"]], after: "TRANSIENT_FAILURE" }
    ] as const)("$name -> $after", ({ events, after }) => {
      const d = drive()
      d.update("a:1#2,b:2")
      for (const [key, state] of events) d.set(key, state)
      expect(d.state()).toBe(after)
    })

    it("serves after the start wait even if an attempt never settles, and asks to be woken for it", () => {
      const d = drive({ startWaitMs: 250 })
      const out = d.update("a:1#3,b:2")
      expect(out.wakeAt).toBe(250)
      d.set("a:1#0", "READY")
      expect(d.state()).toBe("CONNECTING")
      expect(d.picks(1)).toEqual([null])
      expect(d.advance(249).publish).toBeUndefined()
      const late = d.advance(1)
      expect(late.publish?.state).toBe("READY")
      expect(late.wakeAt).toBeUndefined()
      expect(d.picks(2)).toEqual(["a:1#0", "a:1#0"])
    })

    it("splits a burst after the start by the counts (#3,#1: 300/100)", () => {
      const d = drive()
      d.update("a:1#3,b:2")
      d.set("a:1#0", "READY") // the first one up would take the whole burst without the rule
      expect(d.picks(1)).toEqual([null])
      for (const key of ["b:2#0", "a:1#1", "a:1#2"]) d.set(key, "READY")
      const counts = d.count(400)
      expect(counts["a:1#0"]! + counts["a:1#1"]! + counts["a:1#2"]!).toBe(300)
      expect(counts["b:2#0"]).toBe(100)
    })

    it("serves at the first READY with a start wait of 0; later slots never hold the channel back", () => {
      const d = drive({ startWaitMs: 0 })
      d.update("a:1,b:2")
      d.set("a:1#0", "READY")
      expect(d.state()).toBe("READY")
      const s = drive()
      s.update("a:1")
      s.set("a:1#0", "READY")
      s.update("a:1,c:3")
      expect(s.state()).toBe("READY")
    })
  })

  describe("steady failure", () => {
    it("stays TRANSIENT_FAILURE through reconnect attempts until a connection is READY", () => {
      const d = drive()
      d.update("a:1,b:2")
      d.setAll("TRANSIENT_FAILURE", "connect ECONNREFUSED")
      expect(d.state()).toBe("TRANSIENT_FAILURE")
      const quiet = [
        d.set("a:1#0", "IDLE"), // backoff over
        d.set("a:1#0", "CONNECTING"),
        d.set("b:2#0", "IDLE"),
        d.set("b:2#0", "CONNECTING"),
        d.set("a:1#0", "TRANSIENT_FAILURE", "connect ECONNREFUSED again")
      ]
      expect(quiet.map((out) => out.publish)).toEqual([undefined, undefined, undefined, undefined, undefined])
      expect(Balancer.failureMessage(d.b)).toBe(
        "anchor_round_robin: no ready connection to etcd:///svc (2 connections failing; last error: connect ECONNREFUSED again)"
      )
      expect(d.set("b:2#0", "READY").publish?.state).toBe("READY")
    })

    it("asks an IDLE connection to reconnect", () => {
      const d = drive()
      d.update("a:1")
      d.set("a:1#0", "READY")
      const out = d.set("a:1#0", "IDLE")
      expect(d.keysOf(out.connect)).toEqual(["a:1#0"])
      expect(out.reresolve).toBe(true)
    })

    it("goes CONNECTING (not TRANSIENT_FAILURE) when a READY connection drops and reconnects", () => {
      const d = drive()
      d.update("a:1")
      d.set("a:1#0", "READY")
      d.set("a:1#0", "IDLE")
      expect(d.state()).toBe("CONNECTING")
      d.set("a:1#0", "TRANSIENT_FAILURE")
      expect(d.state()).toBe("TRANSIENT_FAILURE")
    })
  })

  describe("sibling suspicion", () => {
    const up = () => {
      const d = drive()
      d.update("a:1#2,b:2")
      d.setAll("READY")
      return d
    }

    it("skips the siblings of a dropped connection until its reconnect is READY", () => {
      const d = up()
      const out = d.set("a:1#0", "IDLE")
      expect(out.wakeAt).toBe(d.now + Balancer.SUSPICION_MS)
      expect(new Set(d.picks(6))).toEqual(new Set(["b:2#0"]))
      d.set("a:1#0", "READY")
      expect(d.count(30)).toEqual({ "a:1#0": 10, "b:2#0": 10, "a:1#1": 10 })
    })

    it("lapses after the suspicion time when the reconnect keeps failing", () => {
      const d = up()
      d.set("a:1#0", "IDLE")
      d.set("a:1#0", "TRANSIENT_FAILURE")
      d.advance(999)
      expect(new Set(d.picks(6))).toEqual(new Set(["b:2#0"]))
      d.advance(1)
      expect(new Set(d.picks(6))).toEqual(new Set(["a:1#1", "b:2#0"]))
    })

    it("falls back to the suspect connections when nothing else is ready", () => {
      const d = drive()
      d.update("a:1#3")
      d.setAll("READY")
      d.set("a:1#0", "IDLE")
      expect(d.state()).toBe("READY")
      expect(new Set(d.picks(6))).toEqual(new Set(["a:1#1", "a:1#2"]))
    })
  })

  describe("retries after a connection ends", () => {
    /**
     * Serving `list`; each connection's attempt begins (CONNECTING) at the
     * time `opened` gives and is READY at once; the clock then stands at `at`.
     */
    const pool = (list: string, opened: Record<string, number>, at: number, options: Partial<Balancer.Options> = {}) => {
      const d = drive({ startWaitMs: 0, ...options })
      d.update(list)
      for (const [key, t] of Object.entries(opened).sort((x, y) => x[1] - y[1])) {
        d.advance(t - d.now)
        d.set(key, "CONNECTING")
        d.set(key, "READY")
      }
      d.advance(at - d.now)
      return d
    }
    /** `n` calls started on `key`, as grpc-js reports them after picks of it. */
    const carry = (d: ReturnType<typeof drive>, key: string, n: number) => {
      for (let i = 0; i < n; i++) Balancer.callStarted(d.b, d.id(key))
    }

    it("places as many picks as the ended connection carried calls on connections opened at most a third of its life ago", () => {
      // c:3#0 lived 600 ms: fresh means opened at 400 or later. a:1#1 and b:2#0 are; a:1#0 is not.
      const opened = { "a:1#0": 0, "a:1#1": 400, "b:2#0": 450, "c:3#0": 0 }
      const d = pool("a:1#2,b:2,c:3", opened, 600)
      // The same pool where nothing is redirected: the picks each turn would give.
      const twin = pool("a:1#2,b:2,c:3", opened, 600, { replacementWaitMs: 0 })
      carry(d, "c:3#0", 4)
      carry(twin, "c:3#0", 4)
      const out = d.set("c:3#0", "IDLE")
      twin.set("c:3#0", "IDLE")
      expect(out.trace).toContain(
        "c:3#0 ended after 600 ms with 4 call(s) in flight: the next 4 pick(s) go to connections opened at most 200 ms ago (or wait for one) until its replacement answers"
      )
      const turns = twin.picks(6)
      expect(turns).toContain("a:1#0")
      // a:1#0's turns stay with its address, on its fresh connection; the others are fresh already.
      expect(d.picks(4)).toEqual(turns.slice(0, 4).map((key) => (key === "a:1#0" ? "a:1#1" : key)))
      // Then the round robin as before.
      expect(d.picks(2)).toEqual(turns.slice(4))
    })

    it("goes to the pool's newest connection when the pick's address has no fresh one", () => {
      const d = pool("a:1#2,b:2,c:3", { "a:1#0": 0, "a:1#1": 0, "b:2#0": 0, "c:3#0": 400 }, 500)
      carry(d, "a:1#0", 3)
      d.set("a:1#0", "IDLE")
      expect(d.picks(3)).toEqual(["c:3#0", "c:3#0", "c:3#0"])
      expect(new Set(d.picks(4))).toEqual(new Set(["b:2#0", "c:3#0"])) // a:1#1 is suspect (sibling suspicion)
    })

    it("makes the retries wait when no connection is fresh, places them on the replacement, and ends at the next wake-up", () => {
      const d = pool("a:1#2,b:2", { "a:1#0": 0, "a:1#1": 0, "b:2#0": 0 }, 500)
      carry(d, "a:1#0", 2)
      d.set("a:1#0", "IDLE")
      expect(d.state()).toBe("READY")
      expect(d.picks(2)).toEqual([null, null])
      // Later calls are not retries: they go their own way (a:1#1 is suspect).
      expect(d.picks(2)).toEqual(["b:2#0", "b:2#0"])
      d.set("a:1#0", "CONNECTING")
      d.advance(3)
      const ready = d.set("a:1#0", "READY")
      // Published again (the state is unchanged): grpc-js picks the 2 queued calls again, first.
      expect(ready.publish).toEqual({ state: "READY", message: null })
      expect(ready.wakeAt).toBe(d.now)
      expect(d.picks(2)).toEqual(["a:1#0", "a:1#0"])
      const end = d.advance(0)
      expect(end.trace).toContain("retries no longer redirected (every replacement answered; 0 pick(s) of the turn not redirected)")
      expect(end.publish).toBeUndefined() // nothing waits
      expect(d.count(30)).toEqual({ "a:1#0": 10, "a:1#1": 10, "b:2#0": 10 })
    })

    it("redirects only the picks of the turn the connection ended in (settlePicks ends it)", () => {
      const d = pool("a:1#2,b:2,c:3", { "a:1#0": 0, "a:1#1": 0, "b:2#0": 0, "c:3#0": 400 }, 500)
      carry(d, "a:1#0", 3)
      d.set("a:1#0", "IDLE")
      expect(d.picks(1)).toEqual(["c:3#0"])
      Balancer.settlePicks(d.b)
      expect(new Set(d.picks(4))).toEqual(new Set(["b:2#0", "c:3#0"]))
    })

    it("ends when the replacement fails, placing the waiting calls as the suspicion rules say", () => {
      const d = pool("a:1#2,b:2", { "a:1#0": 0, "a:1#1": 0, "b:2#0": 0 }, 500)
      carry(d, "a:1#0", 1)
      d.set("a:1#0", "IDLE")
      expect(d.picks(1)).toEqual([null])
      d.set("a:1#0", "CONNECTING")
      expect(d.set("a:1#0", "TRANSIENT_FAILURE", "connect ECONNREFUSED").publish).toBeUndefined()
      const end = d.advance(0)
      expect(end.publish).toEqual({ state: "READY", message: null })
      // The queued call is picked again, as any other: a:1#1 is still suspect.
      expect(d.picks(4)).toEqual(["b:2#0", "b:2#0", "b:2#0", "b:2#0"])
    })

    it("ends after replacementWaitMs without an answer", () => {
      const d = pool("a:1,b:2", { "a:1#0": 0, "b:2#0": 0 }, 500)
      carry(d, "a:1#0", 1)
      expect(d.set("a:1#0", "IDLE").wakeAt).toBe(500 + Balancer.DEFAULT_REPLACEMENT_WAIT_MS)
      expect(d.picks(1)).toEqual([null])
      d.set("a:1#0", "CONNECTING")
      expect(d.advance(999).publish).toBeUndefined()
      const end = d.advance(1)
      expect(end.publish).toEqual({ state: "READY", message: null })
      expect(end.trace).toContain("retries no longer redirected (no answer within 1000 ms; 0 pick(s) of the turn not redirected)")
      expect(d.picks(2)).toEqual(["b:2#0", "b:2#0"])
    })

    it("counts a connection's age from the start of its attempt: a slow connect is not fresh", () => {
      const d = pool("a:1,b:2", { "a:1#0": 0 }, 100)
      d.set("b:2#0", "CONNECTING") // at 100
      d.advance(300)
      d.set("b:2#0", "READY") // at 400, opened at 100: before 333
      d.advance(100)
      carry(d, "a:1#0", 1)
      d.set("a:1#0", "IDLE")
      expect(d.picks(1)).toEqual([null])
    })

    it.each([
      { name: "without calls in flight", calls: 0, options: {} },
      { name: "with replacementWaitMs 0", calls: 3, options: { replacementWaitMs: 0 } }
    ])("redirects nothing $name", ({ calls, options }) => {
      const d = pool("a:1,b:2", { "a:1#0": 0, "b:2#0": 0 }, 500, options)
      carry(d, "a:1#0", calls)
      d.set("a:1#0", "IDLE")
      expect(d.picks(3)).toEqual(["b:2#0", "b:2#0", "b:2#0"])
    })

    it("moves a least_request pick's pending count to the connection it is redirected to", () => {
      const d = pool("a:1#2,b:2", { "a:1#0": 0, "a:1#1": 0, "b:2#0": 400 }, 500, { pickMode: "least_request", suspicionMs: 0 })
      carry(d, "a:1#0", 2)
      d.set("a:1#0", "IDLE")
      expect(d.picks(2)).toEqual(["b:2#0", "b:2#0"])
      // Both picks count on b:2#0 until their calls start: the next draw prefers a:1#1.
      expect(d.picks(1)).toEqual(["a:1#1"])
    })
  })

  describe("connection cap", () => {
    it("refuses a list over the cap when asked to fail, naming the numbers and the option", () => {
      const d = drive({ maxConnections: 4 })
      const out = d.update("a:1#3,b:2#2", "pass:///a:1#3,b:2#2", "fail")
      expect(out.create).toEqual([])
      expect(out.publish?.state).toBe("TRANSIENT_FAILURE")
      expect(out.publish?.message).toBe(
        "anchor_round_robin: pass:///a:1#3,b:2#2: the target asks for 5 connections, over this channel's cap of 4: lower the #N counts or the number of addresses, or raise the channel option grpc_anchor.max_connections"
      )
    })

    it("keeps whole addresses in address order while they fit, and traces the choice", () => {
      const d = drive({ maxConnections: 5 })
      const out = d.update("d:4#2,b:2#2,c:3#2,a:1#2")
      expect(new Set(out.create.map((s) => s.address))).toEqual(new Set(["a:1", "b:2"]))
      expect(out.trace.some((line) => line.includes("left out 2: c:3,d:4"))).toBe(true)
    })

    it.each([
      { endpoints: "a:1#2,b:2#2", max: 4, result: 4 },
      { endpoints: "a:1#2,a:1#3", max: 4, result: "5 connections" }
    ])("checkCap($endpoints, $max)", ({ endpoints, max, result }) => {
      const checked = Balancer.checkCap(parse(endpoints), max)
      if (typeof result === "number") expect(checked).toEqual(Result.succeed(result))
      else {
        expect(Result.isFailure(checked) && checked.failure.message).toContain(result)
        expect(() => Balancer.checkCapUnsafe(parse(endpoints), max)).toThrow(result)
      }
    })

    it("changes nothing when it refuses a list: target, note and pick mode stay the last list's", () => {
      const d = drive({ maxConnections: 4 })
      d.update("a:1", "pass:///a:1", "fail")
      d.set("a:1#0", "TRANSIENT_FAILURE")
      const out = Balancer.step(d.b, { _tag: "Addresses", now: 0, target: "pass:///b:2#5", endpoints: parse("b:2#5"), overCap: "fail", offset: 0, note: "n", pick: "least_request" })
      expect(out.create).toEqual([])
      expect(out.trace.some((line) => line.startsWith("refused"))).toBe(true)
      expect(out.trace.some((line) => line.startsWith("pick mode"))).toBe(false)
      expect(Balancer.pickMode(d.b)).toBe("round_robin")
      expect(Balancer.failureMessage(d.b)).toContain("no ready connection to pass:///a:1 ")
    })

    it("has a default cap of 4096", () => {
      expect(Result.isSuccess(Balancer.checkCap([{ address: "a:1", count: 4096 }]))).toBe(true)
      expect(Result.isFailure(Balancer.checkCap([{ address: "a:1", count: 4097 }]))).toBe(true)
    })
  })

  describe("mass removal grace", () => {
    const three = () => {
      const d = drive({ removalGraceMs: 30_000 })
      d.update("a:1,b:2,c:3")
      d.setAll("READY")
      return d
    }

    it.each([
      { name: "all READY addresses removed", next: "", kept: ["a:1#0", "b:2#0", "c:3#0"] },
      { name: "2 of 3 removed", next: "a:1", kept: ["a:1#0", "b:2#0", "c:3#0"] },
      { name: "1 of 3 removed (a deregistration)", next: "a:1,b:2", kept: ["a:1#0", "b:2#0"] },
      { name: "all replaced by new addresses", next: "d:4,e:5", kept: ["a:1#0", "b:2#0", "c:3#0", "d:4#0", "e:5#0"] }
    ])("$name", ({ next, kept }) => {
      const d = three()
      d.update(next)
      expect(d.slots().sort()).toEqual(kept)
      expect(d.state()).toBe("READY")
    })

    it("drops the kept addresses after the grace period", () => {
      const d = three()
      const out = d.update("")
      expect(out.wakeAt).toBe(30_000)
      expect(out.trace.some((line) => line.startsWith("mass removal"))).toBe(true)
      expect(new Set(d.picks(3))).toEqual(new Set(["a:1#0", "b:2#0", "c:3#0"]))
      d.advance(29_999)
      expect(d.slots()).toHaveLength(3)
      const end = d.advance(1)
      expect(end.remove).toHaveLength(3)
      expect(end.publish?.state).toBe("TRANSIENT_FAILURE")
      expect(d.picks(1)).toEqual([null])
    })

    it.each([
      { name: "no room left: all released", max: 4, first: "a:1#2,b:2#2", next: "c:3#2,d:4#2", kept: ["c:3#0", "c:3#1", "d:4#0", "d:4#1"], released: "a:1,b:2" },
      { name: "room for some: kept in address order", max: 5, first: "a:1,b:2,c:3", next: "d:4#2,e:5#2", kept: ["a:1#0", "d:4#0", "d:4#1", "e:5#0", "e:5#1"], released: "b:2,c:3" }
    ])("never takes the pool over its cap: the list first, then the kept addresses that fit ($name)", ({ max, first, next, kept, released }) => {
      const d = drive({ maxConnections: max })
      d.update(first)
      d.setAll("READY")
      const out = d.update(next)
      expect(d.slots().sort()).toEqual(kept)
      expect(out.trace).toContain(`over the cap of ${max} connections with the addresses kept by the grace: released now ${released}`)
      d.advance(30_000)
      expect(d.slots().length).toBeLessThanOrEqual(max)
    })

    it("keeps an address listed again during the grace period for good", () => {
      const d = three()
      d.update("")
      d.update("a:1,b:2,c:3")
      d.advance(40_000)
      expect(d.slots()).toHaveLength(3)
    })

    it("removes addresses without a READY connection at once", () => {
      const d = drive()
      d.update("a:1,b:2,c:3")
      d.setAll("TRANSIENT_FAILURE")
      d.update("")
      expect(d.slots()).toEqual([])
    })

    it("is off with a grace of 0", () => {
      const d = drive({ removalGraceMs: 0 })
      d.update("a:1,b:2")
      d.setAll("READY")
      d.update("")
      expect(d.slots()).toEqual([])
    })
  })

  describe("health, exitIdle, trace", () => {
    it("skips an unhealthy (ejected) connection and counts it as failed", () => {
      const d = drive()
      d.update("a:1,b:2")
      d.setAll("READY")
      d.health("a:1#0", false)
      expect(new Set(d.picks(4))).toEqual(new Set(["b:2#0"]))
      d.health("b:2#0", false)
      expect(d.state()).toBe("TRANSIENT_FAILURE")
      d.health("a:1#0", true)
      expect(d.state()).toBe("READY")
    })

    it("asks a new or IDLE connection to connect at once, so the channel's exitIdle has nothing to do", () => {
      const d = drive()
      expect(d.keysOf(d.update("a:1,b:2").connect)).toEqual(["a:1#0", "b:2#0"])
      d.setAll("CONNECTING")
      expect(d.keysOf(d.set("b:2#0", "IDLE").connect)).toEqual(["b:2#0"])
      expect(d.keysOf(d.set("b:2#0", "IDLE").connect)).toEqual(["b:2#0"])
    })

    it("writes trace lines only when asked", () => {
      const quiet = Balancer.make()
      expect(Balancer.step(quiet, { _tag: "Addresses", now: 0, target: "t", endpoints: parse("a:1"), overCap: "fail", offset: 0 }).trace).toEqual([])
      const d = drive()
      const out = d.update("a:1")
      expect(out.trace).toEqual(["create a:1#0", "channel IDLE -> CONNECTING"])
      expect(d.set("a:1#0", "READY").trace).toEqual(["a:1#0 IDLE -> READY", "start: every first connection attempt settled; serving", "channel CONNECTING -> READY"])
    })
  })

  describe("policy config", () => {
    it.each([
      { input: undefined, ok: {} },
      { input: {}, ok: {} },
      { input: { connectionsPerAddress: 3, startWaitMs: 0, maxConnections: 10, removalGraceMs: 0 }, ok: { connectionsPerAddress: 3, startWaitMs: 0, maxConnections: 10, removalGraceMs: 0 } },
      { input: { connectionsPerAddress: 0 }, error: "between 1 and 256" },
      { input: { connectionsPerAddress: 1.5 }, error: "integer" },
      { input: { maxConnections: "10" }, error: "maxConnections" },
      { input: 7, error: "anchor_round_robin config 7 is not valid" },
      { input: { pickMode: "least_request", maxStreamsPerConnection: 4, shrinkIdleMs: 500, connectionsPerAddress: 2, maxConnectionsPerAddress: 8 }, ok: { pickMode: "least_request", maxStreamsPerConnection: 4, shrinkIdleMs: 500, connectionsPerAddress: 2, maxConnectionsPerAddress: 8 } },
      { input: { pickMode: "random" }, error: "pickMode" },
      { input: { maxStreamsPerConnection: 0 }, error: "maxStreamsPerConnection" },
      { input: { pickMode: "ewma", hungAfterMs: 0, ewmaDecayMs: 2_000 }, ok: { pickMode: "ewma", hungAfterMs: 0, ewmaDecayMs: 2_000 } },
      { input: { hungAfterMs: -1 }, error: "hungAfterMs" },
      { input: { ewmaDecayMs: 0 }, error: "ewmaDecayMs" },
      { input: { connectionsPerAddress: 4, maxConnectionsPerAddress: 2 }, error: "maxConnectionsPerAddress (2) is below connectionsPerAddress (4)" }
    ])("decodeConfig($input)", ({ input, ok, error }) => {
      const result = Balancer.decodeConfig(input)
      if (ok !== undefined) expect(result).toEqual(Result.succeed(ok))
      else expect(Result.isFailure(result) && result.failure.message).toContain(error)
    })

    it("rejects out-of-range options as a defect", () => {
      expect(() => Balancer.make({ maxConnections: 0 })).toThrow(/maxConnections/)
      expect(() => Balancer.make({ hungAfterMs: -1 })).toThrow(/hungAfterMs/)
      expect(() => Balancer.make({ ewmaDecayMs: 0 })).toThrow(/ewmaDecayMs/)
      // The settings' own ranges (SETTINGS): whole numbers, at most their maximum.
      expect(() => Balancer.make({ hungAfterMs: 1.5 })).toThrow(/hungAfterMs/)
      expect(() => Balancer.make({ maxConnections: 2_000_000 })).toThrow(/maxConnections/)
      expect(() => Balancer.make({ startWaitMs: 60_001 })).toThrow(/startWaitMs/)
    })
  })

  describe("least_request", () => {
    /** Picks `n` calls, each started and (when `end`) ended at once; returns picks per address. */
    const run = (d: ReturnType<typeof drive>, n: number, end: (key: string) => boolean) => {
      const counts: Record<string, number> = {}
      for (let i = 0; i < n; i++) {
        const id = Balancer.pick(d.b)
        expect(id).toBeGreaterThan(0)
        const key = d.keysOf([id])[0]!
        Balancer.callStarted(d.b, id)
        if (end(key)) Balancer.callEnded(d.b, id)
        const address = key.split("#")[0]!
        counts[address] = (counts[address] ?? 0) + 1
      }
      return counts
    }

    it("is chosen by the address list, else by the option", () => {
      const d = drive({ startWaitMs: 0 })
      expect(Balancer.pickMode(d.b)).toBe("round_robin")
      Balancer.step(d.b, { _tag: "Addresses", now: 0, target: "pass:///a:1", endpoints: parse("a:1"), overCap: "fail", offset: 0, pick: "least_request" })
      expect(Balancer.pickMode(d.b)).toBe("least_request")
      expect(Balancer.pickMode(Balancer.make({ pickMode: "least_request" }))).toBe("least_request")
    })

    it("never picks a slot that is not ready, and picks the one with fewer calls in flight", () => {
      const d = drive({ startWaitMs: 0, pickMode: "least_request" })
      d.update("a:1,b:2,c:3")
      d.set("a:1#0", "READY")
      d.set("b:2#0", "READY")
      d.set("c:3#0", "TRANSIENT_FAILURE")
      // a:1 keeps every call it gets; b:2 ends them at once: b:2 wins every comparison after the first.
      const counts = run(d, 100, (key) => key.startsWith("b:2"))
      expect(counts["c:3"]).toBeUndefined()
      expect(counts["a:1"]).toBeLessThanOrEqual(1)
      expect(Balancer.slots(d.b).find((s) => s.address === "a:1")!.inFlight).toBe(counts["a:1"] ?? 0)
    })

    it("gives shares that follow the counts when calls end at once", () => {
      const d = drive({ startWaitMs: 0, pickMode: "least_request" })
      d.update("a:1#3,b:2#1")
      d.setAll("READY")
      const counts = run(d, 8_000, () => true)
      // Uniform draws over 4 connections: a:1 expects 6,000; 5 standard deviations (~194) of a binomial.
      expect(Math.abs(counts["a:1"]! - 6_000)).toBeLessThan(200)
    })

    it("counts a pick as in flight until its call starts or the picks are settled, so a burst spreads", () => {
      const d = drive({ startWaitMs: 0, pickMode: "least_request" })
      d.update("a:1,b:2")
      d.setAll("READY")
      // Two slots: every pick compares both. No call has started yet, only the picks count.
      const burst = d.picks(10)
      expect(burst.filter((k) => k === "a:1#0")).toHaveLength(5)
      Balancer.settlePicks(d.b)
      // A started call replaces its pick: a:1 holds one call, so the next picks go to b:2 first.
      const a = Balancer.slots(d.b).find((s) => s.address === "a:1")!.id
      Balancer.callStarted(d.b, a)
      expect(d.picks(1)).toEqual(["b:2#0"])
    })

    it("settles the picks without allocating: the pending list is reused", () => {
      const d = drive({ startWaitMs: 0, pickMode: "least_request" })
      d.update("a:1,b:2")
      d.setAll("READY")
      // White box: the list is internal; settlePicks runs once per event-loop turn.
      const internal = d.b as unknown as { readonly pendingSlots: ReadonlyArray<unknown> }
      const list = internal.pendingSlots
      d.picks(4)
      expect(list).toHaveLength(4)
      Balancer.settlePicks(d.b)
      expect(internal.pendingSlots).toBe(list)
      expect(list).toHaveLength(0)
      expect(d.picks(2).sort()).toEqual(["a:1#0", "b:2#0"])
    })

    it("never counts below zero, and forgets a removed slot's calls", () => {
      const d = drive({ startWaitMs: 0, pickMode: "least_request" })
      d.update("a:1#2")
      d.setAll("READY")
      const inFlight = () => Balancer.slots(d.b).reduce((n, s) => n + s.inFlight, 0)
      const id = Balancer.pick(d.b)
      const key = d.keysOf([id])[0]
      Balancer.callEnded(d.b, id) // never started: ignored
      expect(inFlight()).toBe(0)
      Balancer.callStarted(d.b, id)
      Balancer.callStarted(d.b, id)
      expect(inFlight()).toBe(2)
      d.update("a:1#1") // releases a:1#1
      expect(inFlight()).toBe(key === "a:1#0" ? 2 : 0)
      d.update("a:1#2") // a new a:1#1 starts at 0
      expect(inFlight()).toBe(key === "a:1#0" ? 2 : 0)
    })
  })

  describe("adaptive counts", () => {
    const adaptive = (min: number, max: number, options: Partial<Balancer.Options> = {}) => {
      const d = drive({ startWaitMs: 0, maxStreamsPerConnection: 2, shrinkIdleMs: 1_000, ...options })
      d.update([{ address: "a:1", count: min, maxCount: max }])
      d.setAll("READY")
      return d
    }
    /** Starts `n` calls (never ended); returns whether any asked to grow. */
    const start = (d: ReturnType<typeof drive>, n: number) => {
      let asked = false
      const ids: Array<number> = []
      for (let i = 0; i < n; i++) {
        const id = Balancer.pick(d.b)
        ids.push(id)
        if (Balancer.callStarted(d.b, id)) asked = true
      }
      return { asked, ids }
    }
    const grow = (d: ReturnType<typeof drive>) => d.callsWaiting()

    it("starts with the minimum and opens one more connection when every connection is full and a call waits", () => {
      const d = adaptive(1, 3)
      expect(d.slots()).toEqual(["a:1#0"])
      expect(start(d, 2).asked).toBe(false) // full, nobody waits
      expect(start(d, 1).asked).toBe(true)
      const out = grow(d)
      expect(out.create.map((s) => `${s.address}#${s.index}`)).toEqual(["a:1#1"])
      expect(d.keysOf(out.connect)).toEqual(["a:1#1"])
      expect(out.trace.join("\n")).toContain("opening connection 2 of at most 3")
    })

    it("opens one connection at a time: not again before the new one carries calls", () => {
      const d = adaptive(1, 3)
      start(d, 3)
      const first = grow(d)
      expect(first.create).toHaveLength(1)
      // The new connection is not READY: calls keep going to a:1#0, nothing more opens.
      expect(start(d, 5).asked).toBe(false)
      expect(grow(d).create).toHaveLength(0)
      d.set("a:1#1", "READY")
      start(d, 4) // a:1#1 fills up too
      expect(grow(d).create.map((s) => s.index)).toEqual([2])
      d.set("a:1#2", "READY")
      start(d, 20)
      expect(grow(d).create).toHaveLength(0) // at the maximum
      expect(d.slots()).toHaveLength(3)
    })

    it("does not grow a fixed count, or past the channel's cap", () => {
      const fixed = drive({ startWaitMs: 0, maxStreamsPerConnection: 1 })
      fixed.update("a:1")
      fixed.setAll("READY")
      expect(start(fixed, 5).asked).toBe(false)
      const capped = adaptive(1, 4, { maxConnections: 1 })
      expect(start(capped, 5).asked).toBe(false)
    })

    it("shrinks after a period without being busy, one connection per period, never below the minimum", () => {
      const d = adaptive(1, 3)
      const { ids } = start(d, 3)
      grow(d)
      d.set("a:1#1", "READY")
      expect(d.slots()).toHaveLength(2)
      // Still busy in the first period (3 in flight > 1 connection's 2).
      expect(d.advance(1_000).remove).toHaveLength(0)
      for (const id of ids) Balancer.callEnded(d.b, id)
      // Busy flag cleared at the check; the next period is quiet.
      const out = d.advance(1_000)
      expect(out.remove).toHaveLength(1)
      expect(out.trace.join("\n")).toContain("closing connection 2")
      expect(d.slots()).toEqual(["a:1#0"])
      expect(d.advance(5_000).remove).toHaveLength(0)
    })

    it("keeps a grown count when the same list comes again, within the new range", () => {
      const d = adaptive(1, 4)
      start(d, 3)
      grow(d)
      expect(d.update([{ address: "a:1", count: 1, maxCount: 4 }]).remove).toHaveLength(0)
      expect(d.slots()).toHaveLength(2)
      d.update([{ address: "a:1", count: 1 }])
      expect(d.slots()).toHaveLength(1)
    })

    it("rejects a maximum below the count as a defect", () => {
      const d = drive()
      expect(() => d.update([{ address: "a:1", count: 3, maxCount: 2 }])).toThrow(/maxCount/)
    })
  })

  describe("cost", () => {
    /** Average work units per connectivity event on a pool of `addresses` addresses #`count`, all READY. */
    const workPerEvent = (addresses: number, count: number) => {
      const d = drive({ trace: false })
      d.update(Array.from({ length: addresses }, (_, i) => ({ address: `10.0.${i >> 8}.${i & 255}:1`, count })))
      d.setAll("READY")
      const keys = d.slots()
      const before = Balancer.work(d.b)
      const events = 2_000
      for (let i = 0; i < events; i++) {
        const key = keys[(i * 7919) % keys.length]!
        d.set(key, i % 2 === 0 ? "IDLE" : "READY")
        d.picks(1)
      }
      return (Balancer.work(d.b) - before) / events
    }

    it("does not grow with the number of connections", () => {
      const small = workPerEvent(10, 1)
      const large = workPerEvent(10_000, 1)
      expect(large).toBeLessThanOrEqual(2 * small + 4)
    })

    it("is bounded by the address's own count", () => {
      expect(workPerEvent(4, 256)).toBeLessThanOrEqual(2 * 256 + 16)
    })

    it("does not grow with the number of pending 30 s deadlines (one queue per deadline kind)", () => {
      /** Work of a drop (a suspicion deadline at +1 s) and a reconnect of s:1#0, with `kept` addresses kept by the grace (deadlines at +30 s). */
      const workPerDrop = (kept: number) => {
        const d = drive({ trace: false, removalGraceMs: 30_000, removalThreshold: 0.1 })
        d.update([{ address: "s:1", count: 2 }, ...Array.from({ length: kept }, (_, i) => ({ address: `10.1.${i >> 8}.${i & 255}:1`, count: 1 }))])
        d.setAll("READY")
        expect(d.update("s:1#2").wakeAt).toBe(30_000)
        expect(d.slots().length).toBe(2 + kept)
        const before = Balancer.work(d.b)
        const events = 50
        for (let i = 0; i < events; i++) {
          expect(d.set("s:1#0", "IDLE").wakeAt).toBe(1_000)
          d.set("s:1#0", "READY")
        }
        return (Balancer.work(d.b) - before) / events
      }
      const one = workPerDrop(1)
      const many = workPerDrop(1_000)
      // Only the bitsets' depth (log32 of the slots) may differ; the old single sorted queue stepped over all 1,000.
      expect(many).toBeLessThanOrEqual(one + 4)
    })
  })
})
