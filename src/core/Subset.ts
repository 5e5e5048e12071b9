/**
 * Deterministic subsetting for large fleets (`?subset=K` in a target): each
 * client connects to only K of the N backends, chosen from the backend list
 * and the client's id alone (no coordination), so that across many clients
 * every backend gets nearly the same number of clients, and a backend
 * joining or leaving moves few connections.
 *
 * How a client is identified decides how good the balance can be:
 *
 * - **A client index** (a whole number 0..2^32-1, or its decimal text, e.g. a
 *   StatefulSet ordinal or a task number): give the M clients of a service
 *   the distinct indices 0..M-1 and every backend gets within
 *   `popcount(M)` of the mean `M·K/N` clients (in practice within 1). The
 *   backends are ordered on a ring by a hash of their address; client `i`
 *   sits at the `i`-th point of the van der Corput sequence (bit-reversed
 *   `i`, a low-discrepancy sequence, so any first M clients are spread
 *   evenly) and takes the K backends from its point on. This is the SRE
 *   book's deterministic subsetting made churn-friendly (as Google's later
 *   Ringsteady subsetting does): when one backend joins or leaves, a client's
 *   subset changes by at most one backend (one connection closed, one
 *   opened), or two for the few clients (about (K-1)/N of them) whose K
 *   backends wrap around the ring's start; about half of the clients change
 *   one. The SRE book's rounds instead reshuffle almost every subset.
 * - **Any other text** (a host name and pid, a pod name): the client takes
 *   the K backends that score highest for it under rendezvous hashing.
 *   Without indices no scheme can beat the balance of independent random
 *   choices (a backend's clients are then about Binomial(M, K/N)), so this
 *   mode minimizes churn instead: when a backend leaves, exactly the clients
 *   that had it change, each replacing it with one other; when one joins,
 *   exactly the clients that take it change, each dropping one.
 *
 * `bench/subset.ts` prints the figures (max/min clients per backend, clients
 * and connections moved per membership change) beside the SRE book's
 * algorithm.
 *
 * @example
 * ```ts
 * import { Subset } from "grpc-anchor/core"
 * const backends = ["10.0.0.1:9080", "10.0.0.2:9080", "10.0.0.3:9080", "10.0.0.4:9080"]
 * Subset.select(backends, 2, 0) // two of them, in the order of `backends`
 * Subset.select(backends, 2, "web-7f9c/4711") // two of them, by rendezvous hashing
 * Subset.select(backends, 9, 0) // all four: the subset is never larger than the list
 * ```
 *
 * @since 0.3.0
 */

/**
 * Who the client is: a client index (a whole number 0..2^32-1, or its decimal
 * text) for the balanced mode, or any other text for the hashing mode (see
 * the module doc).
 *
 * @example
 * ```ts
 * import type { Subset } from "grpc-anchor/core"
 * const ordinal: Subset.ClientId = 3 // or "3"
 * const name: Subset.ClientId = "billing-client-5d8f/1234"
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export type ClientId = number | string

/** The largest client index: indices are 32-bit. */
const MAX_INDEX = 0xffff_ffff

/**
 * The client index of a client id, or undefined when the id is a name (the
 * hashing mode). A number must be a whole number 0..2^32-1; text counts as an
 * index when it is the decimal digits of such a number without leading zeros
 * (`"7"`, not `"07"`, which is a name like any other).
 *
 * @throws RangeError for a number that is not a whole number 0..2^32-1 (a
 * defect in the caller: a text id is never rejected).
 *
 * @example
 * ```ts
 * import { Subset } from "grpc-anchor/core"
 * Subset.clientIndex(7) // 7
 * Subset.clientIndex("7") // 7
 * Subset.clientIndex("07") // undefined: a name
 * Subset.clientIndex("host-a/123") // undefined: a name
 * ```
 *
 * @category getters
 * @since 0.2.0
 */
export const clientIndex = (id: ClientId): number | undefined => {
  if (typeof id === "number") {
    if (!Number.isInteger(id) || id < 0 || id > MAX_INDEX) {
      throw new RangeError(`a client index must be a whole number 0..${MAX_INDEX}, got ${id}`)
    }
    return id
  }
  if (!/^(?:0|[1-9][0-9]{0,9})$/.test(id)) return undefined
  const value = Number(id)
  return value <= MAX_INDEX ? value : undefined
}

/**
 * The K backends one client connects to: `size` of the distinct `backends`
 * (all of them when there are no more than `size`), in the order of
 * `backends`. The choice depends only on the set of backends (not their
 * order), `size` and `clientId`, so every client computes its own subset and
 * two processes with the same id get the same one.
 *
 * @throws RangeError when `size` is not a whole number >= 1 (a parsed target's
 * `subset` always is), or for a bad numeric client id (see {@link clientIndex}).
 *
 * @example
 * ```ts
 * import { Subset } from "grpc-anchor/core"
 * // Filter weighted addresses down to the client's subset:
 * const weighted = [{ address: "a:1", count: 2 }, { address: "b:1", count: 2 }, { address: "c:1", count: 2 }]
 * const chosen = new Set(Subset.select(weighted.map((w) => w.address), 2, 5))
 * weighted.filter((w) => chosen.has(w.address)) // two of the three
 * ```
 *
 * @category combinators
 * @since 0.2.0
 */
