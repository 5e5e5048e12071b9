/**
 * The cap on a channel's connections: its error and the check a resolver
 * can run before the policy sees a list.
 *
 * @since 0.2.0
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import type * as Expansion from "../Expansion.js"
import { DEFAULT_MAX_CONNECTIONS, MAX_CONNECTIONS_OPTION } from "./options.js"


/**
 * A list of addresses whose connections add up to more than the cap.
 *
 * @category errors
 * @since 0.2.0
 */
export class ConnectionCapError extends Data.TaggedError("ConnectionCapError")<{
  readonly total: number
  readonly max: number
}> {
  override get message(): string {
    return `the target asks for ${this.total} connections, over this channel's cap of ${this.max}: lower the #N counts or the number of addresses, or raise the channel option ${MAX_CONNECTIONS_OPTION}`
  }
}

/**
 * The total number of connections of `endpoints` (duplicates added up), or a
 * {@link ConnectionCapError} when it is over `max`. For resolvers that want
 * to refuse an over-sized `pass:` target before the policy sees it.
 *
 * @example
 * ```ts
 * import { Balancer } from "grpc-anchor/core"
 * Balancer.checkCap([{ address: "a:1", count: 256 }], 100) // Failure(ConnectionCapError: ... 256 connections, over ... 100 ...)
 * ```
 *
 * @category cap
 * @since 0.2.0
 */
export const checkCap = (
  endpoints: ReadonlyArray<Expansion.Weighted>,
  max: number = DEFAULT_MAX_CONNECTIONS
): Result.Result<number, ConnectionCapError> => {
  let total = 0
  for (const endpoint of endpoints) total += endpoint.count
  return total > max ? Result.fail(new ConnectionCapError({ total, max })) : Result.succeed(total)
}

/**
 * {@link checkCap}, throwing its error.
 *
 * @category cap
 * @since 0.3.0
 */
export const checkCapUnsafe = (endpoints: ReadonlyArray<Expansion.Weighted>, max: number = DEFAULT_MAX_CONNECTIONS): number =>
  Result.getOrThrowWith(checkCap(endpoints, max), (error) => error)
