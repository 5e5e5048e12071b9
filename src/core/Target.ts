/**
 * Channel targets: `pass:///ADDR[#N](,ADDR[#N])*[?OPTIONS]` for a fixed list of
 * backends with N connections each, and `etcd://[HOST:PORT(,HOST:PORT)*]/SERVICE[#N][?OPTIONS]`
 * for backends discovered in etcd with N connections to each.
 *
 * - `N` is a count `#4`, or a count range `#2..8`: start with 2 connections
 *   and grow to at most 8 while they are saturated (gRFC A105-like adaptive
 *   counts; 1 <= MIN <= MAX <= {@link MAX_COUNT}). A fixed count is the range
 *   `#4..4`, written `#4`.
 * - `OPTIONS` is `name=value` pairs joined by `&`, each name at most once:
 *   `subset=K` (deterministic subsetting: connect to K of the backends, 1..{@link MAX_SUBSET};
 *   see `Subset`) and `pick=round_robin|least_request|ewma` (the pick mode; see {@link PickMode}).
 *   Example: `etcd:///billing#2..8?subset=20&pick=least_request`.
 *
 * Parsing is pure, total and linear in the length of the text: every input
 * gives a {@link Target} or a {@link TargetError} that names the offending
 * piece, where it starts in the whole text, and what was expected.
 *
 * Canonical form (what {@link format} writes): duplicates merged (their
 * minimums added and their maximums added), hosts in lower case, IPv6 hosts in
 * brackets in their RFC 5952 text, `:port` written as `localhost:port`, `#N`
 * written only when N is not 1, `#N..N` written `#N`, and the options in the
 * fixed order `subset`, `pick`.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * Target.parseUnsafe("pass:///10.0.0.1:9080#2,10.0.0.2:9090")
 * // { _tag: "Pass", endpoints: [{ address: { host: "10.0.0.1", port: 9080 }, count: 2, maxCount: 2 },
 * //                             { address: { host: "10.0.0.2", port: 9090 }, count: 1, maxCount: 1 }], options: {} }
 * Target.format(Target.parseUnsafe("pass:///A.example:1#1,a.example:1#2")) // "pass:///a.example:1#3"
 * Target.format(Target.parseUnsafe("etcd:///svc#2..2?pick=least_request&subset=20")) // "etcd:///svc#2?subset=20&pick=least_request"
 * ```
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import * as Address from "./Address.js"

/**
 * The largest number of connections one address (or one discovered etcd
 * endpoint) may ask for, after duplicates are merged.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * Target.MAX_COUNT // 256: "pass:///a:1#257" is a CountTooLarge error
 * ```
 *
 * @category constants
 * @since 0.1.0
 */
export const MAX_COUNT = 256

/**
 * The largest subset size `?subset=K` may ask for.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * Target.MAX_SUBSET // 10000: "etcd:///svc?subset=10001" is an InvalidSubset error
 * ```
 *
 * @category constants
 * @since 0.2.0
 */
export const MAX_SUBSET = 10_000

/**
 * A number of connections: start with `count`, and grow to at most
 * `maxCount` while every connection is saturated (adaptive counts, written
 * `#count..maxCount`). A fixed count has `maxCount === count`. Both are whole
 * numbers 1..{@link MAX_COUNT} with `count <= maxCount`.
 *
 * @example
 * ```ts
 * import type { Target } from "grpc-anchor/core"
 * const fixed: Target.CountRange = { count: 4, maxCount: 4 } // "#4"
 * const adaptive: Target.CountRange = { count: 2, maxCount: 8 } // "#2..8"
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export interface CountRange {
  readonly count: number
  readonly maxCount: number
}

/**
 * How calls pick a connection: `"round_robin"` is the smooth weighted round
 * robin over ready connections (the policy's default); `"least_request"` is
 * the load-aware mode, which prefers connections with fewer calls in flight
 * relative to their address's count; `"ewma"` (since 0.3.0) is the
 * latency-aware mode, which prefers connections with a lower peak-EWMA
 * latency times calls in flight. Absent from {@link Options} when the
 * target does not say (the channel's policy config decides).
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * Target.parseUnsafe("pass:///a:1#2?pick=least_request").options.pick // "least_request"
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export type PickMode = "round_robin" | "least_request" | "ewma"

/**
 * The pick modes, in the order the error messages list them.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * Target.PICK_MODES // ["round_robin", "least_request", "ewma"]
 * ```
 *
 * @category constants
 * @since 0.2.0
 */
