/**
 * The balancer against its reference model (./balancer-model.ts, written from
 * the documented rules): fast-check `commands` send random address lists
 * (random ones, lists at exactly the cap and one over, mass removals,
 * relists under the grace, mass removals whose kept addresses meet the cap),
 * connectivity and health changes (single, and many connections at once, so
 * pools reach tens of READY connections), time (random, and exactly at and
 * just before the next wake-up) and picks. After every event the balancer
 * must agree with the model on: the slots (ids by key, exactly what each
 * update and timer opens and releases), the channel state and its publishes,
 * which connections take calls (suspicion and its fallback), the next
 * wake-up, re-resolution requests, the work a connectivity event costs,
 * and after every pick burst: picks only
 * where calls may go, exact round robin shares over k rounds.
 *
 * The property counts what the runs reached and prints it, and fails if the
 * generators stop reaching the states that matter (many READY connections,
 * long sequences, the grace in both directions, the cap at exactly its limit).
 */
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import * as Balancer from "../src/core/Balancer.js"
import type * as Expansion from "../src/core/Expansion.js"
import { keyOf, type Limits, Model, type MSlot } from "./balancer-model.js"

const LIMITS: Limits = { cap: 40, startWaitMs: 250, suspicionMs: 1_000, graceMs: 5_000, threshold: 0.5 }
const ADDRESSES = Array.from({ length: 16 }, (_, i) => `10.0.0.${10 + i}:80`)
const STATES: ReadonlyArray<Balancer.ConnectionState> = ["IDLE", "CONNECTING", "READY", "TRANSIENT_FAILURE", "SHUTDOWN"]
/**
 * Runs: 200 (about 8 s), or FC_MODEL_RUNS, or FC_RUNS. StrykerJS runs 30
 * (vitest.mutation.config.ts): most planted bugs fail in the first run, and a
 * surviving one costs the whole property.
 */
const RUNS = Number(process.env.FC_MODEL_RUNS ?? process.env.FC_RUNS ?? 200)
/** Units of work a connectivity event may cost (bitset levels, the address's own slots). */
const WORK_BOUND = 64

/** What one run reached. */
class Reached {
  commands = 0
  updates = 0
  maxReady = 0
  maxTaking = 0
  capExactAccepted = 0
  capOverRefused = 0
  keepFirstExact = 0
  keepFirstTrimmed = 0
  graceStarted = 0
  graceExpired = 0
  graceRelisted = 0
  graceAtCapExact = 0
  graceReleasedByCap = 0
  readyRemovedAtOnce = 0
  suspicions = 0
  suspicionClearedByReady = 0
  suspicionLapsed = 0
  picksAvoidingSuspects = 0
  fallbackPicks = 0
  fairness10 = 0
  fairness30 = 0
  startByWait = 0
  startBySettling = 0
  failedThenReady = 0
  wakeUpsAtDeadline = 0
}

class Sim {
  readonly m = new Model(LIMITS)
  readonly reached = new Reached()
  wasAllFailed = false
}

interface Real {
  readonly b: Balancer.Balancer
}

/** Fails with both values when they differ (plain comparisons: `expect` per slot per event would dominate the run time). */
const same = <A>(actual: A, expected: A, what: string): void => {
  if (actual !== expected) throw new Error(`${what}: the balancer says ${String(actual)}, the model ${String(expected)}`)
}

/** The same members, in any order. */
const sameSet = (actual: ReadonlyArray<number | string>, expected: ReadonlyArray<number | string>, what: string): void =>
  same([...actual].sort().join(" "), [...expected].sort().join(" "), what)

