/**
 * etcd3's fault-handling policies (its `faultHandling` option): how one call
 * is retried across members, and when a member is skipped after failures.
 * etcd3 only ever calls `execute` on them. Internal to the etcd adapters.
 */
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { type IOptions, isRecoverableError } from "etcd3"
import { watchBackoff } from "./backoff.js"
import { tlsRefusal } from "./error.js"

type FaultHandling = NonNullable<IOptions["faultHandling"]>
type Policy = NonNullable<FaultHandling["global"]>
type Execute = <T>(fn: (context: { readonly signal: AbortSignal }) => PromiseLike<T> | T, signal?: AbortSignal) => Promise<T>

const policy = (execute: Execute): Policy => ({ execute }) as unknown as Policy

/**
 * etcd3's own retry of one failed call: up to 3 immediate retries of
 * recoverable errors, as etcd3's default, so that a call can move to another
 * member.
 */
const callRetries = Schedule.recurs(3)

/**
 * Whether a failed call is retried: recoverable, and not a TLS handshake
 * refused over a certificate. Retrying that cannot help, and with auth each
 * attempt authenticates on a new channel that shares the failed connection,
 * so the later attempts only say "No connection established. Last error:
 * null" and the certificate error of the first attempt would be lost.
 */
const retryable = (error: unknown): boolean =>
  error instanceof Error && isRecoverableError(error) && tlsRefusal(error.message) === undefined

/** etcd3's global policy: {@link callRetries} of {@link retryable} errors; the last error is thrown as it was. */
const globalRetry: Policy = policy((fn, signal) => {
  const context = { signal: signal ?? new AbortController().signal }
  return Effect.runPromise(
    Effect.tryPromise({ try: async () => fn(context), catch: (error) => error }).pipe(
      Effect.retry({ schedule: callRetries, while: (error) => !context.signal.aborted && retryable(error) })
    )
  )
})

/** What etcd3 (and `isBrokenCircuit`) recognise as a call refused by a member's breaker. */
class MemberSkipped extends Error {
  readonly isBrokenCircuitError = true
  constructor(host: string, millis: number) {
    super(`etcd member ${host} skipped for ${millis} ms after consecutive failures`)
    this.name = "BrokenCircuitError"
  }
}

/**
 * A member's breaker: after 3 consecutive recoverable failures the member is
 * skipped (so a call goes to another member) for `openMillis`, then one call
 * is let through again. etcd3's default keeps a member closed for 5 s, so a
 * registration could not be put back during the first seconds after etcd
 * returned; with a single member there is nowhere else to go, so no breaker
 * at all.
 */
const memberBreaker = (host: string, openMillis: number): Policy => {
  let failures = 0
  let openUntil = 0
  return policy(async (fn, signal) => {
    if (Date.now() < openUntil) throw new MemberSkipped(host, openMillis)
    try {
      const result = await fn({ signal: signal ?? new AbortController().signal })
      failures = 0
      return result
    } catch (error) {
      if (error instanceof Error && isRecoverableError(error) && ++failures >= 3) openUntil = Date.now() + openMillis
      throw error
    }
  })
}

const passThrough: Policy = policy(async (fn, signal) => fn({ signal: signal ?? new AbortController().signal }))

/** The `faultHandling` option for a client of `hosts`. */
export const faultHandling = (hosts: ReadonlyArray<string>): FaultHandling => ({
  global: globalRetry,
  host: (host: string) => (hosts.length <= 1 ? passThrough : memberBreaker(host, 1_000)),
  watchBackoff: watchBackoff(100, 1_000) as unknown as NonNullable<FaultHandling["watchBackoff"]>
})