export const PICK_MODES = ["round_robin", "least_request", "ewma"] as const satisfies ReadonlyArray<PickMode>

/**
 * The options after `?` in a target. A field is present only when the
 * target sets it.
 *
 * - `subset`: connect to only this many of the backends, chosen by
 *   deterministic subsetting (`Subset.select`) from the client id, which is
 *   not part of the target (targets are shared configuration; the client id
 *   is per process). With `subset` at or above the number of backends every
 *   backend is used.
 * - `pick`: the {@link PickMode}.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * Target.parseUnsafe("etcd:///billing#2?subset=20").options // { subset: 20 }
 * Target.parseUnsafe("etcd:///billing").options // {}
 * ```
 *
 * @category models
 * @since 0.2.0
 */
export interface Options {
  readonly subset?: number
  readonly pick?: PickMode
}

/**
 * One backend address and how many connections to open to it: `count`
 * (1..{@link MAX_COUNT}) to start with, growing to at most `maxCount` (equal
 * to `count` unless the target gave a range such as `#2..8`).
 *
 * @example
 * ```ts
 * import type { Target } from "grpc-anchor/core"
 * const weighted: Target.WeightedAddress = { address: { host: "10.0.0.1", port: 9080 }, count: 2, maxCount: 2 }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface WeightedAddress extends CountRange {
  readonly address: Address.Address
}

/**
 * A `pass:///` target: a fixed list of backends and the target's
 * {@link Options}. Each address appears once (duplicates in the text are
 * merged: their counts added, and their maximum counts added), in the order
 * of its first appearance.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * const target = Target.parseUnsafe("pass:///a:1#2,b:2,a:1") // a PassTarget
 * target._tag === "Pass" && target.endpoints.map((e) => e.count) // [3, 1]
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface PassTarget {
  readonly _tag: "Pass"
  readonly endpoints: ReadonlyArray<WeightedAddress>
  readonly options: Options
}

/**
 * An `etcd://` target: the etcd endpoints to ask (`[]` when the authority is
 * empty, so the caller's configured default applies; duplicates removed,
 * first-appearance order), the service key prefix, the number of
 * connections to open to each discovered backend (`count`, growing to at most
 * `maxCount`; a record's own count in its metadata overrides it, see
 * `EtcdRecord`), and the target's {@link Options}.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * Target.parseUnsafe("etcd://10.0.0.5:2379/prod/billing#3")
 * // an EtcdTarget: { _tag: "Etcd", etcd: [{ host: "10.0.0.5", port: 2379 }], service: "prod/billing",
 * //                  count: 3, maxCount: 3, options: {} }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface EtcdTarget extends CountRange {
  readonly _tag: "Etcd"
  readonly etcd: ReadonlyArray<Address.Address>
  readonly service: string
  readonly options: Options
}

/**
 * A parsed target: a {@link PassTarget} or an {@link EtcdTarget}, told apart by `_tag`.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * const describe = (target: Target.Target): string =>
 *   target._tag === "Pass" ? `${target.endpoints.length} addresses` : `service ${target.service}`
 * describe(Target.parseUnsafe("etcd:///billing")) // "service billing"
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Target = PassTarget | EtcdTarget

/**
 * What was wrong with a target. The address problems (`MissingPort`,
 * `InvalidPort`, `PortOutOfRange`, `UnbalancedBracket`, `UnbracketedIPv6`,
 * `InvalidHost`) apply to backend addresses and etcd endpoints alike; the
 * message says which one it was.
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import { Target } from "grpc-anchor/core"
 * const result = Target.parse("pass:///a:1#0")
 * Result.isFailure(result) && result.failure.problem // "ZeroCount"
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export type TargetProblem =
  | "EmptyTarget"
  | "MissingScheme"
  | "UnknownScheme"
  | "MissingSlashes"
  | "UnexpectedAuthority"
  | "EmptyList"
  | "EmptyEntry"
  // An address's own problems keep their names (an empty address is an EmptyEntry).
  | Exclude<Address.AddressProblem, "Empty">
  | "MissingCount"
  | "InvalidCount"
  | "NegativeCount"
  | "FractionalCount"
  | "ZeroCount"
  | "CountTooLarge"
  | "MergedCountTooLarge"
  | "IncompleteRange"
  | "InvalidRange"
  | "ReversedRange"
  | "MissingService"
  | "EmptyService"
  | "InvalidService"
  | "EmptyOptions"
  | "EmptyOption"
  | "MissingOptionValue"
  | "UnknownOption"
  | "RepeatedOption"
  | "InvalidSubset"
  | "InvalidPick"
  | "MisplacedCount"

const FORMS = `pass:///host:port[#n],... or etcd://[host:port,...]/service[#n]`
const COUNT = `a whole number 1..${MAX_COUNT}`
const RANGE = `1 <= min <= max <= ${MAX_COUNT}`
const OPTIONS = `subset=k (1..${MAX_SUBSET}) and pick=${PICK_MODES.join("|")}, joined by "&"`

const describe = (problem: TargetProblem, what: string): string => {
  switch (problem) {
    case "EmptyTarget":
      return `the target is empty; expected ${FORMS}`
    case "MissingScheme":
      return `the target has no scheme; expected ${FORMS}`
    case "UnknownScheme":
      return `unknown scheme; the schemes are "pass" (fixed addresses: pass:///host:port[#n],...) and "etcd" (discovery: etcd://[host:port,...]/service[#n]), in lower case`
    case "MissingSlashes":
      return `the scheme must be followed by "//"; expected pass:///host:port[#n],... or etcd://[host:port,...]/service[#n]`
    case "UnexpectedAuthority":
      return `a pass target lists its addresses after three slashes; expected pass:///host:port[#n],..., e.g. pass:///10.0.0.1:9080`
    case "EmptyList":
      return `the target lists no addresses; expected pass:///host:port[#n],..., e.g. pass:///10.0.0.1:9080#2`
    case "EmptyEntry":
      return what === "an etcd endpoint"
        ? `an etcd endpoint is empty (two commas in a row, or a comma at the start or end); expected host:port`
        : `an entry has no address (two commas in a row, a comma at the start or end, or nothing before "#"); expected host:port[#n]`
    case "MissingPort":
      return `${what} has no port; expected host:port, [ipv6]:port or :port, e.g. 10.0.0.1:9080`
    case "InvalidPort":
      return `the port of ${what} is not a whole number; expected digits 1..65535`
    case "PortOutOfRange":
      return `the port of ${what} is outside 1..65535`
    case "UnbalancedBracket":
      return `the IPv6 brackets of ${what} are unbalanced; expected [ipv6]:port, e.g. [::1]:9080`
    case "UnbracketedIPv6":
      return `${what} looks like an IPv6 address without brackets; write it as [ipv6]:port, e.g. [::1]:9080`
    case "InvalidHost":
      return `the host of ${what} is not a valid hostname, IPv4 or IPv6 address`
    case "MissingCount":
      return `"#" is not followed by a count; expected ${COUNT} after "#", or no "#" for 1`
    case "InvalidCount":
      return `the count is not a number; expected ${COUNT}`
    case "NegativeCount":
      return `the count is negative; expected ${COUNT}`
    case "FractionalCount":
      return `the count has a decimal point; expected ${COUNT}, written without one`
    case "ZeroCount":
      return `the count is 0; expected ${COUNT} (remove the entry to open no connections)`
    case "CountTooLarge":
      return `the count is over the maximum of ${MAX_COUNT}; expected ${COUNT}`
    case "MergedCountTooLarge":
      return `this address is listed more than once and its counts add up to more than ${MAX_COUNT}; list it once with a count of at most ${MAX_COUNT}`
    case "IncompleteRange":
      return `a count range needs both ends; expected #min..max with ${RANGE}, e.g. #2..8`
    case "InvalidRange":
      return `a count range is written with two dots between two counts; expected #min..max with ${RANGE}, e.g. #2..8`
    case "ReversedRange":
      return `the count range starts above its end; expected #min..max with min <= max (${RANGE}), e.g. #2..8`
    case "MissingService":
      return `the etcd target has no "/" before the service; expected etcd://[host:port,...]/service, e.g. etcd:///my-service (three slashes when no etcd endpoints are listed)`
    case "EmptyService":
      return `the etcd service is empty; expected a key prefix after the "/", e.g. etcd:///my-service`
    case "InvalidService":
      return `the etcd service may not contain whitespace, control or invisible formatting characters, "," or unpaired surrogates`
    case "EmptyOptions":
      return `"?" is not followed by options; expected ${OPTIONS} after "?", or no "?"`
    case "EmptyOption":
      return `an option is empty (two "&" in a row, or "&" at the start or end); expected ${OPTIONS}`
    case "MissingOptionValue":
      return `the option has no value; expected ${OPTIONS}`
    case "UnknownOption":
      return `unknown option; the options are ${OPTIONS} (in lower case; the client id of subsetting is set on the channel, not in the target)`
    case "RepeatedOption":
      return `the option is given more than once; give each option at most once`
    case "InvalidSubset":
      return `the subset option is not a subset size; expected subset=k with k a whole number 1..${MAX_SUBSET}`
    case "InvalidPick":
      return `unknown pick mode; expected pick=${PICK_MODES.join(" or pick=")}`
    case "MisplacedCount":
      return `the count goes before the options; expected ...#n?options, e.g. etcd:///my-service#2?subset=20`
  }
}

const ADDRESS_PROBLEMS: ReadonlySet<TargetProblem> = new Set<TargetProblem>([
  "EmptyEntry",
  "MissingPort",
  "InvalidPort",
  "PortOutOfRange",
  "UnbalancedBracket",
  "UnbracketedIPv6",
  "InvalidHost"
])

/** Quotes a piece of text for a message: escapes control characters, shortens long text. */
const quote = (text: string, max: number): string =>
  JSON.stringify(text.length > max ? `${text.slice(0, max - 1)}…` : text)