/** The balancer agrees with the model (after `out`, when an event produced one). */
const verify = (sim: Sim, b: Balancer.Balancer, out?: Balancer.Output): void => {
  const { m, reached } = sim
  const wasServing = m.serving
  m.settle()
  if (m.serving && !wasServing) reached.startBySettling++
  const state = m.state()
  same(Balancer.state(b), state, "channel state")
  const views = Balancer.slots(b)
  same(views.length, m.slots.size, "number of connections")
  if (m.slots.size > LIMITS.cap) throw new Error(`${m.slots.size} connections, over the cap`)
  const taking = m.takingCalls()
  for (const view of views) {
    const key = keyOf(view.address, view.index)
    const slot = m.slots.get(key)
    same(view.id, slot?.id, `${key}: id`)
    same(view.state, slot!.raw, `${key}: state`)
    same(view.healthy, slot!.healthy, `${key}: healthy`)
    same(view.pickable, taking.has(view.id), `${key}: takes calls`)
  }
  for (const address of ADDRESSES) same(Balancer.hasAddress(b, address), m.addresses.has(address), `${address} in the pool`)
  let ready = 0
  for (const slot of m.slots.values()) if (m.connected(slot)) ready++
  reached.maxReady = Math.max(reached.maxReady, ready)
  if (state === "TRANSIENT_FAILURE" && m.slots.size > 0) sim.wasAllFailed = true
  if (state === "READY" && sim.wasAllFailed) {
    sim.wasAllFailed = false
    reached.failedThenReady++
  }
  if (out === undefined) return
  same(out.wakeAt, m.wake(), "next wake-up")
  m.wakeAt = out.wakeAt
  if (out.publish !== undefined) same(out.publish.state, state, "published state")
  if (state !== m.published) same(out.publish?.state, state, "publish of a changed state")
  if (out.publish !== undefined) {
    m.published = out.publish.state
    const message = `anchor_round_robin: no ready connection to ${m.target} (${m.slots.size} connections failing; last error: `
    if (state === "TRANSIENT_FAILURE" && m.slots.size > 0) same(out.publish.message?.startsWith(message), true, `message ${out.publish.message}`)
  }
}

const update = (sim: Sim, b: Balancer.Balancer, endpoints: ReadonlyArray<Expansion.Weighted>, overCap: "fail" | "keepFirst", offset: number): void => {
  const { m, reached } = sim
  reached.updates++
  const target = overCap === "fail" ? "pass:///model" : "etcd:///model"
  const asked = endpoints.reduce((n, e) => n + e.count, 0)
  const retainedBefore = new Set([...m.addresses.values()].filter((a) => a.retainedUntil > 0).map((a) => a.name))
  const plan = m.plan(endpoints, overCap)
  const out = Balancer.step(b, { _tag: "Addresses", now: m.now, target, endpoints, overCap, offset })
  if (plan === undefined) {
    sameSet(out.create.map((s) => s.id), [], "opened by a refused list")
    sameSet(out.remove, [], "released by a refused list")
    if (asked === LIMITS.cap + 1) reached.capOverRefused++
  } else {
    const { added, gone } = m.diff(plan)
    sameSet(out.remove, gone.map((s) => s.id), "released by the list")
    sameSet(out.create.map((s) => keyOf(s.address, s.index)), added, "opened by the list")
    for (const slot of out.create) same(out.connect.includes(slot.id), true, `${slot.id} asked to connect`)
    if (overCap === "fail" && asked === LIMITS.cap) reached.capExactAccepted++
    if (overCap === "keepFirst" && asked === LIMITS.cap) reached.keepFirstExact++
    if (overCap === "keepFirst" && asked > LIMITS.cap) reached.keepFirstTrimmed++
    if (plan.retain.size > 0) reached.graceStarted++
    if (plan.removedReady.length > 0) reached.readyRemovedAtOnce++
    if (plan.released.length > 0) reached.graceReleasedByCap++
    if ([...retainedBefore].some((a) => plan.listed.has(a))) reached.graceRelisted++
    const total = [...plan.counts.values()].reduce((x, y) => x + y, 0)
    if (total === LIMITS.cap && plan.counts.size > plan.listed.size) reached.graceAtCapExact++
    m.commit(plan, out.create, target)
  }
  verify(sim, b, out)
}

