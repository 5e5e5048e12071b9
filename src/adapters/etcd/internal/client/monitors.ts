/**
 * The etcd client's background checks, each a loop the client forks in its
 * scope: the leader checks of the members that carry streams, the probes
 * that re-admit suspect members, and the member list sync (autoSync).
 * None keeps a timer while it has nothing to do. Internal to the etcd client.
 */
import type * as grpc from "@grpc/grpc-js"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Latch from "effect/Latch"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as EtcdMembers from "../../../../core/EtcdMembers.js"
import type { EtcdError } from "../error.js"
import { dialAddress } from "./connection.js"
import type { Health } from "./health.js"
import type { MemberListResponse } from "./proto.js"

/** Whether a member answers its status within the member timeout, and has a leader. */
export type HasLeader = (host: string) => Effect.Effect<boolean, unknown>

/** The members that carry streams: open streams per host, and a latch opened when one opens. */
export interface StreamHosts {
  readonly hosts: ReadonlyMap<string, number>
  readonly opened: Latch.Latch
}

/**
 * Leader checks of the members that carry streams. etcd ends a `hasleader`
 * stream only after its member has had no leader for 3 more election
 * timeouts (its monitorLeader), about 4 s with the default 1 s election
 * timeout, while a member cut off from its peers still answers heartbeats
 * from its own state. Asking such a member for its status shows it has no
 * leader one election timeout after it lost its peers: it is then suspect,
 * and its streams move.
 */
export const leaderChecks = (streams: StreamHosts, health: Health, hasLeader: HasLeader, memberTimeout: number) =>
  Effect.gen(function* () {
    const streamHosts = streams.hosts
    // No stream, no timer: an idle client keeps no process alive.
    if (streamHosts.size === 0) {
      yield* streams.opened.close
      if (streamHosts.size === 0) yield* streams.opened.await
      return
    }
    yield* Effect.sleep(Duration.millis(Math.max(500, memberTimeout)))
    const hosts = [...streamHosts.keys()]
    yield* Effect.forEach(
      hosts,
      (host) =>
        Effect.gen(function* () {
          if (!(yield* health.isHealthy(host)) || (yield* hasLeader(host))) return
          yield* health.failed(host)
          yield* Effect.logDebug(`etcd member ${host} has no leader (cut off from its peers?); its streams move`)
        }).pipe(Effect.ignore),
      { concurrency: "unbounded", discard: true }
    )
  }).pipe(Effect.forever)

/** Probes of suspect members, when `EtcdMembers` says they are due. */
export const probes = (health: Health, hasLeader: HasLeader) => {
  const { members, wake } = health
  // Alive but without a leader (cut off from its peers): still suspect.
  const probe = (host: string) =>
    hasLeader(host).pipe(Effect.flatMap((leader) => (leader ? health.succeeded(host) : Effect.void)), Effect.ignore)
  return Effect.gen(function* () {
    yield* wake.close
    const next = EtcdMembers.nextProbe(yield* Ref.get(members))
    if (next === undefined) return yield* wake.await
    const now = yield* Clock.currentTimeMillis
    if (next > now) return yield* Effect.sleep(Duration.millis(next - now))
    const due = yield* Ref.modify(members, (state) => {
      const { hosts, state: after } = EtcdMembers.dueProbes(state, now)
      return [hosts, after] as const
    })
    yield* Effect.forEach(due, probe, { concurrency: "unbounded", discard: true })
  }).pipe(Effect.forever)
}

/**
 * The member list sync: the first a second after the client is built, then
 * every `autoSync` ms. The members etcd lists join the configured ones;
 * the channels of hosts no longer listed are closed.
 */
export const memberSync = (
  configuredHosts: ReadonlyArray<string>,
  autoSync: number,
  health: Health,
  channels: Map<string, grpc.Client>,
  memberList: Effect.Effect<MemberListResponse, EtcdError>
) => {
  const { members, memberIds } = health
  const configured = configuredHosts.map(dialAddress)
  const sync = memberList.pipe(
    Effect.flatMap((response) =>
      Effect.gen(function* () {
        // A member already reached through a configured host (a DNS name,
        // say) is not added again under the URL it advertises.
        const reached = new Set(configured.flatMap((host) => (memberIds.has(host) ? [memberIds.get(host)!] : [])))
        const learned = response.members
          .filter((member) => !member.isLearner && !reached.has(member.ID))
          .flatMap((member) => member.clientURLs.map(dialAddress))
        const hosts = [...configured, ...learned]
        yield* Ref.update(members, (state) => EtcdMembers.setHosts(state, hosts))
        // Members no longer listed: their channels are closed (a stream on one moves).
        const listed = new Set(hosts)
        for (const [host, client] of channels) {
          if (listed.has(host)) continue
          client.close()
          channels.delete(host)
        }
      })
    ),
    Effect.catchCause((cause) => Effect.logDebug("etcd member list sync failed", cause))
  )
  // The first a second after the client is built, so a config that lists
  // one member knows the others before that member can fail.
  return Effect.sleep("1 second").pipe(Effect.andThen(Effect.repeat(sync, Schedule.spaced(Duration.millis(autoSync)))))
}