/**
 * A malformed target. `position` is the offset in `input` (the whole target
 * text) where `piece` starts, so `input.startsWith(piece, position)` holds;
 * `problem` says what was wrong and `message` says what was expected.
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import { Target } from "grpc-anchor/core"
 * const result = Target.parse("pass:///a:1#0")
 * if (Result.isFailure(result)) result.failure // TargetError
 * // problem "ZeroCount", piece "0", position 12,
 * // message: 'the count is 0; expected a whole number 1..256 (remove the entry ...): "0" at position 12 in "pass:///a:1#0"'
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class TargetError extends Data.TaggedError("TargetError")<{
  readonly input: string
  readonly position: number
  readonly piece: string
  readonly problem: TargetProblem
}> {
  override get message(): string {
    const where = this.input.length <= 200 ? `in ${quote(this.input, 200)}` : `in a target of ${this.input.length} characters`
    return `${describe(this.problem, this.what())}: ${quote(this.piece, 80)} at position ${this.position} ${where}`
  }

  /** Whether an address problem is about an etcd endpoint or a backend address. */
  private what(): string {
    if (!ADDRESS_PROBLEMS.has(this.problem)) return "the address"
    if (!this.input.startsWith("etcd://")) return this.problem === "EmptyEntry" ? "an entry" : "the address"
    const slash = this.input.indexOf("/", ETCD_PREFIX.length)
    // An empty endpoint just before the "/" starts at the slash itself; the service starts after it.
    const inAuthority = slash === -1 || this.position <= slash
    if (inAuthority) return this.problem === "EmptyEntry" ? "an etcd endpoint" : "the etcd endpoint"
    return "the address"
  }
}

