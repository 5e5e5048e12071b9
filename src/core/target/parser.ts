/**
 * The target parser: one pass over the text, dispatching on the scheme to
 * the `pass:///` list or the `etcd://` endpoints and service, then the
 * options after "?". Every problem goes through the caller's `fail`, which
 * builds the `TargetError` (so this folder depends on the public module for
 * types only).
 */
import * as Result from "effect/Result"
import * as Address from "../Address.js"
import type { CountRange, Options, PickMode, Target, TargetError, TargetProblem, WeightedAddress } from "../Target.js"
import { ONE, parseHashCount, parseRange } from "./count.js"
import { AMPERSAND, COMMA, DIGITS, ETCD_PREFIX, HASH, PASS_PREFIX, SCHEME, serviceChar, SLASH, ZERO } from "./lexer.js"
import { MAX_COUNT, MAX_SUBSET, PICK_MODES } from "./limits.js"

/** What a parser gives: the value, or the target's error. */
export type Parsed<A> = Result.Result<A, TargetError>

/** Builds the failure for `piece`, which starts at `position` in the whole text. */
export type Fail = (position: number, piece: string, problem: TargetProblem) => Parsed<never>

/** A whole target (see `Target.parse`). */
export const parseTarget = (text: string, fail: Fail): Parsed<Target> => {
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

/** A count or count range on its own (see `Target.parseCount`). */
export const parseCountText = (text: string, fail: Fail): Parsed<CountRange> =>
  text.length === 0 ? fail(0, "", "InvalidCount") : parseRange(text, 0, text.length, fail)

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

const parseEntry = (
  text: string,
  start: number,
  end: number,
  hash: number,
  fail: Fail
): Parsed<WeightedAddress> => {
  const addressEnd = hash === -1 ? end : hash
  if (addressEnd === start) return fail(start, text.slice(start, end), "EmptyEntry")
  const address = parseAddress(text, start, addressEnd, fail)
  if (Result.isFailure(address)) return Result.fail(address.failure)
  const range = hash === -1 ? Result.succeed(ONE) : parseHashCount(text, hash, end, fail)
  return Result.isFailure(range) ? Result.fail(range.failure) : Result.succeed({ address: address.success, ...range.success })
}

const parseAddress = (text: string, start: number, end: number, fail: Fail): Parsed<Address.Address> => {
  const address = Address.parse(text.slice(start, end), start)
  if (Result.isSuccess(address)) return Result.succeed(address.success)
  const error = address.failure
  return fail(error.position, error.piece, error.problem === "Empty" ? "EmptyEntry" : error.problem)
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
      const address = parseAddress(text, entryStart, i, fail)
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
