/**
 * Backend addresses: `host:port`, `[ipv6]:port`, or `:port` for the local
 * host. Parsing is pure and total: every input gives an {@link Address} or an
 * {@link AddressError} that names the offending piece and where it starts.
 *
 * @example
 * ```ts
 * import { Address } from "grpc-anchor/core"
 * Address.parseUnsafe("[0:0::1]:9080") // { host: "::1", port: 9080 }
 * Address.format({ host: "::1", port: 9080 }) // "[::1]:9080"
 * ```
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"

/**
 * A parsed backend address. `host` is lower-case; an IPv6 host is kept
 * without brackets in its RFC 5952 text form, so equal addresses are equal
 * strings.
 *
 * @example
 * ```ts
 * import { Address } from "grpc-anchor/core"
 * const address: Address.Address = Address.parseUnsafe("[0:0::1]:9080") // { host: "::1", port: 9080 }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Address {
  readonly host: string
  readonly port: number
}

/**
 * The host that `:port` stands for.
 *
 * @example
 * ```ts
 * import { Address } from "grpc-anchor/core"
 * Address.parseUnsafe(":9080").host === Address.LOCAL_HOST // true: "localhost"
 * ```
 *
 * @category constants
 * @since 0.1.0
 */
export const LOCAL_HOST = "localhost"

/**
 * What was wrong with an address.
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import { Address } from "grpc-anchor/core"
 * const result = Address.parse("10.0.0.1")
 * Result.isFailure(result) && result.failure.problem // "MissingPort"
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export type AddressProblem =
  | "Empty"
  | "MissingPort"
  | "InvalidPort"
  | "PortOutOfRange"
  | "UnbalancedBracket"
  | "UnbracketedIPv6"
  | "InvalidHost"

const describe: Record<AddressProblem, string> = {
  Empty: "the address is empty; expected host:port, [ipv6]:port or :port",
  MissingPort: "the address has no port; expected host:port, e.g. 10.0.0.1:9080",
  InvalidPort: "the port is not a whole number; expected digits 1..65535",
  PortOutOfRange: "the port is outside 1..65535",
  UnbalancedBracket: "the IPv6 brackets are unbalanced; expected [ipv6]:port, e.g. [::1]:9080",
  UnbracketedIPv6: "an IPv6 address must be written in brackets, e.g. [::1]:9080",
  InvalidHost: "the host is not a valid hostname, IPv4 or IPv6 address"
}

/**
 * A malformed address. `position` is the offset of `piece` in the text that
 * was parsed (plus the offset the caller passed in), so a caller can point at
 * it.
 *
 * @example
 * ```ts
 * import { Address } from "grpc-anchor/core"
 * try {
 *   Address.parseUnsafe("10.0.0.1:99999")
 * } catch (error) {
 *   // AddressError: problem "PortOutOfRange", piece "99999", position 9,
 *   // message 'the port is outside 1..65535: "99999" at position 9 in "10.0.0.1:99999"'
 * }
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class AddressError extends Data.TaggedError("AddressError")<{
  readonly input: string
  readonly position: number
  readonly piece: string
  readonly problem: AddressProblem
}> {
  override get message(): string {
    return `${describe[this.problem]}: "${this.piece}" at position ${this.position} in "${this.input}"`
  }

  /** The explanation without the input quoted, for callers that show their own context. */
  get reason(): string {
    return describe[this.problem]
  }
}

/**
 * Formats an address as `host:port`, with brackets around an IPv6 host.
 *
 * @example
 * ```ts
 * import { Address } from "grpc-anchor/core"
 * Address.format({ host: "::1", port: 80 }) // "[::1]:80"
 * Address.format({ host: "backend.example", port: 443 }) // "backend.example:443"
 * ```
 *
 * @category formatting
 * @since 0.1.0
 */
