/**
 * `node --import tsx bench/parse.ts`: how long `Target.parse` takes on the
 * 1 MB inputs of property-tests/Target.test.ts (valid and invalid shapes,
 * count ranges and options among them),
 * as ms per parse and ns per byte, medians over several rounds; then the
 * time at 1 MB over the time at 100 KB for each shape, beside the 10x that
 * linear time gives (a quadratic parser would show about 100x); a shape the
 * parser rejects at its first character has no ratio. It prints; it does
 * not assert.
 */
import * as Result from "effect/Result"
import * as Target from "../src/core/Target.js"

const MEGABYTE = 1 << 20
const ROUNDS = 9

/** The test's shapes, `size` characters of filler each (about `size` bytes: ASCII). */
const shapes: ReadonlyArray<readonly [string, (size: number) => string]> = [
  ["pass: 1 address per 16 bytes", (size) => `pass:///${Array.from({ length: size / 16 }, (_, i) => `h${i}.example:${1 + (i % 65535)}`).join(",")}`],
  ["pass: a huge count", (size) => `pass:///a:1#${"1".repeat(size)}.1x`],
  ["pass: [[[...", (size) => `pass:///${"[".repeat(size)}`],
  ["pass: :::...", (size) => `pass:///${":".repeat(size)}`],
  ["pass: a huge host", (size) => `pass:///${"a".repeat(size)}:1`],
  ["pass: ,,,...", (size) => `pass:///${",".repeat(size)}`],
  ["etcd: one endpoint repeated", (size) => `etcd://${"e:1,".repeat(size / 4)}e:1/s`],
  ["etcd: a huge service", (size) => `etcd:///${"ab/".repeat(Math.floor(size / 3))}#2`],
  ["pass: count ranges, options", (size) => `pass:///${Array.from({ length: size / 24 }, (_, i) => `h${i}.example:${1 + (i % 65535)}#1..2`).join(",")}?subset=20&pick=least_request`],
  ["etcd: options repeated", (size) => `etcd:///s?${"pick=round_robin&".repeat(Math.floor(size / 17))}`],
  ["no scheme: aaa...:", (size) => `${"a".repeat(size)}:`]
]

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

let sink = 0

/** Below this a parse stopped at once: its time says nothing about the length. */
const AT_ONCE_MS = 0.02

/** Median ms of one parse of `input`, after a warm-up parse. */
const measure = (input: string): number => {
  Target.parse(input)
  const times: Array<number> = []
  for (let round = 0; round < ROUNDS; round++) {
    const t0 = process.hrtime.bigint()
    const result = Target.parse(input)
    times.push(Number(process.hrtime.bigint() - t0) / 1e6)
    sink += Result.isFailure(result) ? result.failure.position : 1
  }
  return median(times)
}

const outcome = (input: string): string => {
  const result = Target.parse(input)
  return Result.isFailure(result) ? `Failure ${result.failure.problem}` : `Success ${result.success._tag}`
}

const header = `${"shape".padEnd(30)} ${"bytes".padStart(9)} ${"ms (1 MB)".padStart(10)} ${"ns/byte".padStart(8)} ${"ms (100 KB)".padStart(12)} ${"1 MB / 100 KB".padStart(14)}  result`
const rows = [`Target.parse, median of ${ROUNDS} rounds; linear time gives about 10x from 100 KB to 1 MB`, header, "-".repeat(header.length)]
const ratios: Array<number> = []
for (const [name, make] of shapes) {
  const big = make(MEGABYTE)
  const small = make(MEGABYTE / 10)
  const bigMs = measure(big)
  const smallMs = measure(small)
  const ratio = bigMs < AT_ONCE_MS ? undefined : bigMs / smallMs
  if (ratio !== undefined) ratios.push(ratio)
  rows.push(
    [
      name.padEnd(30),
      String(big.length).padStart(9),
      bigMs.toFixed(3).padStart(10),
      ((bigMs * 1e6) / big.length).toFixed(2).padStart(8),
      smallMs.toFixed(3).padStart(12),
      (ratio === undefined ? "(at once)" : `${ratio.toFixed(1)}x`).padStart(14),
      ` ${outcome(big)}`
    ].join(" ")
  )
}
rows.push(`linearity: 1 MB / 100 KB time ${Math.min(...ratios).toFixed(1)}x to ${Math.max(...ratios).toFixed(1)}x (median ${median(ratios).toFixed(1)}x; 10x is linear)`)
console.log(rows.join("\n"))
if (sink === -1) console.log(sink)
