/**
 * The etcd client's view of its members: the pure `EtcdMembers` state
 * (which member to ask first, which are suspect, when to probe them) behind
 * a Ref, which etcd member answers at each host, and each host's failures.
 * Internal to the etcd client.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Latch from "effect/Latch"
import * as Ref from "effect/Ref"
import * as EtcdMembers from "../../../../core/EtcdMembers.js"
import { dialAddress } from "./connection.js"

/** Member health of one client. */
export interface Health {
  /** The members' state in the core. */
  readonly members: Ref.Ref<EtcdMembers.Members>
  /** Which etcd member answers at each host (from answers' headers): autoSync adds no second host for one member. */
  readonly memberIds: ReadonlyMap<string, bigint>
  /** Opened when a member fails: the prober has work. */
  readonly wake: Latch.Latch
  /** Reports that `host` answered (`answer` tells which member it is). */
  readonly succeeded: (host: string, answer?: unknown) => Effect.Effect<void>
  /** Reports that `host` failed or stayed silent. */
  readonly failed: (host: string) => Effect.Effect<void>
  /** The hosts to ask, best first. */
  readonly ordered: Effect.Effect<ReadonlyArray<string>>
  readonly isHealthy: (host: string) => Effect.Effect<boolean>
  /** Failures of `host` so far, never reset: a stream ends when its host failed after it opened. */
  readonly strikes: (host: string) => number
  /** Whether `host` failed since `strikes(host)` was `since`. */
  readonly failedSince: (host: string, since: number) => Effect.Effect<boolean>
}

/** The health of the members at `hosts` (as configured: `http://` and `https://` are dropped). */
export const make = (hosts: ReadonlyArray<string>): Effect.Effect<Health> =>
  Effect.gen(function* () {
    const members = yield* Ref.make(EtcdMembers.make(hosts.map(dialAddress)))
    const wake = yield* Latch.make(false)
    const memberIds = new Map<string, bigint>()
    const strikes = new Map<string, number>()
    const succeeded = (host: string, answer?: unknown) =>
      Effect.suspend(() => {
        const id = (answer as { readonly header?: { readonly member_id?: unknown } } | undefined)?.header?.member_id
        if (typeof id === "bigint" && id !== 0n) memberIds.set(host, id)
        return Ref.update(members, (state) => EtcdMembers.onSuccess(state, host))
      })
    const failed = (host: string) =>
      Clock.currentTimeMillis.pipe(
        Effect.tap(() => Effect.sync(() => strikes.set(host, (strikes.get(host) ?? 0) + 1))),
        Effect.flatMap((now) => Ref.update(members, (state) => EtcdMembers.onFailure(state, host, now))),
        Effect.andThen(wake.open)
      )
    const ordered = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Ref.modify(members, (state) => {
        const { hosts, state: next } = EtcdMembers.order(state, now)
        return [hosts, next] as const
      })
    )
    const isHealthy = (host: string) =>
      Effect.map(Ref.get(members), (state) => state.members.find((member) => member.host === host)?.healthy ?? false)
    const failedSince = (host: string, since: number) => Effect.sync(() => (strikes.get(host) ?? 0) > since)
    return { members, memberIds, wake, succeeded, failed, ordered, isHealthy, strikes: (host) => strikes.get(host) ?? 0, failedSince }
  })
