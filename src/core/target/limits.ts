/**
 * The limits and the list of pick modes of a target, shared by the parser,
 * the problem messages and the public `Target` module (which re-exports
 * them with their documentation).
 */
import type { PickMode } from "../Target.js"

/** See `Target.MAX_COUNT`. */
export const MAX_COUNT = 256

/** See `Target.MAX_SUBSET`. */
export const MAX_SUBSET = 10_000

/** See `Target.PICK_MODES`. */
export const PICK_MODES = ["round_robin", "least_request", "ewma"] as const satisfies ReadonlyArray<PickMode>
