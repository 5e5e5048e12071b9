/**
 * The Registrar's default backoff, re-exported by the public `Registrar`
 * module.
 */
import * as Duration from "effect/Duration"
import type * as Schedule from "effect/Schedule"
import { backoff } from "../backoff.js"

/**
 * The Registrar's backoff between failed attempts for a lease of `ttl`
 * seconds: from 100 ms, doubling, at most min(TTL / 4, 1 s) apart, jittered,
 * forever. Well below the TTL, so that a record etcd lost (or a lease etcd
 * restored) is written again within about a second of etcd answering.
 *
 * @example
 * ```ts
 * import { Registrar } from "grpc-anchor"
 * const options = { service: "billing", address: "10.0.0.7:9080", ttl: 2, retrySchedule: Registrar.retryScheduleFor(2) }
 * ```
 *
 * @since 0.3.0
 */
export const retryScheduleFor = (ttl: number): Schedule.Schedule<Duration.Duration> =>
  backoff("100 millis", Duration.millis(Math.max(50, Math.min(1_000, (ttl * 1_000) / 4))))

/**
 * The Registrar's default backoff for a TTL of 4 s or more:
 * {@link retryScheduleFor}, from 100 ms, doubling, at most 1 s apart.
 *
 * @example
 * ```ts
 * import { Registrar } from "grpc-anchor"
 * const options = { service: "billing", address: "10.0.0.7:9080", retrySchedule: Registrar.retrySchedule }
 * ```
 *
 * @since 0.1.0
 */
export const retrySchedule: Schedule.Schedule<Duration.Duration> = retryScheduleFor(10)