const PASS_PREFIX = "pass://"
const ETCD_PREFIX = "etcd://"
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*$/
const DIGITS = /^[0-9]+$/
const DECIMAL = /^(?:[0-9]+\.[0-9]*|\.[0-9]+)$/

type Parsed<A> = Result.Result<A, TargetError>

/**
 * Parses a target. Total: any string gives a `Success` with the target or a
 * `Failure` with a {@link TargetError}; nothing is thrown. Linear time in the length of
 * `text`.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * Target.parse("etcd://10.0.0.5:2379/prod/billing#3")
 * // Success({ _tag: "Etcd", etcd: [{ host: "10.0.0.5", port: 2379 }], service: "prod/billing",
 * //           count: 3, maxCount: 3, options: {} })
 * Target.parse("pass:///a:1#2..8?subset=2") // Success: a:1 starts with 2 connections, grows to 8; subset size 2
 * Target.parse("pass:///a:1,,b:2") // Failure(TargetError EmptyEntry at position 12)
 * Target.parse("etcd:///svc?subset=0") // Failure(TargetError InvalidSubset at position 19)
 * ```
 *
 * @category parsing
 * @since 0.1.0
 */
export const parse = (text: string): Parsed<Target> => {
  const fail = (position: number, piece: string, problem: TargetProblem): Parsed<never> =>
    Result.fail(new TargetError({ input: text, position, piece, problem }))

  if (text.length === 0) return fail(0, text, "EmptyTarget")
  const colon = text.indexOf(":")
  const scheme = colon === -1 ? "" : text.slice(0, colon)
  if (colon <= 0 || !SCHEME.test(scheme)) return fail(0, text, "MissingScheme")
  const slashes = text.startsWith("//", colon + 1)
  if (scheme === "pass" || scheme === "etcd") {
    if (!slashes) return fail(colon + 1, text.slice(colon + 1), "MissingSlashes")
    // The options start at the first "?": no address, etcd endpoint, service or count contains one.
    const question = text.indexOf("?", colon + 3)
    const end = question === -1 ? text.length : question
    const body = scheme === "pass" ? parsePass(text, end, fail) : parseEtcd(text, end, fail)
    if (Result.isFailure(body) || question === -1) return body
    const options = parseOptions(text, question, fail)
    return Result.isFailure(options) ? Result.fail(options.failure) : Result.succeed({ ...body.success, options: options.success })
  }
  // `host:port` without a scheme looks like a scheme followed by a port.
  return slashes ? fail(0, scheme, "UnknownScheme") : fail(0, text, "MissingScheme")
}

