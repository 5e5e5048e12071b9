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
import * as formatting from "./target/format.js"
import { ETCD_PREFIX } from "./target/lexer.js"
import * as limits from "./target/limits.js"
import { ADDRESS_PROBLEMS, describe, quote } from "./target/messages.js"
import * as parser from "./target/parser.js"

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
export const MAX_COUNT = limits.MAX_COUNT

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
export const MAX_SUBSET = limits.MAX_SUBSET

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
export const PICK_MODES = limits.PICK_MODES

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
export const parse = (text: string): Parsed<Target> =>
  parser.parseTarget(text, (position, piece, problem) => Result.fail(new TargetError({ input: text, position, piece, problem })))

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
export const parseCount = (text: string): Parsed<CountRange> =>
  parser.parseCountText(text, (position, piece, problem) => Result.fail(new TargetError({ input: text, position, piece, problem })))

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
export const formatCount: (range: CountRange) => string = formatting.formatCount

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
export const formatOptions: (options: Options) => string = formatting.formatOptions

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
export const format: (target: Target) => string = formatting.format