export const select = (backends: ReadonlyArray<string>, size: number, clientId: ClientId): ReadonlyArray<string> => {
  if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`the subset size must be a whole number >= 1, got ${size}`)
  const index = clientIndex(clientId)
  const unique = [...new Set(backends)]
  if (unique.length <= size) return unique
  const chosen = index === undefined ? byRendezvous(unique, size, String(clientId)) : byRing(unique, size, index)
  return unique.filter((backend) => chosen.has(backend))
}

/**
 * One side of a membership change as {@link moves} sees it: the backends
 * of the service, and the subset this client chose from them.
 *
 * @example
 * ```ts
 * import { Subset } from "grpc-anchor/core"
 * const members = ["a:1", "b:1", "c:1"]
 * const choice: Subset.Choice = { members, subset: Subset.select(members, 2, 0) }
 * ```
 *
 * @since 0.3.0
 */
export interface Choice {
  readonly members: ReadonlyArray<string>
  readonly subset: ReadonlyArray<string>
}

/**
 * How many backends a membership change moved in or out of this client's
 * subset beyond the change itself: those that entered the subset while
 * already members before, plus those that left it while still members
 * after. A backend that joins and is chosen, or that leaves the service,
 * is not a move; the replacement picked for a backend that left is one.
 * With the same members it is 0. Metrics count it per change
 * (`grpc_anchor.subset.moves`).
 *
 * @example
 * ```ts
 * import { Subset } from "grpc-anchor/core"
 * Subset.moves({ members: ["a", "b", "c"], subset: ["a", "b"] }, { members: ["b", "c"], subset: ["b", "c"] }) // 1: c replaced a
 * ```
 *
 * @since 0.3.0
 */
export const moves = (before: Choice, after: Choice): number => {
  const wasMember = new Set(before.members)
  const isMember = new Set(after.members)
  const wasChosen = new Set(before.subset)
  const isChosen = new Set(after.subset)
  let n = 0
  for (const backend of isChosen) if (!wasChosen.has(backend) && wasMember.has(backend)) n++
  for (const backend of wasChosen) if (!isChosen.has(backend) && isMember.has(backend)) n++
  return n
}

/** Scores in [0, 2^53), ties broken by the text so the order is total. */
const byScore = (a: { readonly score: number; readonly backend: string }, b: { readonly score: number; readonly backend: string }) =>
  a.score - b.score || (a.backend < b.backend ? -1 : a.backend > b.backend ? 1 : 0)

/**
 * The balanced mode: backends on a ring in the order of their hash, the
 * client at the `index`-th van der Corput point, K consecutive backends from
 * there. Positions are exact: `point * N` has at most 32 + 14 significant bits.
 */
const byRing = (backends: ReadonlyArray<string>, size: number, index: number): ReadonlySet<string> => {
  const ring = backends.map((backend) => ({ score: hash53(backend, RING_SEED), backend })).sort(byScore)
  const point = reverseBits32(index) / 2 ** 32
  const start = Math.floor(point * ring.length)
  const out = new Set<string>()
  for (let i = 0; i < size; i++) out.add(ring[(start + i) % ring.length]!.backend)
  return out
}

/** The hashing mode: the K backends with the highest rendezvous score for this client. */
const byRendezvous = (backends: ReadonlyArray<string>, size: number, client: string): ReadonlySet<string> => {
  const seed = hash53(client, CLIENT_SEED) % 2 ** 32
  const scored = backends.map((backend) => ({ score: hash53(backend, seed), backend })).sort(byScore)
  const out = new Set<string>()
  for (let i = scored.length - size; i < scored.length; i++) out.add(scored[i]!.backend)
  return out
}

const RING_SEED = 0x5eed_0001
const CLIENT_SEED = 0x5eed_0002

/** `x` (32 bits) with its bits in reverse order: the van der Corput sequence in base 2, scaled by 2^32. */
const reverseBits32 = (x: number): number => {
  let v = x >>> 0
  v = ((v >>> 1) & 0x5555_5555) | ((v & 0x5555_5555) << 1)
  v = ((v >>> 2) & 0x3333_3333) | ((v & 0x3333_3333) << 2)
  v = ((v >>> 4) & 0x0f0f_0f0f) | ((v & 0x0f0f_0f0f) << 4)
  v = ((v >>> 8) & 0x00ff_00ff) | ((v & 0x00ff_00ff) << 8)
  return ((v >>> 16) | (v << 16)) >>> 0
}

/** murmur3's 32-bit finalizer: every input bit affects every output bit. */
const avalanche = (h: number): number => {
  let v = h >>> 0
  v ^= v >>> 16
  v = Math.imul(v, 0x85eb_ca6b)
  v ^= v >>> 13
  v = Math.imul(v, 0xc2b2_ae35)
  v ^= v >>> 16
  return v >>> 0
}

/**
 * A 53-bit hash of the UTF-16 code units of `text` under a 32-bit `seed`:
 * two multiplicative lanes (FNV-style, different primes) finished with
 * {@link avalanche}. Not cryptographic; stable across versions, since
 * every client of a fleet must compute the same subsets.
 */
const hash53 = (text: string, seed: number): number => {
  let a = (0x811c_9dc5 ^ seed) >>> 0
  let b = (0x2545_f491 ^ Math.imul(seed, 0x9e37_79b9)) >>> 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    a = Math.imul(a ^ c, 0x0100_0193)
    b = Math.imul(b ^ c, 0x5bd1_e995)
  }
  const high = avalanche(a ^ Math.imul(text.length, 0x27d4_eb2d) ^ (b >>> 15))
  const low = avalanche(b ^ Math.imul(high, 0x1656_67b1))
  return (high & 0x1f_ffff) * 2 ** 32 + low
}