type Fail = (position: number, piece: string, problem: TargetProblem) => Parsed<never>

const NO_OPTIONS: Options = {}

const parsePass = (text: string, end: number, fail: Fail): Parsed<Target> => {
  const start = PASS_PREFIX.length
  if (start === end || text.charCodeAt(start) !== SLASH) {
    const slash = text.indexOf("/", start)
    return fail(start, text.slice(start, slash === -1 || slash > end ? end : slash), "UnexpectedAuthority")
  }
  const from = start + 1
  if (from === end) return fail(from, "", "EmptyList")

  const endpoints: Array<WeightedAddress> = []
  const seen = new Map<string, number>()
  // One pass over the characters: entries end at "," (or the end), the first
  // "#" of an entry starts its count.
  let entryStart = from
  let hash = -1
  for (let i = from; i <= end; i++) {
    const c = i === end ? COMMA : text.charCodeAt(i)
    if (c === HASH && hash === -1) hash = i
    if (c !== COMMA) continue
    const entry = parseEntry(text, entryStart, i, hash, fail)
    if (Result.isFailure(entry)) return Result.fail(entry.failure)
    const { address, count, maxCount } = entry.success
    const key = Address.format(address)
    const at = seen.get(key)
    if (at === undefined) {
      seen.set(key, endpoints.length)
      endpoints.push({ address, count, maxCount })
    } else {
      const merged = endpoints[at]!
      // maxCount >= count, so the maximums overflow first.
      if (merged.maxCount + maxCount > MAX_COUNT) {
        return fail(entryStart, text.slice(entryStart, i), "MergedCountTooLarge")
      }
      endpoints[at] = { address: merged.address, count: merged.count + count, maxCount: merged.maxCount + maxCount }
    }
    entryStart = i + 1
    hash = -1
  }
  return Result.succeed({ _tag: "Pass", endpoints, options: NO_OPTIONS })
}

const ONE: CountRange = { count: 1, maxCount: 1 }

