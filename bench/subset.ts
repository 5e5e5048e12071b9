/**
 * `node --import tsx bench/subset.ts`: deterministic subsetting by
 * simulation. 1,000 clients each compute their subset of the same backends
 * (100, 333 or 1,000 of them; subset 10 or 20); the table prints the clients
 * per backend (min, max, max over the mean) and, averaged over single
 * backends leaving and joining, the clients whose subset changed and the
 * connections moved (closed + opened, over 2; the least possible is the mean,
 * M·K/N: the clients of the backend that left or the share the new one gets).
 *
 * Rows: grpc-anchor's `Subset.select` with client indices 0..999 (the
 * balanced mode) and with client names (rendezvous hashing), beside the SRE
 * book's deterministic subsetting (rounds of seeded shuffles, client ids
 * 0..999), written here only as the baseline. It prints; it does not assert
 * (the bounds are asserted in property-tests/Subset.test.ts).
 */
import * as Subset from "../src/core/Subset.js"

const CLIENTS = 1000
const CHANGES = 6
const CONFIGS: ReadonlyArray<readonly [backends: number, size: number]> = [
  [100, 10],
  [333, 20],
  [1000, 20]
]

type Select = (backends: ReadonlyArray<string>, size: number, client: number) => ReadonlyArray<string>

/** A deterministic pseudo-random sequence (the bench must be repeatable). */
const lcg = (seed: number) => () => {
  seed = (Math.imul(seed, 1_664_525) + 1_013_904_223) >>> 0
  return seed / 2 ** 32
}

/**
 * The SRE book's algorithm ("Load Balancing in the Datacenter"): clients in
 * rounds of N/K; each round shuffles the backends with the round as the seed
 * and deals them out K at a time.
 */
const sreBook: Select = (backends, size, client) => {
  const subsetCount = Math.max(1, Math.floor(backends.length / size))
  const round = Math.floor(client / subsetCount)
  const shuffled = [...backends].sort()
  const random = lcg(round * 2_654_435_761 + 1)
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!]
  }
  const id = client % subsetCount
  return shuffled.slice(id * size, id * size + size)
}

const VARIANTS: ReadonlyArray<readonly [string, Select]> = [
  ["grpc-anchor, client index", (b, k, c) => Subset.select(b, k, c)],
  ["grpc-anchor, client name", (b, k, c) => Subset.select(b, k, `client-${c}.example/${4000 + c}`)],
  ["SRE book (baseline)", sreBook]
]

const backendsOf = (n: number): Array<string> => Array.from({ length: n }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.1:9080`)

const measure = (select: Select, n: number, k: number) => {
  const backends = backendsOf(n)
  const t0 = process.hrtime.bigint()
  const before = Array.from({ length: CLIENTS }, (_, c) => new Set(select(backends, k, c)))
  const microsPerSelect = Number(process.hrtime.bigint() - t0) / 1e3 / CLIENTS
  const load = new Map(backends.map((b) => [b, 0]))
  for (const subset of before) for (const b of subset) load.set(b, load.get(b)! + 1)
  const counts = [...load.values()]
  const random = lcg(n * 31 + k)
  let clients = 0
  let connections = 0
  for (let change = 0; change < CHANGES; change++) {
    const at = Math.floor(random() * n)
    for (const after of [backends.filter((_, i) => i !== at), [...backends, `10.99.${change}.${at & 255}:9080`]]) {
      for (let c = 0; c < CLIENTS; c++) {
        const now = select(after, k, c)
        const moved = now.filter((b) => !before[c]!.has(b)).length
        if (moved > 0) clients++
        connections += moved
      }
    }
  }
  const mean = (CLIENTS * k) / n
  return {
    min: Math.min(...counts),
    max: Math.max(...counts),
    mean,
    clients: clients / (2 * CHANGES),
    connections: connections / (2 * CHANGES),
    microsPerSelect
  }
}

const header = `${"variant".padEnd(28)} ${"N".padStart(5)} ${"K".padStart(3)} ${"mean".padStart(6)} ${"min".padStart(5)} ${"max".padStart(5)} ${"max/mean".padStart(9)} ${"clients moved".padStart(14)} ${"conns moved".padStart(12)} ${"least".padStart(6)} ${"µs/select".padStart(10)}`
const rows = [
  `${CLIENTS} clients; moved = per single backend leaving or joining, mean of ${CHANGES} of each`,
  header,
  "-".repeat(header.length)
]
for (const [n, k] of CONFIGS) {
  for (const [name, select] of VARIANTS) {
    const r = measure(select, n, k)
    rows.push(
      [
        name.padEnd(28),
        String(n).padStart(5),
        String(k).padStart(3),
        r.mean.toFixed(1).padStart(6),
        String(r.min).padStart(5),
        String(r.max).padStart(5),
        `${(r.max / r.mean).toFixed(2)}x`.padStart(9),
        `${r.clients.toFixed(0)} (${((100 * r.clients) / CLIENTS).toFixed(0)}%)`.padStart(14),
        r.connections.toFixed(0).padStart(12),
        r.mean.toFixed(0).padStart(6),
        r.microsPerSelect.toFixed(0).padStart(10)
      ].join(" ")
    )
  }
}
console.log(rows.join("\n"))