const setState = (sim: Sim, b: Balancer.Balancer, slot: MSlot, state: Balancer.ConnectionState): void => {
  const { m, reached } = sim
  const suspected = m.addresses.get(slot.address)!.suspectUntil
  const work = Balancer.work(b)
  const out = Balancer.step(b, { _tag: "StateChanged", now: m.now, slot: slot.id, state, error: state === "TRANSIENT_FAILURE" ? `refused ${slot.id}` : undefined })
  if (Balancer.work(b) - work > WORK_BOUND) throw new Error(`a state change cost ${Balancer.work(b) - work} units of work`)
  const dropped = m.change(slot, state, slot.healthy, true)
  const suspecting = m.addresses.get(slot.address)!.suspectUntil
  if (suspecting !== 0 && suspecting !== suspected) reached.suspicions++
  if (suspected !== 0 && suspecting === 0) reached.suspicionClearedByReady++
  sameSet(out.create.map((s) => s.id), [], "opened by a state change")
  sameSet(out.remove, [], "released by a state change")
  sameSet(out.connect, state === "IDLE" ? [slot.id] : [], `asked to connect after ${state}`)
  same(out.reresolve, dropped, "re-resolution asked")
  verify(sim, b, out)
}

const setHealth = (sim: Sim, b: Balancer.Balancer, slot: MSlot, healthy: boolean): void => {
  const work = Balancer.work(b)
  const out = Balancer.step(b, { _tag: "HealthChanged", now: sim.m.now, slot: slot.id, healthy })
  if (Balancer.work(b) - work > WORK_BOUND) throw new Error(`a health change cost ${Balancer.work(b) - work} units of work`)
  sim.m.change(slot, slot.raw, healthy, false)
  sameSet([...out.create.map((s) => s.id), ...out.remove, ...out.connect], [], "slots changed by a health change")
  same(out.reresolve, false, "re-resolution asked")
  verify(sim, b, out)
}

const advanceTo = (sim: Sim, b: Balancer.Balancer, now: number): void => {
  const { m, reached } = sim
  const due = m.advance(now)
  if (due.started) reached.startByWait++
  reached.graceExpired += due.expired
  reached.suspicionLapsed += due.suspicionsEnded
  const out = Balancer.step(b, { _tag: "TimerFired", now })
  sameSet(out.create.map((s) => s.id), [], "opened by the timer")
  sameSet(out.remove, due.gone.map((s) => s.id), "released by the timer")
  verify(sim, b, out)
}

/** A tiny deterministic generator, so one drawn number picks many connections. */
const chooser = (seed: number) => {
  let x = (seed >>> 0) || 1
  return (): number => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 4294967296
  }
}

type Command = fc.Command<Sim, Real>

const command = (name: string, run: (sim: Sim, b: Balancer.Balancer) => void): Command => ({
  check: () => true,
  run: (sim, real) => {
    sim.reached.commands++
    run(sim, real.b)
  },
  toString: () => name
})

const weighted = fc.array(fc.record({ address: fc.constantFrom(...ADDRESSES), count: fc.integer({ min: 0, max: 6 }) }), { maxLength: 10 })
const overCap = fc.constantFrom<"fail" | "keepFirst">("fail", "keepFirst")