const parseEntry = (
  text: string,
  start: number,
  end: number,
  hash: number,
  fail: Fail
): Parsed<WeightedAddress> => {
  const addressEnd = hash === -1 ? end : hash
  if (addressEnd === start) return fail(start, text.slice(start, end), "EmptyEntry")
  const address = parseAddress(text, start, addressEnd)
  if (Result.isFailure(address)) return Result.fail(address.failure)
  const range = hash === -1 ? Result.succeed(ONE) : parseHashCount(text, hash, end, fail)
  return Result.isFailure(range) ? Result.fail(range.failure) : Result.succeed({ address: address.success, ...range.success })
}

const parseAddress = (text: string, start: number, end: number): Parsed<Address.Address> =>
  Result.mapError(
    Address.parse(text.slice(start, end), start),
    (error) =>
      new TargetError({
        input: text,
        position: error.position,
        piece: error.piece,
        problem: error.problem === "Empty" ? "EmptyEntry" : error.problem
      })
  )

/** The count or count range after the "#" at `hash`, up to `end`. */
const parseHashCount = (text: string, hash: number, end: number, fail: Fail): Parsed<CountRange> =>
  hash + 1 === end ? fail(hash, "#", "MissingCount") : parseRange(text, hash + 1, end, fail)

/** `N` or `MIN..MAX` in `text` from `from` (not empty) up to `end`. */
const parseRange = (text: string, from: number, end: number, fail: Fail): Parsed<CountRange> => {
  const piece = text.slice(from, end)
  const dots = piece.indexOf("..")
  if (dots === -1) {
    const count = parseBound(text, from, end, fail)
    return Result.isFailure(count) ? Result.fail(count.failure) : Result.succeed({ count: count.success, maxCount: count.success })
  }
  const maxFrom = from + dots + 2
  // "2...8", "2..8..9": more dots than one range has.
  if (text.slice(maxFrom, end).includes(".")) return fail(from, piece, "InvalidRange")
  if (dots === 0 || maxFrom === end) return fail(from, piece, "IncompleteRange")
  const min = parseBound(text, from, from + dots, fail)
  if (Result.isFailure(min)) return Result.fail(min.failure)
  const max = parseBound(text, maxFrom, end, fail)
  if (Result.isFailure(max)) return Result.fail(max.failure)
  if (min.success > max.success) return fail(from, piece, "ReversedRange")
  return Result.succeed({ count: min.success, maxCount: max.success })
}

/** One count, `text` from `from` (not empty) up to `end`. */
const parseBound = (text: string, from: number, end: number, fail: Fail): Parsed<number> => {
  const piece = text.slice(from, end)
  if (DIGITS.test(piece)) {
    // Capped accumulation: a thousand-digit count must not become Infinity or
    // cost more than one pass.
    let value = 0
    for (let i = 0; i < piece.length && value <= MAX_COUNT; i++) value = value * 10 + (piece.charCodeAt(i) - ZERO)
    if (value === 0) return fail(from, piece, "ZeroCount")
    if (value > MAX_COUNT) return fail(from, piece, "CountTooLarge")
    return Result.succeed(value)
  }
  if (piece.startsWith("-")) {
    const rest = piece.slice(1)
    if (DIGITS.test(rest) || DECIMAL.test(rest)) return fail(from, piece, "NegativeCount")
  }
  if (DECIMAL.test(piece)) return fail(from, piece, "FractionalCount")
  return fail(from, piece, "InvalidCount")
}

const parseEtcd = (text: string, end: number, fail: Fail): Parsed<Target> => {
  const start = ETCD_PREFIX.length
  const found = text.indexOf("/", start)
  if (found === -1 || found >= end) return fail(start, text.slice(start, end), "MissingService")
  const slash = found

  const etcd: Array<Address.Address> = []
  const seen = new Set<string>()
  if (slash > start) {
    let entryStart = start
    for (let i = start; i <= slash; i++) {
      if (i < slash && text.charCodeAt(i) !== COMMA) continue
      if (i === entryStart) return fail(entryStart, "", "EmptyEntry")
      const address = parseAddress(text, entryStart, i)
      if (Result.isFailure(address)) return Result.fail(address.failure)
      const key = Address.format(address.success)
      if (!seen.has(key)) {
        seen.add(key)
        etcd.push(address.success)
      }
      entryStart = i + 1
    }
  }

  const from = slash + 1
  let serviceEnd = end
  for (let i = from; i < end; i++) {
    const c = text.charCodeAt(i)
    if (c === HASH) {
      serviceEnd = i
      break
    }
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = i + 1 < end ? text.charCodeAt(i + 1) : 0
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++
        continue
      }
      return fail(i, text[i]!, "InvalidService")
    }
    if (!serviceChar(c)) return fail(i, text[i]!, "InvalidService")
  }
  if (serviceEnd === from) return fail(from, "", "EmptyService")
  const service = text.slice(from, serviceEnd)
  const range = serviceEnd === end ? Result.succeed(ONE) : parseHashCount(text, serviceEnd, end, fail)
  if (Result.isFailure(range)) return Result.fail(range.failure)
  return Result.succeed({ _tag: "Etcd", etcd, service, count: range.success.count, maxCount: range.success.maxCount, options: NO_OPTIONS })
}

