/**
 * The registry of live service watches (`Discovery.watch`, which the `etcd`
 * resolver runs per channel): per watch, its restarts by reason, its last
 * answer from etcd and the endpoints it knows. Discovery keeps the counters
 * as it goes (a few per watch response, never per call); metrics read them
 * at collection time. Internal.
 */
import * as LiveSet from "../../internal/liveSet.js"

/**
 * Why a service watch started again:
 * - `member_failover`: its stream moved to another etcd member (no relist);
 * - `compacted`: etcd compacted the revision it watched from (relist);
 * - `revision_reset`: etcd's revision went back, restored or wiped (relist);
 * - `cancelled`: etcd cancelled it for another transient reason (relist);
 * - `unreachable`: a listing failed (etcd unreachable or without leader) and is retried.
 */
export type RestartReason = "member_failover" | "compacted" | "revision_reset" | "cancelled" | "unreachable"

export const RESTART_REASONS: ReadonlyArray<RestartReason> = ["member_failover", "compacted", "revision_reset", "cancelled", "unreachable"]

/** One live watch of a service. */
export class ServiceWatch {
  readonly restarts: Record<RestartReason, number> = { member_failover: 0, compacted: 0, revision_reset: 0, cancelled: 0, unreachable: 0 }
  /** When etcd last answered this watch (a listing, a watch response or progress notification), ms since the epoch; 0: never. */
  lastContact = 0
  /** Endpoints in the last set. */
  endpoints = 0
  constructor(readonly service: string) {}
}

const live = LiveSet.make<ServiceWatch>()

export const { track, untrack } = live

/** The live watches now. */
export const watches = live.all