/** A random list. */
const randomList = fc.tuple(weighted, overCap, fc.nat()).map(([endpoints, mode, offset]) =>
  command(`Update(${endpoints.map((e) => `${e.address}#${e.count}`).join(",")}, ${mode}, ${offset})`, (sim, b) => update(sim, b, endpoints, mode, offset))
)

/** A list of exactly cap + delta connections. */
const atCap = fc.tuple(fc.integer({ min: -1, max: 1 }), overCap, fc.nat()).map(([delta, mode, seed]) =>
  command(`AtCap(${delta}, ${mode}, ${seed})`, (sim, b) => {
    const rand = chooser(seed)
    const names = [...ADDRESSES].sort(() => rand() - 0.5)
    let left = LIMITS.cap + delta
    const endpoints: Array<Expansion.Weighted> = []
    for (const address of names) {
      if (left === 0) break
      const count = Math.min(left, 1 + Math.floor(rand() * 6))
      endpoints.push({ address, count })
      left -= count
    }
    update(sim, b, endpoints, mode, seed)
  })
)

/** The listed addresses, each kept when its bit in `mask` is set, with `extra` new ones. */
const keep = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 3 }), fc.integer({ min: -1, max: 1 })).map(([mask, extra, bump]) =>
  command(`Keep(${mask}, ${extra}, ${bump})`, (sim, b) => {
    const listed = [...sim.m.addresses.values()].filter((a) => a.retainedUntil === 0).sort((x, y) => (x.name < y.name ? -1 : 1))
    const endpoints: Array<Expansion.Weighted> = listed
      .filter((_, i) => (mask >>> (i % 31)) & 1)
      .map((a, i) => ({ address: a.name, count: Math.max(1, a.count + (i === 0 ? bump : 0)) }))
    const fresh = ADDRESSES.filter((a) => !sim.m.addresses.has(a)).slice(0, extra)
    for (const address of fresh) endpoints.push({ address, count: 1 + (mask % 3) })
    update(sim, b, endpoints, "keepFirst", mask)
  })
)

/** Lists again every address in the pool (those kept by the grace included). */
const relist = fc.integer({ min: 0, max: 1 }).map((bump) =>
  command(`Relist(${bump})`, (sim, b) => {
    const endpoints = [...sim.m.addresses.values()].map((a) => ({ address: a.name, count: a.count + bump }))
    update(sim, b, endpoints, "keepFirst", 0)
  })
)

/**
 * Drops more than half of the addresses with a READY connection, and lists
 * new ones so that the list and the addresses the grace keeps come to
 * exactly cap + delta connections.
 */
const graceAtCap = fc.tuple(fc.integer({ min: -1, max: 1 }), fc.nat()).map(([delta, seed]) =>
  command(`GraceAtCap(${delta}, ${seed})`, (sim, b) => {
    const { m } = sim
    const ready = [...m.addresses.values()].filter((a) => a.retainedUntil === 0 && m.slotsOf(a.name).some((s) => m.connected(s)))
    if (ready.length < 2) return
    const kept = ready.slice(0, Math.floor((ready.length - 1) / 2))
    const endpoints: Array<Expansion.Weighted> = kept.map((a) => ({ address: a.name, count: a.count }))
    const staying = [...m.addresses.values()].filter((a) => !kept.includes(a) && (a.retainedUntil > 0 || ready.includes(a)))
    let left = LIMITS.cap + delta - endpoints.reduce((n, e) => n + e.count, 0) - staying.reduce((n, a) => n + a.count, 0)
    const rand = chooser(seed)
    for (const address of ADDRESSES.filter((a) => !m.addresses.has(a))) {
      if (left <= 0) break
      const count = Math.min(left, 1 + Math.floor(rand() * 6))
      endpoints.push({ address, count })
      left -= count
    }
    update(sim, b, endpoints, "keepFirst", seed)
  })
)

/** Connections that are not READY and healthy become so (CONNECTING, then READY), each with probability `share`. */
const connectMany = fc.tuple(fc.nat(), fc.constantFrom(1, 0.8, 0.5)).map(([seed, share]) =>
  command(`ConnectMany(${seed}, ${share})`, (sim, b) => {
    const rand = chooser(seed)
    for (const slot of sim.m.sorted()) {
      if (sim.m.connected(slot) || rand() >= share) continue
      if (slot.raw !== "CONNECTING") setState(sim, b, slot, "CONNECTING")
      setState(sim, b, slot, "READY")
      if (!slot.healthy) setHealth(sim, b, slot, true)
    }
  })
)

/** READY connections drop (to `state`), each with probability `share`. */
const dropMany = fc.tuple(fc.nat(), fc.constantFrom(0.5, 0.2, 1), fc.constantFrom<Balancer.ConnectionState>("IDLE", "TRANSIENT_FAILURE", "CONNECTING")).map(([seed, share, state]) =>
  command(`DropMany(${seed}, ${share}, ${state})`, (sim, b) => {
    const rand = chooser(seed)
    for (const slot of sim.m.sorted()) if (sim.m.connected(slot) && rand() < share) setState(sim, b, slot, state)
  })
)

