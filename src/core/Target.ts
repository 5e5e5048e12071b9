/**
 * Channel targets: `pass:///ADDR[#N](,ADDR[#N])*` for a fixed list of
 * backends with N connections each, and `etcd://[HOST:PORT(,HOST:PORT)*]/SERVICE[#N]`
 * for backends discovered in etcd with N connections to each.
 *
 * Parsing is pure, total and linear in the length of the text: every input
 * gives a {@link Target} or a {@link TargetError} that names the offending
 * piece, where it starts in the whole text, and what was expected.
 *
 * Canonical form (what {@link format} writes): duplicates merged, hosts in
 * lower case, IPv6 hosts in brackets in their RFC 5952 text, `:port` written
 * as `localhost:port`, and `#N` written only when N is not 1.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * Target.unsafeParse("pass:///10.0.0.1:9080#2,10.0.0.2:9090")
 * // { _tag: "Pass", endpoints: [{ address: { host: "10.0.0.1", port: 9080 }, count: 2 },
 * //                             { address: { host: "10.0.0.2", port: 9090 }, count: 1 }] }
 * Target.format(Target.unsafeParse("pass:///A.example:1#1,a.example:1#2")) // "pass:///a.example:1#3"
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
 * @since 0.1.0
 */
export const MAX_COUNT = 256

/**
 * One backend address and how many connections to open to it (1..{@link MAX_COUNT}).
 *
 * @example
 * ```ts
 * import type { Target } from "grpc-anchor/core"
 * const weighted: Target.WeightedAddress = { address: { host: "10.0.0.1", port: 9080 }, count: 2 }
 * ```
 *
 * @since 0.1.0
 */
export interface WeightedAddress {
  readonly address: Address.Address
  readonly count: number
}

/**
 * A `pass:///` target: a fixed list of backends. Each address appears once
 * (duplicates in the text are merged and their counts added), in the order
 * of its first appearance.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * const target = Target.unsafeParse("pass:///a:1#2,b:2,a:1") // a PassTarget
 * target._tag === "Pass" && target.endpoints.map((e) => e.count) // [3, 1]
 * ```
 *
 * @since 0.1.0
 */
export interface PassTarget {
  readonly _tag: "Pass"
  readonly endpoints: ReadonlyArray<WeightedAddress>
}

/**
 * An `etcd://` target: the etcd endpoints to ask (`[]` when the authority is
 * empty, so the caller's configured default applies; duplicates removed,
 * first-appearance order), the service key prefix, and the number of
 * connections to open to each discovered backend.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * Target.unsafeParse("etcd://10.0.0.5:2379/prod/billing#3")
 * // an EtcdTarget: { _tag: "Etcd", etcd: [{ host: "10.0.0.5", port: 2379 }], service: "prod/billing", count: 3 }
 * ```
 *
 * @since 0.1.0
 */
export interface EtcdTarget {
  readonly _tag: "Etcd"
  readonly etcd: ReadonlyArray<Address.Address>
  readonly service: string
  readonly count: number
}