export const format = (address: Address): string =>
  address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`

/**
 * Two addresses are the same backend when host and port are equal (hosts are
 * canonical after parsing).
 *
 * @example
 * ```ts
 * import { Address } from "grpc-anchor/core"
 * Address.equals(Address.parseUnsafe("[0:0::1]:80"), Address.parseUnsafe("[::1]:80")) // true
 * ```
 *
 * @category equivalence
 * @since 0.1.0
 */
export const equals = (a: Address, b: Address): boolean => a.host === b.host && a.port === b.port

/**
 * Parses `host:port`, `[ipv6]:port` or `:port`. `offset` is added to every
 * reported position, for callers that parse a piece of a larger text.
 *
 * @example
 * ```ts
 * import { Address } from "grpc-anchor/core"
 * Address.parse("A.Example:080") // Success({ host: "a.example", port: 80 })
 * Address.parse("::1:80") // Failure(AddressError UnbracketedIPv6)
 * ```
 *
 * @category parsing
 * @since 0.1.0
 */
export const parse = (text: string, offset = 0): Result.Result<Address, AddressError> => {
  const fail = (position: number, piece: string, problem: AddressProblem) =>
    Result.fail(new AddressError({ input: text, position: offset + position, piece, problem }))

  if (text.length === 0) return fail(0, text, "Empty")

  let host: string
  let portText: string
  let portAt: number
  if (text.startsWith("[")) {
    const close = text.indexOf("]")
    if (close === -1) return fail(0, text, "UnbalancedBracket")
    const inner = text.slice(1, close)
    const v6 = canonicalIPv6(inner)
    if (v6 === undefined) return fail(1, inner, "InvalidHost")
    const rest = text.slice(close + 1)
    if (rest.length === 0) return fail(0, text, "MissingPort")
    if (!rest.startsWith(":")) {
      return rest.includes("]") ? fail(close + 1, rest, "UnbalancedBracket") : fail(close + 1, rest, "MissingPort")
    }
    host = v6
    portText = rest.slice(1)
    portAt = close + 2
  } else {
    if (text.includes("]")) return fail(0, text, "UnbalancedBracket")
    const colon = text.lastIndexOf(":")
    if (colon === -1) return fail(0, text, "MissingPort")
    const hostText = text.slice(0, colon)
    if (hostText.includes(":")) return fail(0, text, "UnbracketedIPv6")
    if (hostText.length === 0) {
      host = LOCAL_HOST
    } else {
      const canonical = canonicalHost(hostText)
      if (canonical === undefined) return fail(0, hostText, "InvalidHost")
      host = canonical
    }
    portText = text.slice(colon + 1)
    portAt = colon + 1
  }

  // `piece` must start at `position`, so a missing port names the whole address.
  if (portText.length === 0) return fail(0, text, "MissingPort")
  if (!/^[0-9]+$/.test(portText)) return fail(portAt, portText, "InvalidPort")
  // Leading zeros are allowed ("080"), so compare the significant digits as
  // text first: a 400-digit port must not become Infinity, and "0010000" is 10000.
  const significant = portText.replace(/^0+/, "")
  const port = significant.length > 5 ? Number.POSITIVE_INFINITY : Number(significant)
  if (port < 1 || port > 65535) return fail(portAt, portText, "PortOutOfRange")
  return Result.succeed({ host, port })
}

/**
 * Like {@link parse}, but throws the {@link AddressError}.
 *
 * @example
 * ```ts
 * import { Address } from "grpc-anchor/core"
 * Address.parseUnsafe(":9080") // { host: "localhost", port: 9080 }
 * Address.parseUnsafe("h") // throws AddressError (MissingPort)
 * ```
 *
 * @category parsing
 * @since 0.3.0
 */
export const parseUnsafe = (text: string): Address =>
  // Result.getOrThrow would throw a generic Error; the doc promises the AddressError.
  Result.getOrThrowWith(parse(text), (error) => error)

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/

/** A hostname or IPv4 address in lower case, or undefined when it is neither. */
const canonicalHost = (text: string): string | undefined => {
  // ASCII only: toLowerCase folds e.g. the Kelvin sign U+212A into "k".
  if (!/^[\x21-\x7e]*$/.test(text)) return undefined
  const lower = text.toLowerCase()
  if (lower.length > 253) return undefined
  const labels = lower.split(".")
  if (labels.every((label) => /^[0-9]+$/.test(label))) {
    // All-numeric: only a dotted-quad IPv4 address makes sense.
    if (labels.length !== 4) return undefined
    const octets = labels.map((label) => (label.length > 3 ? 256 : Number(label)))
    return octets.every((octet) => octet <= 255) ? octets.join(".") : undefined
  }
  return labels.every((label) => LABEL.test(label)) ? lower : undefined
}

/**
 * The RFC 5952 text of an IPv6 address (lower case, longest run of zero
 * groups compressed), or undefined when `text` is not an IPv6 address.
 *
 * @example
 * ```ts
 * import { Address } from "grpc-anchor/core"
 * Address.canonicalIPv6("2001:DB8:0:0:0:0:0:1") // "2001:db8::1"
 * Address.canonicalIPv6("::ffff:10.0.0.1") // "::ffff:a00:1"
 * Address.canonicalIPv6("10.0.0.1") // undefined
 * ```
 *
 * @category parsing
 * @since 0.1.0
 */
export const canonicalIPv6 = (text: string): string | undefined => {
  const lower = text.toLowerCase()
  if (lower.length === 0 || lower.length > 45) return undefined
  const halves = lower.split("::")
  if (halves.length > 2) return undefined
  // A dotted IPv4 tail may only be the last 32 bits of the whole address
  // (RFC 4291 2.2): "1.2.3.4::" is not an address.
  const groupsOf = (part: string, last: boolean): Array<number> | undefined => {
    if (part.length === 0) return []
    const out: Array<number> = []
    const pieces = part.split(":")
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!
      if (last && i === pieces.length - 1 && piece.includes(".")) {
        const v4 = canonicalHost(piece)
        if (v4 === undefined || !/^[0-9.]+$/.test(v4)) return undefined
        const [a, b, c, d] = v4.split(".").map(Number) as [number, number, number, number]
        out.push((a << 8) | b, (c << 8) | d)
      } else {
        if (!/^[0-9a-f]{1,4}$/.test(piece)) return undefined
        out.push(parseInt(piece, 16))
      }
    }
    return out
  }
  const head = groupsOf(halves[0]!, halves.length === 1)
  const tail = halves.length === 2 ? groupsOf(halves[1]!, true) : []
  if (head === undefined || tail === undefined) return undefined
  let groups: Array<number>
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length
    if (missing < 1) return undefined
    groups = [...head, ...Array<number>(missing).fill(0), ...tail]
  } else {
    if (head.length !== 8) return undefined
    groups = head
  }
  // Longest run of two or more zero groups, first one on ties (RFC 5952 4.2).
  let bestStart = -1
  let bestLength = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLength) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  const hex = (from: number, to: number) => groups.slice(from, to).map((g) => g.toString(16)).join(":")
  return bestStart === -1 ? hex(0, 8) : `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`
}
