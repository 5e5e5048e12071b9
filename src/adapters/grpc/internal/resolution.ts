/**
 * What both grpc-anchor resolvers hand the policy for one address list: the
 * weighted addresses cut down to the client's subset (`?subset=K`), their
 * counts and count ranges, and the target's pick mode, as one
 * {@link Resolution}. Internal: the resolvers export the channel option.
 */
import * as os from "node:os"
import type { ChannelOptions } from "@grpc/grpc-js"
import type * as Balancer from "../../../core/Balancer.js"
import type * as Expansion from "../../../core/Expansion.js"
import * as Subset from "../../../core/Subset.js"
import type * as Target from "../../../core/Target.js"
import type { Resolution, SubsetState } from "./keys.js"

/**
 * Channel option naming this client for deterministic subsetting
 * (`?subset=K` targets): a client index (a whole number 0..2^32-1, or its
 * decimal text; give the M clients of a service the indices 0..M-1 for the
 * best balance) or any other non-empty text (a name: rendezvous hashing,
 * minimal churn, balance like random choices). Default
 * {@link defaultClientId}.
 */
export const CLIENT_ID_OPTION = "grpc_anchor.client_id"

/**
 * The client id when the channel sets none: `${hostname}/${pid}`, a name,
 * stable for the life of the process and distinct between processes.
 */
export const defaultClientId = (): string => `${os.hostname()}/${process.pid}`

/**
 * The client id of a channel: its {@link CLIENT_ID_OPTION}, else
 * {@link defaultClientId}.
 *
 * @throws Error naming the option when its value is not a client id (the
 * channel constructor fails with it).
 */
export const clientIdOf = (options: ChannelOptions): Subset.ClientId => {
  const given: unknown = options[CLIENT_ID_OPTION]
  if (given === undefined) return defaultClientId()
  if (typeof given === "number" && Number.isInteger(given) && given >= 0 && given <= 0xffff_ffff) return given
  if (typeof given === "string" && given.length > 0) return given
  throw new Error(
    `channel option ${CLIENT_ID_OPTION} is ${typeof given === "string" ? '""' : String(given)}; expected a client index ` +
      `(a whole number 0..4294967295, e.g. the ordinal of this client among the service's clients) or a non-empty name`
  )
}

/**
 * The addresses of `weighted` this client connects to: all of them without
 * `subset`, else the `subset` chosen by `Subset.select` over their
 * (canonical) addresses for `clientId`, in the order of `weighted`.
 */
export const subsetOf = (
  weighted: ReadonlyArray<Expansion.Weighted>,
  subset: number | undefined,
  clientId: Subset.ClientId
): ReadonlyArray<Expansion.Weighted> => {
  if (subset === undefined || weighted.length <= subset) return weighted
  const chosen = new Set(Subset.select(weighted.map((w) => w.address), subset, clientId))
  return weighted.filter((w) => chosen.has(w.address))
}

/** The resolution attribute for `weighted` (already subset) of target `target`, over the cap doing `overCap`. */
export const resolutionOf = (
  target: string,
  weighted: ReadonlyArray<Expansion.Weighted>,
  options: Target.Options,
  overCap: Balancer.OverCap,
  serverNames: ReadonlyMap<string, string> = new Map(),
  subset?: SubsetState
): Resolution => {
  const counts = new Map<string, number>()
  const maxCounts = new Map<string, number>()
  for (const w of weighted) {
    counts.set(w.address, w.count)
    if (w.maxCount !== undefined && w.maxCount > w.count) maxCounts.set(w.address, w.maxCount)
  }
  return {
    target,
    counts,
    ...(maxCounts.size > 0 ? { maxCounts } : {}),
    ...(options.pick === undefined ? {} : { pick: options.pick }),
    overCap,
    serverNames,
    ...(subset === undefined ? {} : { subset })
  }
}

/**
 * Follows a resolver's subset across its lists: each call gives the
 * subset's size and the moves so far (`Subset.moves` of each change).
 */
export const subsetTracker = (): ((members: ReadonlyArray<string>, subset: ReadonlyArray<string>) => SubsetState) => {
  let previous: Subset.Choice | undefined
  let moves = 0
  return (members, subset) => {
    const next = { members, subset }
    if (previous !== undefined) moves += Subset.moves(previous, next)
    previous = next
    return { size: subset.length, moves }
  }
}