const OPTION_NAMES: ReadonlySet<string> = new Set(["subset", "pick"])

/** The options after the "?" at `question`, up to the end of the text. */
const parseOptions = (text: string, question: number, fail: Fail): Parsed<Options> => {
  if (question + 1 === text.length) return fail(question, "?", "EmptyOptions")
  let subset: number | undefined
  let pick: PickMode | undefined
  const given = new Set<string>()
  let start = question + 1
  for (let i = start; i <= text.length; i++) {
    if (i < text.length && text.charCodeAt(i) !== AMPERSAND) continue
    const option = text.slice(start, i)
    if (option.length === 0) return fail(start, "", "EmptyOption")
    const hash = option.indexOf("#")
    if (hash !== -1) return fail(start + hash, option.slice(hash), "MisplacedCount")
    const equals = option.indexOf("=")
    const name = equals === -1 ? option : option.slice(0, equals)
    if (!OPTION_NAMES.has(name)) return fail(start, name.length > 0 ? name : option, "UnknownOption")
    if (given.has(name)) return fail(start, option, "RepeatedOption")
    given.add(name)
    const value = equals === -1 ? "" : option.slice(equals + 1)
    if (value.length === 0) return fail(start, option, "MissingOptionValue")
    const at = start + equals + 1
    if (name === "subset") {
      if (!DIGITS.test(value)) return fail(at, value, "InvalidSubset")
      let size = 0
      for (let j = 0; j < value.length && size <= MAX_SUBSET; j++) size = size * 10 + (value.charCodeAt(j) - ZERO)
      if (size === 0 || size > MAX_SUBSET) return fail(at, value, "InvalidSubset")
      subset = size
    } else {
      const mode = PICK_MODES.find((known) => known === value)
      if (mode === undefined) return fail(at, value, "InvalidPick")
      pick = mode
    }
    start = i + 1
  }
  return Result.succeed({ ...(subset === undefined ? {} : { subset }), ...(pick === undefined ? {} : { pick }) })
}

/**
 * Whether a UTF-16 code unit (not a surrogate) may appear in a service.
 * etcd keys are arbitrary bytes, but a service is typed into configuration
 * and logged: characters a person cannot see or that would be trimmed are
 * rejected rather than sent to etcd as a prefix that never matches. ("?"
 * ends the service: the target's options follow it.)
 */
const serviceChar = (c: number): boolean =>
  !(
    c <= 0x20 || // C0 controls and space
    c === COMMA ||
    (c >= 0x7f && c <= 0xa0) || // DEL, C1 controls, no-break space
    c === 0xad || // soft hyphen
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200f) || // spaces, zero-width characters, direction marks
    (c >= 0x2028 && c <= 0x202f) || // line/paragraph separators, embedding controls, narrow no-break space
    (c >= 0x205f && c <= 0x206f) || // medium mathematical space, invisible operators, deprecated format controls
    c === 0x3000 ||
    c === 0xfeff || // byte-order mark
    (c >= 0xdc00 && c <= 0xdfff) // a low surrogate without its high surrogate
  )

const SLASH = 0x2f
const COMMA = 0x2c
const HASH = 0x23
const AMPERSAND = 0x26
const ZERO = 0x30

/**
 * Like {@link parse}, but throws the {@link TargetError}.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * Target.parseUnsafe("etcd:///my-service#2")
 * // { _tag: "Etcd", etcd: [], service: "my-service", count: 2, maxCount: 2, options: {} }
 * Target.parseUnsafe("http://x") // throws TargetError (UnknownScheme)
 * ```
 *
 * @category parsing
 * @since 0.3.0
 */