const oneSlot = (choice: number, sim: Sim): MSlot | undefined => {
  const all = sim.m.sorted()
  return all.length === 0 ? undefined : all[choice % all.length]
}

const setOne = fc.tuple(fc.nat(), fc.constantFrom(...STATES)).map(([choice, state]) =>
  command(`SetState(${choice}, ${state})`, (sim, b) => {
    const slot = oneSlot(choice, sim)
    if (slot !== undefined) setState(sim, b, slot, state)
  })
)

const health = fc.tuple(fc.nat(), fc.boolean()).map(([choice, healthy]) =>
  command(`SetHealth(${choice}, ${healthy})`, (sim, b) => {
    const slot = oneSlot(choice, sim)
    if (slot !== undefined) setHealth(sim, b, slot, healthy)
  })
)

const failAll = fc.constant(command("FailAll", (sim, b) => {
  for (const slot of sim.m.sorted()) setState(sim, b, slot, "TRANSIENT_FAILURE")
}))

const advance = fc.oneof(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 900, max: 1_100 }), fc.integer({ min: 0, max: 6_000 })).map((ms) =>
  command(`Advance(${ms})`, (sim, b) => advanceTo(sim, b, sim.m.now + ms))
)

/** Time goes to exactly the next wake-up, or 1 ms before it. */
const wakeUp = fc.integer({ min: -1, max: 0 }).map((delta) =>
  command(`WakeUp(${delta})`, (sim, b) => {
    const at = sim.m.wakeAt
    if (at === undefined || at + delta < sim.m.now) return
    if (delta === 0) sim.reached.wakeUpsAtDeadline++
    advanceTo(sim, b, at + delta)
  })
)

const picks = fc.integer({ min: 1, max: 30 }).map((n) =>
  command(`Picks(${n})`, (sim, b) => {
    const ready = sim.m.state() === "READY"
    const taking = sim.m.takingCalls()
    const slots = [...sim.m.slots.values()]
    const suspects = slots.some((s) => s.suspect && sim.m.connected(s))
    const fallback = ready && !slots.some((s) => sim.m.connected(s) && !s.suspect)
    for (let i = 0; i < n; i++) {
      const id = Balancer.pick(b)
      if (!ready) {
        same(id, -1, "pick while not READY")
        continue
      }
      same(taking.has(id), true, `pick ${id} takes calls`)
      if (fallback) sim.reached.fallbackPicks++
      else if (suspects) sim.reached.picksAvoidingSuspects++
    }
  })
)

/** k rounds: each connection that takes calls is picked exactly k times, in a fixed cyclic order. */
const fairness = fc.integer({ min: 1, max: 3 }).map((k) =>
  command(`Fairness(${k})`, (sim, b) => {
    if (sim.m.state() !== "READY") return
    const taking = sim.m.takingCalls()
    const n = taking.size
    const seen: Array<number> = []
    for (let i = 0; i < k * n; i++) seen.push(Balancer.pick(b))
    const counts = new Map<number, number>()
    for (const id of seen) counts.set(id, (counts.get(id) ?? 0) + 1)
    same(counts.size, n, "connections picked in k rounds")
    for (const id of taking) same(counts.get(id), k, `picks of ${id} in ${k} rounds`)
    for (let i = n; i < seen.length; i++) same(seen[i], seen[i - n], `pick ${i} repeats pick ${i - n}`)
    sim.reached.maxTaking = Math.max(sim.reached.maxTaking, n)
    if (n >= 10) sim.reached.fairness10++
    if (n >= 30) sim.reached.fairness30++
  })
)