/**
 * A parsed target: a {@link PassTarget} or an {@link EtcdTarget}, told apart by `_tag`.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * const describe = (target: Target.Target): string =>
 *   target._tag === "Pass" ? `${target.endpoints.length} addresses` : `service ${target.service}`
 * describe(Target.unsafeParse("etcd:///billing")) // "service billing"
 * ```
 *
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
  | "MissingService"
  | "EmptyService"
  | "InvalidService"

const FORMS = `pass:///host:port[#n],... or etcd://[host:port,...]/service[#n]`
const COUNT = `a whole number 1..${MAX_COUNT}`

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
    case "MissingService":
      return `the etcd target has no "/" before the service; expected etcd://[host:port,...]/service, e.g. etcd:///my-service (three slashes when no etcd endpoints are listed)`
    case "EmptyService":
      return `the etcd service is empty; expected a key prefix after the "/", e.g. etcd:///my-service`
    case "InvalidService":
      return `the etcd service may not contain whitespace, control or invisible formatting characters, "," or unpaired surrogates`
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
 * // Success({ _tag: "Etcd", etcd: [{ host: "10.0.0.5", port: 2379 }], service: "prod/billing", count: 3 })
 * Target.parse("pass:///a:1,,b:2") // Failure(TargetError EmptyEntry at position 12)
 * ```
 *
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
    return scheme === "pass" ? parsePass(text, fail) : parseEtcd(text, fail)
  }
  // `host:port` without a scheme looks like a scheme followed by a port.
  return slashes ? fail(0, scheme, "UnknownScheme") : fail(0, text, "MissingScheme")
}

type Fail = (position: number, piece: string, problem: TargetProblem) => Parsed<never>

const parsePass = (text: string, fail: Fail): Parsed<Target> => {
  const start = PASS_PREFIX.length
  if (text.charCodeAt(start) !== SLASH) {
    const slash = text.indexOf("/", start)
    return fail(start, text.slice(start, slash === -1 ? text.length : slash), "UnexpectedAuthority")
  }
  const from = start + 1
  if (from === text.length) return fail(from, "", "EmptyList")

  const endpoints: Array<{ address: Address.Address; count: number }> = []
  const seen = new Map<string, number>()
  // One pass over the characters: entries end at "," (or the end), the first
  // "#" of an entry starts its count.
  let entryStart = from
  let hash = -1
  for (let i = from; i <= text.length; i++) {
    const c = i === text.length ? COMMA : text.charCodeAt(i)
    if (c === HASH && hash === -1) hash = i
    if (c !== COMMA) continue
    const entry = parseEntry(text, entryStart, i, hash, fail)
    if (Result.isFailure(entry)) return Result.fail(entry.failure)
    const { address, count } = entry.success
    const key = Address.format(address)
    const at = seen.get(key)
    if (at === undefined) {
      seen.set(key, endpoints.length)
      endpoints.push({ address, count })
    } else {
      const merged = endpoints[at]!
      if (merged.count + count > MAX_COUNT) {
        return fail(entryStart, text.slice(entryStart, i), "MergedCountTooLarge")
      }
      endpoints[at] = { address: merged.address, count: merged.count + count }
    }
    entryStart = i + 1
    hash = -1
  }
  return Result.succeed({ _tag: "Pass", endpoints })
}

const parseEntry = (
  text: string,
  start: number,
  end: number,
  hash: number,
  fail: Fail
): Parsed<{ address: Address.Address; count: number }> => {
  const addressEnd = hash === -1 ? end : hash
  if (addressEnd === start) return fail(start, text.slice(start, end), "EmptyEntry")
  const address = parseAddress(text, start, addressEnd)
  if (Result.isFailure(address)) return Result.fail(address.failure)
  if (hash === -1) return Result.succeed({ address: address.success, count: 1 })
  const count = parseCount(text, hash, end, fail)
  return Result.isFailure(count) ? Result.fail(count.failure) : Result.succeed({ address: address.success, count: count.success })
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

/** The count after the "#" at `hash`, up to `end`. */
const parseCount = (text: string, hash: number, end: number, fail: Fail): Parsed<number> => {
  const from = hash + 1
  const piece = text.slice(from, end)
  if (piece.length === 0) return fail(hash, "#", "MissingCount")
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

const parseEtcd = (text: string, fail: Fail): Parsed<Target> => {
  const start = ETCD_PREFIX.length
  const slash = text.indexOf("/", start)
  if (slash === -1) return fail(start, text.slice(start), "MissingService")

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
  let serviceEnd = text.length
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === HASH) {
      serviceEnd = i
      break
    }
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0
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
  if (serviceEnd === text.length) return Result.succeed({ _tag: "Etcd", etcd, service, count: 1 })
  const count = parseCount(text, serviceEnd, text.length, fail)
  return Result.isFailure(count) ? Result.fail(count.failure) : Result.succeed({ _tag: "Etcd", etcd, service, count: count.success })
}

/**
 * Whether a UTF-16 code unit (not a surrogate) may appear in a service.
 * etcd keys are arbitrary bytes, but a service is typed into configuration
 * and logged: characters a person cannot see or that would be trimmed are
 * rejected rather than sent to etcd as a prefix that never matches.
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
const ZERO = 0x30

/**
 * Like {@link parse}, but throws the {@link TargetError}.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * Target.unsafeParse("etcd:///my-service#2") // { _tag: "Etcd", etcd: [], service: "my-service", count: 2 }
 * Target.unsafeParse("http://x") // throws TargetError (UnknownScheme)
 * ```
 *
 * @since 0.1.0
 */
export const unsafeParse = (text: string): Target => Result.getOrThrowWith(parse(text), (error) => error)

const withCount = (text: string, count: number): string => (count === 1 ? text : `${text}#${count}`)

/**
 * Writes a target in canonical form: addresses through `Address.format`
 * (lower case, IPv6 in brackets), `#N` omitted when N is 1. For any parsed
 * target `t`, `parse(format(t))` equals `t`, and `format` of a canonical
 * text gives the same text back.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * Target.format(Target.unsafeParse("pass:///:9080#1,[0:0::1]:9090#2")) // "pass:///localhost:9080,[::1]:9090#2"
 * Target.format(Target.unsafeParse("etcd://E1:2379/svc#1")) // "etcd://e1:2379/svc"
 * ```
 *
 * @since 0.1.0
 */
export const format = (target: Target): string => {
  switch (target._tag) {
    case "Pass":
      return `pass:///${target.endpoints.map((e) => withCount(Address.format(e.address), e.count)).join(",")}`
    case "Etcd":
      return withCount(`etcd://${target.etcd.map(Address.format).join(",")}/${target.service}`, target.count)
  }
}