export const parseUnsafe = (text: string): Target => Result.getOrThrowWith(parse(text), (error) => error)

/**
 * Parses a count or count range on its own, as written after `#` (`"4"`,
 * `"2..8"`), e.g. from a flag or an etcd record's metadata. Positions in the
 * error are offsets in `text`.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * Target.parseCount("2..8") // Success({ count: 2, maxCount: 8 })
 * Target.parseCount("4") // Success({ count: 4, maxCount: 4 })
 * Target.parseCount("8..2") // Failure(TargetError ReversedRange)
 * ```
 *
 * @category parsing
 * @since 0.2.0
 */
export const parseCount = (text: string): Parsed<CountRange> => {
  const fail: Fail = (position, piece, problem) => Result.fail(new TargetError({ input: text, position, piece, problem }))
  return text.length === 0 ? fail(0, "", "InvalidCount") : parseRange(text, 0, text.length, fail)
}

/**
 * Like {@link parseCount}, but throws the {@link TargetError}.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * Target.parseCountUnsafe("2..8") // { count: 2, maxCount: 8 }
 * Target.parseCountUnsafe("0") // throws TargetError (ZeroCount)
 * ```
 *
 * @category parsing
 * @since 0.3.0
 */
export const parseCountUnsafe = (text: string): CountRange => Result.getOrThrowWith(parseCount(text), (error) => error)

/**
 * Writes a count range as it follows `#`: `"4"` for a fixed count, `"2..8"`
 * for a range (the inverse of {@link parseCount}).
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * Target.formatCount({ count: 2, maxCount: 8 }) // "2..8"
 * Target.formatCount({ count: 3, maxCount: 3 }) // "3"
 * ```
 *
 * @category formatting
 * @since 0.2.0
 */
export const formatCount = (range: CountRange): string =>
  range.count === range.maxCount ? `${range.count}` : `${range.count}..${range.maxCount}`

const withCount = (text: string, range: CountRange): string =>
  range.count === 1 && range.maxCount === 1 ? text : `${text}#${formatCount(range)}`

/**
 * Writes a target's options as they follow `?` (in the fixed order `subset`,
 * `pick`), or `""` when there are none.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * Target.formatOptions({ pick: "least_request", subset: 20 }) // "subset=20&pick=least_request"
 * Target.formatOptions({}) // ""
 * ```
 *
 * @category formatting
 * @since 0.2.0
 */
export const formatOptions = (options: Options): string => {
  const parts: Array<string> = []
  if (options.subset !== undefined) parts.push(`subset=${options.subset}`)
  if (options.pick !== undefined) parts.push(`pick=${options.pick}`)
  return parts.join("&")
}

const withOptions = (text: string, options: Options): string => {
  const query = formatOptions(options)
  return query.length === 0 ? text : `${text}?${query}`
}

/**
 * Writes a target in canonical form: addresses through `Address.format`
 * (lower case, IPv6 in brackets), `#N` omitted when N is 1, `#N..N` written
 * `#N`, options in the order `subset`, `pick`. For any parsed target `t`,
 * `parse(format(t))` equals `t`, and `format` of a canonical text gives the
 * same text back.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * Target.format(Target.parseUnsafe("pass:///:9080#1,[0:0::1]:9090#2")) // "pass:///localhost:9080,[::1]:9090#2"
 * Target.format(Target.parseUnsafe("etcd://E1:2379/svc#1")) // "etcd://e1:2379/svc"
 * Target.format(Target.parseUnsafe("pass:///a:1#1..4,a:1#2..2?pick=round_robin")) // "pass:///a:1#3..6?pick=round_robin"
 * ```
 *
 * @category formatting
 * @since 0.1.0
 */
export const format = (target: Target): string => {
  switch (target._tag) {
    case "Pass":
      return withOptions(`pass:///${target.endpoints.map((e) => withCount(Address.format(e.address), e)).join(",")}`, target.options)
    case "Etcd":
      return withOptions(withCount(`etcd://${target.etcd.map(Address.format).join(",")}/${target.service}`, target), target.options)
  }
}
