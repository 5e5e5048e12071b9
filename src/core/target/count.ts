/**
 * Counts and count ranges (`4`, `2..8`) as they follow "#" in a target or
 * stand alone (`Target.parseCount`).
 */
import * as Result from "effect/Result"
import type { CountRange } from "../Target.js"
import { DECIMAL, DIGITS, ZERO } from "./lexer.js"
import { MAX_COUNT } from "./limits.js"
import type { Fail, Parsed } from "./parser.js"

/** The count of an entry without "#". */
export const ONE: CountRange = { count: 1, maxCount: 1 }

/** The count or count range after the "#" at `hash`, up to `end`. */
export const parseHashCount = (text: string, hash: number, end: number, fail: Fail): Parsed<CountRange> =>
  hash + 1 === end ? fail(hash, "#", "MissingCount") : parseRange(text, hash + 1, end, fail)

/** `N` or `MIN..MAX` in `text` from `from` (not empty) up to `end`. */
export const parseRange = (text: string, from: number, end: number, fail: Fail): Parsed<CountRange> => {
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
