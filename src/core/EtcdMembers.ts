/**
 * Which etcd member to ask: the pure decisions of the etcd client's failover.
 *
 * A cluster's members are each either **healthy** or **suspect**. Every
 * answer from a member (a unary reply, a watch or keep-alive message) keeps
 * or makes it healthy; a member that failed or stayed silent past the
 * member timeout becomes suspect, with a probe time that backs off
 * (`probeBase` doubling up to `probeCap`) while it keeps failing.
 *
 * - {@link order}: the members to try, in order: the healthy ones first,
 *   rotated one step per call (requests and streams spread over the
 *   cluster, as clientv3's round robin does), then the
 *   suspect ones, those due for a probe first. Every member is always in the
 *   list, so with one member, or all of them suspect, a request still goes
 *   out.
 * - {@link dueProbes}: the suspect members whose probe time has come; the
 *   client asks each for its status and reports the answer.
 * - {@link setHosts}: a new member list (e.g. learned from etcd's
 *   `MemberList`); the states of kept members are kept.
 *
 * Time is an input (milliseconds); nothing here reads a clock.
 *
 * @example
 * ```ts
 * import { EtcdMembers } from "grpc-anchor/core"
 * let members = EtcdMembers.make(["127.0.0.1:2379", "127.0.0.1:22379", "127.0.0.1:32379"])
 * members = EtcdMembers.onFailure(members, "127.0.0.1:2379", 1_000)
 * EtcdMembers.order(members, 1_000).hosts // the two healthy members first, then 127.0.0.1:2379
 * ```
 *
 * @since 0.3.0
 */

/**
 * One member's state.
 *
 * @category models
 * @since 0.3.0
 */
export interface Member {
  readonly host: string
  readonly healthy: boolean
  /** Failures in a row (0 while healthy). */
  readonly failures: number
  /** When a suspect member is due for a probe (ms); 0 while healthy. */
  readonly probeAt: number
}

/**
 * How long a suspect member waits for its next probe: `probeBase` after the
 * first failure, doubling with each failure in a row, at most `probeCap`.
 *
 * @category models
 * @since 0.3.0
 */
export interface Backoff {
  readonly probeBase: number
  readonly probeCap: number
}

/**
 * The members and the round-robin cursor.
 *
 * @category models
 * @since 0.3.0
 */
export interface Members {
  readonly members: ReadonlyArray<Member>
  readonly cursor: number
  readonly backoff: Backoff
}

/**
 * The default backoff of suspect members' probes: from 250 ms, doubling, at
 * most 2 s apart, so a member that returns is back within 2 s.
 *
 * @category constants
 * @since 0.3.0
 */
export const DEFAULT_BACKOFF: Backoff = { probeBase: 250, probeCap: 2_000 }

const healthyMember = (host: string): Member => ({ host, healthy: true, failures: 0, probeAt: 0 })

/**
 * Members for `hosts` (duplicates dropped), all healthy.
 *
 * @category constructors
 * @since 0.3.0
 */
export const make = (hosts: ReadonlyArray<string>, backoff: Backoff = DEFAULT_BACKOFF): Members => ({
  members: [...new Set(hosts)].map(healthyMember),
  cursor: 0,
  backoff
})

/**
 * The members to try, in order, and the state with its cursor moved on.
 *
 * @category picking
 * @since 0.3.0
 */
export const order = (state: Members, now: number): { readonly hosts: ReadonlyArray<string>; readonly state: Members } => {
  const healthy = state.members.filter((member) => member.healthy).map((member) => member.host)
  const start = healthy.length === 0 ? 0 : state.cursor % healthy.length
  const suspect = state.members
    .filter((member) => !member.healthy)
    // Due (or overdue) probes first, then the ones that failed least.
    .sort((a, b) => Number(b.probeAt <= now) - Number(a.probeAt <= now) || a.failures - b.failures || a.probeAt - b.probeAt)
    .map((member) => member.host)
  return {
    hosts: [...healthy.slice(start), ...healthy.slice(0, start), ...suspect],
    // The cursor only ever needs to be compared modulo a member count.
    state: { ...state, cursor: (state.cursor + 1) % 720_720 }
  }
}

const update = (state: Members, host: string, f: (member: Member) => Member): Members => {
  const i = state.members.findIndex((member) => member.host === host)
  if (i < 0) return state
  const updated = f(state.members[i]!)
  // Most answers come from healthy members: nothing to copy then.
  if (updated === state.members[i]) return state
  const members = [...state.members]
  members[i] = updated
  return { ...state, members }
}

/**
 * `host` answered: it is healthy.
 *
 * @category events
 * @since 0.3.0
 */
export const onSuccess = (state: Members, host: string): Members =>
  update(state, host, (member) => (member.healthy ? member : healthyMember(host)))

/**
 * `host` failed or stayed silent at `now`: it is suspect, probed after a
 * delay that doubles with each failure in a row.
 *
 * @category events
 * @since 0.3.0
 */
export const onFailure = (state: Members, host: string, now: number): Members =>
  update(state, host, (member) => {
    const failures = member.failures + 1
    const delay = Math.min(state.backoff.probeCap, state.backoff.probeBase * 2 ** Math.min(failures - 1, 30))
    return { host, healthy: false, failures, probeAt: now + delay }
  })

/**
 * The suspect members due for a probe at `now`, and the state with their
 * next probe already pushed back (so a slow probe is not sent twice).
 *
 * @category picking
 * @since 0.3.0
 */
export const dueProbes = (state: Members, now: number): { readonly hosts: ReadonlyArray<string>; readonly state: Members } => {
  const hosts = state.members.filter((member) => !member.healthy && member.probeAt <= now).map((member) => member.host)
  return { hosts, state: hosts.reduce((acc, host) => onFailure(acc, host, now), state) }
}

/**
 * When the next probe is due (ms), or undefined when every member is healthy.
 *
 * @category picking
 * @since 0.3.0
 */
export const nextProbe = (state: Members): number | undefined => {
  let next: number | undefined
  for (const member of state.members) if (!member.healthy && (next === undefined || member.probeAt < next)) next = member.probeAt
  return next
}

/**
 * A new member list: kept members keep their state, new ones are healthy,
 * dropped ones are forgotten. An empty list changes nothing (a cluster never
 * has no members; such an answer is wrong, not news).
 *
 * @category events
 * @since 0.3.0
 */
export const setHosts = (state: Members, hosts: ReadonlyArray<string>): Members => {
  if (hosts.length === 0) return state
  const known = new Map(state.members.map((member) => [member.host, member]))
  const members = [...new Set(hosts)].map((host) => known.get(host) ?? healthyMember(host))
  return { ...state, members }
}

/**
 * The hosts, healthy or not.
 *
 * @category getters
 * @since 0.3.0
 */
export const hosts = (state: Members): ReadonlyArray<string> => state.members.map((member) => member.host)
