/**
 * `npm run bench:pick`: nanoseconds per `Picker.pick` at 3, 100 and 10,000
 * slots, with every slot ready and with half of them unready, as medians over
 * several rounds; then the 10,000 / 3 ratio beside its goal (<= 2x: the cost
 * of a pick must not grow with the number of slots). It prints; it does not
 * assert.
 */
import * as Picker from "../src/core/Picker.js"
import * as Rotation from "../src/core/Rotation.js"

const SIZES = [3, 100, 10_000] as const
const PICKS = 2_000_000
const ROUNDS = 9
const GOAL = 2

/** A deterministic pseudo-random sequence (the bench must be repeatable). */
const lcg = (seed: number) => () => {
  seed = (Math.imul(seed, 1_664_525) + 1_013_904_223) >>> 0
  return seed / 2 ** 32
}

/** Slots over size / 3 addresses (3 connections each, or fewer), in rotation order. */
const slotsOf = (size: number) => {
  const endpoints = []
  for (let left = size, i = 0; left > 0; i++) {
    const count = Math.min(3, left)
    endpoints.push({ address: `10.0.${i >> 8}.${i & 255}:9080`, count })
    left -= count
  }
  return Rotation.slotOrder(endpoints)
}

/** Exactly half of the slots ready, spread at random. */
const halfReady = (size: number): Picker.Readiness => {
  const random = lcg(size)
  const positions = Array.from({ length: size }, (_, i) => i)
  for (let i = size - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[positions[i], positions[j]] = [positions[j]!, positions[i]!]
  }
  let ready = Picker.readiness(size, false)
  for (const p of positions.slice(0, Math.max(1, Math.floor(size / 2)))) ready = Picker.setReady(ready, p, true)
  return ready
}

let sink = 0

/** ns per pick for one round of PICKS picks. */
const round = (start: Picker.Picker, ready: Picker.Readiness): number => {
  let picker = start
  let sum = 0
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < PICKS; i++) {
    const result = Picker.pick(picker, ready)
    if (result._tag === "Picked") {
      sum += result.index
      picker = result.next
    }
  }
  const elapsed = Number(process.hrtime.bigint() - t0)
  sink += sum
  return elapsed / PICKS
}

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

const measure = (size: number, ready: Picker.Readiness) => {
  const picker = Picker.make(slotsOf(size), 12_345)
  round(picker, ready) // warm up: JIT, and the picker's per-readiness cache
  return median(Array.from({ length: ROUNDS }, () => round(picker, ready)))
}

const results = new Map<string, number>()
const rows: Array<string> = []
const header = `${"slots".padStart(7)}  ${"ready".padEnd(6)}  ${"ns/pick (median of " + ROUNDS + ")"}`
rows.push(header, "-".repeat(header.length))
for (const mode of ["all", "half"] as const) {
  for (const size of SIZES) {
    const ready = mode === "all" ? Picker.readiness(size, true) : halfReady(size)
    const ns = measure(size, ready)
    results.set(`${mode}:${size}`, ns)
    rows.push(`${String(size).padStart(7)}  ${mode.padEnd(6)}  ${ns.toFixed(2)}`)
  }
}

console.log(`Picker.pick, ${PICKS.toLocaleString("en")} picks per round, node ${process.version}`)
console.log()
for (const row of rows) console.log(row)
console.log()
for (const mode of ["all", "half"] as const) {
  const ratio = results.get(`${mode}:10000`)! / results.get(`${mode}:3`)!
  const verdict = ratio <= GOAL ? "meets the goal" : "MISSES the goal"
  console.log(`10,000 / 3 slots, ${mode} ready: ${ratio.toFixed(2)}x   goal <= ${GOAL}x   (${verdict})`)
}
if (sink === -1) console.log(sink) // keeps the loop's work observable