const commands = fc.commands(
  [
    fc.oneof(
      { weight: 3, arbitrary: randomList },
      { weight: 2, arbitrary: atCap },
      { weight: 3, arbitrary: keep },
      { weight: 1, arbitrary: relist },
      { weight: 2, arbitrary: graceAtCap },
      { weight: 5, arbitrary: connectMany },
      { weight: 2, arbitrary: dropMany },
      { weight: 4, arbitrary: setOne },
      { weight: 1, arbitrary: health },
      { weight: 1, arbitrary: failAll },
      { weight: 3, arbitrary: advance },
      { weight: 2, arbitrary: wakeUp },
      { weight: 3, arbitrary: picks },
      { weight: 2, arbitrary: fairness }
    )
  ],
  { maxCommands: 400, size: "max" }
)

/** Totals over the runs, printed after the property. */
const totals = new Map<string, number>()
const lengths: Array<number> = []

const record = (reached: Reached): void => {
  lengths.push(reached.commands)
  for (const [name, value] of Object.entries(reached)) {
    if (name === "maxReady" || name === "maxTaking") {
      totals.set(`${name} >= 10 (runs)`, (totals.get(`${name} >= 10 (runs)`) ?? 0) + (value >= 10 ? 1 : 0))
      totals.set(`${name} >= 30 (runs)`, (totals.get(`${name} >= 30 (runs)`) ?? 0) + (value >= 30 ? 1 : 0))
      totals.set(`${name} (largest)`, Math.max(totals.get(`${name} (largest)`) ?? 0, value))
    } else if (name !== "commands") {
      totals.set(name, (totals.get(name) ?? 0) + value)
      totals.set(`${name} (runs)`, (totals.get(`${name} (runs)`) ?? 0) + (value > 0 ? 1 : 0))
    }
  }
}

describe("Balancer against its reference model", () => {
  it("agrees after every event of long random sequences, and reaches the states that matter", () => {
    fc.assert(
      fc.property(commands, (cmds) => {
        const sim = new Sim()
        const b = Balancer.make({
          maxConnections: LIMITS.cap,
          startWaitMs: LIMITS.startWaitMs,
          suspicionMs: LIMITS.suspicionMs,
          removalGraceMs: LIMITS.graceMs,
          removalThreshold: LIMITS.threshold
        })
        fc.modelRun(() => ({ model: sim, real: { b } }), cmds)
        record(sim.reached)
      }),
      { numRuns: RUNS }
    )
    const sorted = [...lengths].sort((x, y) => x - y)
    const mean = lengths.reduce((x, y) => x + y, 0) / lengths.length
    const lines = [
      `runs ${lengths.length}; commands per run: mean ${mean.toFixed(0)}, median ${sorted[sorted.length >> 1]}, max ${sorted[sorted.length - 1]}`,
      ...[...totals].filter(([name]) => !name.endsWith("(runs)")).map(([name, value]) => {
        const runs = totals.get(`${name} (runs)`)
        return `${name.padEnd(28)} ${String(value).padStart(7)}${runs === undefined ? "" : `  in ${runs} runs`}`
      }),
      ...[...totals].filter(([name]) => name.startsWith("max")).filter(([name]) => name.endsWith("(runs)")).map(([name, value]) => `${name.padEnd(28)} ${String(value).padStart(7)}`)
    ]
    console.log(lines.join("\n"))
    // The generators reach what the rules are about (the counts over all runs, shrinking included);
    // checked from 100 runs on, where missing one of them is not chance.
    if (RUNS < 100) return
    const atLeast = (name: string, n: number) => expect(totals.get(name) ?? 0, name).toBeGreaterThanOrEqual(n)
    atLeast("maxReady >= 30 (runs)", Math.ceil(RUNS / 10))
    atLeast("maxTaking >= 10 (runs)", Math.ceil(RUNS / 10))
    for (const name of ["capExactAccepted", "capOverRefused", "keepFirstExact", "keepFirstTrimmed", "graceStarted", "graceExpired", "graceRelisted", "graceAtCapExact", "graceReleasedByCap", "readyRemovedAtOnce", "suspicions", "suspicionClearedByReady", "suspicionLapsed", "picksAvoidingSuspects", "fallbackPicks", "fairness30", "startByWait", "startBySettling", "failedThenReady", "wakeUpsAtDeadline"]) {
      atLeast(`${name} (runs)`, 1)
    }
  })
})
