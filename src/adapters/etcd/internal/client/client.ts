/**
 * The etcd v3 client: one gRPC channel per member, unary requests with a
 * deadline per member and failover to the next, streams opened on the best
 * member, a prober that re-admits suspect members, authentication, and
 * (optionally) the member list learned from etcd. Which member to ask is
 * decided by the pure `EtcdMembers` core. Internal; `Etcd` wraps it.
 */
import * as grpc from "@grpc/grpc-js"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Latch from "effect/Latch"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as EtcdMembers from "../../../../core/EtcdMembers.js"
import { EtcdError, isMemberFault, isStaleToken, messageOf, tlsRefusal, toEtcdError } from "../error.js"
import { channelOptions, dialAddress, type Duplex, duplex, unary } from "./connection.js"
import { type Method, methods } from "./proto.js"

/** What the client is built from (checked and defaulted by `Etcd.make`). */
export interface ClientConfig {
  /** `host:port`, optionally with `http://`/`https://`. */
  readonly hosts: ReadonlyArray<string>
  readonly credentials: grpc.ChannelCredentials
  readonly auth: { readonly username: string; readonly password: string } | undefined
  /** Deadline of one unary request, failover included (ms). */
  readonly callTimeout: number
  /** How long a member may stay silent before the client moves to another (ms). */
  readonly memberTimeout: number
  readonly keepaliveTime: number
  readonly keepaliveTimeout: number
  /** Interval of member list syncs (ms); undefined: never. */
  readonly autoSync: number | undefined
  /** Cut out of every error message (the password). */
  readonly secrets: ReadonlyArray<string>
}

/** The client. */
export interface Client {
  readonly config: ClientConfig
  /** The members known now (configured ones, and learned ones with autoSync), with their health. */
  readonly members: Effect.Effect<ReadonlyArray<EtcdMembers.Member>>
  /** A unary request with failover; `operation` names it in errors. */
  readonly request: <Req, Res>(operation: string, method: Method<Req, Res>, request: Req) => Effect.Effect<Res, EtcdError>
  /**
   * Opens a bidirectional stream on the best member (healthy first), with
   * `hasleader` (a member that loses its leader ends the stream) and the
   * auth token; closed with the scope.
   */
  readonly open: <Req, Res>(
    operation: string,
    method: Method<Req, Res>
  ) => Effect.Effect<{ readonly host: string; readonly since: number; readonly stream: Duplex<Req, Res> }, EtcdError, Scope.Scope>
  /** Reports that `host` answered (`answer` tells which member it is) / failed or stayed silent. */
  readonly succeeded: (host: string, answer?: unknown) => Effect.Effect<void>
  readonly failed: (host: string) => Effect.Effect<void>
  /** Whether `host` failed (for anyone) since `open` gave `since` for it. */
  readonly failedSince: (host: string, since: number) => Effect.Effect<boolean>
  /** Forgets the auth token (etcd said it is invalid): the next call authenticates again. */
  readonly resetToken: Effect.Effect<void>
  readonly toError: (cause: unknown, operation: string) => EtcdError
}

/** How one round of a request ended. */
type RoundOutcome<Res> =
  | { readonly _tag: "Answered"; readonly response: Res }
  | { readonly _tag: "Refused"; readonly error: EtcdError }
  | {
      readonly _tag: "AllFailed"
      readonly last: unknown
      /** Some member answered with etcd's own error, or did not answer in time: another round may work. */
      readonly electing: boolean
      /** Some member no longer took the auth token. */
      readonly staleToken: boolean
    }

const noAnswer = (operation: string, millis: number, last: unknown, toError: Client["toError"]): EtcdError =>
  new EtcdError({
    reason: "Unavailable",
    operation,
    cause: last,
    detail: `no answer within ${Duration.format(Duration.millis(millis))}${
      last === undefined ? "" : ` (last error: ${toError(last, operation).detail})`
    }`
  })

/**
 * Builds a client; every channel is closed when the scope closes. Nothing
 * is dialled until the first request (or the first member list sync, a
 * second after it is built).
 */
export const make = (config: ClientConfig): Effect.Effect<Client, never, Scope.Scope> =>
  Effect.gen(function* () {
    const toError = (cause: unknown, operation: string) => toEtcdError(cause, operation, config.secrets)
    const members = yield* Ref.make(EtcdMembers.make(config.hosts.map(dialAddress)))
    const channels = new Map<string, grpc.Client>()
    const options = channelOptions(config.keepaliveTime, config.keepaliveTimeout)
    const closed = { value: false }
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed.value = true
        for (const channel of channels.values()) channel.close()
        channels.clear()
      })
    )
    const channel = (host: string): grpc.Client => {
      let client = channels.get(host)
      if (client === undefined) {
        client = new grpc.Client(host, config.credentials, options)
        channels.set(host, client)
      }
      return client
    }
    const closedError = (operation: string) =>
      new EtcdError({ reason: "Closed", operation, cause: undefined, detail: "the etcd client is closed" })

    // -- member health --------------------------------------------------------
    const wake = yield* Latch.make(false)
    const streamsOpen = yield* Latch.make(false)
    /** Which etcd member answers at each host (from answers' headers): autoSync adds no second host for one member. */
    const memberIds = new Map<string, bigint>()
    /** Failures of each host so far, never reset: a stream ends when its host failed after it opened. */
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

    // -- authentication --------------------------------------------------------
    const token = yield* Ref.make<string | undefined>(undefined)
    /** A request still unanswered this long is also sent to the next member. */
    const hedgeAfter = Math.max(20, Math.floor(config.memberTimeout * 0.3))
    const authLock = yield* Semaphore.make(1)
    /** A unary call on `host`, unless the client is closed (no channel is made again after close). */
    const call = <Req, Res>(
      host: string,
      method: Method<Req, Res>,
      request: Req,
      meta: grpc.Metadata,
      ms: number,
      operation: string
    ): Effect.Effect<Res, grpc.ServiceError | EtcdError> =>
      Effect.suspend((): Effect.Effect<Res, grpc.ServiceError | EtcdError> => (closed.value ? Effect.fail(closedError(operation)) : unary(channel(host), method, request, meta, ms)))

    /**
     * One round of a request over `hosts` (in order): the first member is
     * asked at once, the next one when an attempt fails or after
     * `hedgeAfter` without an answer (a hung member, or a follower whose
     * proposal went to a hung leader, must not hold the request for a whole
     * member timeout), the earlier attempts still running. The first answer
     * wins and the other attempts are cancelled. No attempt runs past
     * `deadline`.
     */
    const round = <Req, Res>(
      operation: string,
      method: Method<Req, Res>,
      request: Req,
      meta: grpc.Metadata,
      hosts: ReadonlyArray<string>,
      attemptMs: number,
      deadline: number
    ) =>
      Effect.scoped(
        Effect.gen(function* () {
          const outcome = yield* Deferred.make<RoundOutcome<Res>>()
          const progress = { launched: 0, failed: 0, last: undefined as unknown, electing: false, staleToken: false }
          /** Attempts not finished yet: host -> when it was asked. */
          const pending = new Map<string, number>()
          const allFailed = Effect.suspend(() =>
            Deferred.succeed(outcome, { _tag: "AllFailed", last: progress.last, electing: progress.electing, staleToken: progress.staleToken })
          )
          const launch: Effect.Effect<void, never, Scope.Scope> = Effect.gen(function* () {
            if (progress.launched >= hosts.length) return
            const host = hosts[progress.launched++]!
            const now = yield* Clock.currentTimeMillis
            const ms = Math.min(attemptMs, deadline - now)
            if (ms <= 0) {
              if (++progress.failed >= hosts.length) yield* allFailed
              return
            }
            pending.set(host, now)
            const attempt = call(host, method, request, meta, ms, operation).pipe(
              Effect.ensuring(Effect.sync(() => pending.delete(host))),
              Effect.matchEffect({
                onSuccess: (response) =>
                  Effect.andThen(succeeded(host, response), Deferred.succeed(outcome, { _tag: "Answered", response })),
                onFailure: (error): Effect.Effect<unknown, never, Scope.Scope> => {
                  if (error instanceof EtcdError) return Deferred.succeed(outcome, { _tag: "Refused", error })
                  const staleToken = isStaleToken(error) && config.auth !== undefined
                  // A certificate one member presents may be wrong while the others' are fine.
                  const tls = tlsRefusal(messageOf(error)) !== undefined
                  if (!staleToken && !tls && !isMemberFault(error)) {
                    return Deferred.succeed(outcome, { _tag: "Refused", error: toError(error, operation) })
                  }
                  progress.last = error
                  // etcd's own word (an election, a timed-out proposal) or no
                  // answer in time (a proposal forwarded to a hung leader): asking again may work.
                  progress.electing ||= /etcdserver:/.test(error.message) || error.code === grpc.status.DEADLINE_EXCEEDED
                  progress.staleToken ||= staleToken
                  return Effect.gen(function* () {
                    if (!staleToken) {
                      yield* failed(host)
                      if (hosts.length > 1) {
                        yield* Effect.logDebug(`etcd ${operation}: ${host} failed (${toError(error, operation).detail}); trying the next member`)
                      }
                    }
                    if (++progress.failed < hosts.length) return yield* launch
                    yield* allFailed
                  })
                }
              })
            )
            yield* Effect.forkScoped(attempt)
          })
          yield* launch
          if (hosts.length > 1) {
            yield* Effect.forkScoped(
              Effect.sleep(Duration.millis(hedgeAfter)).pipe(Effect.andThen(launch), Effect.repeat({ times: hosts.length - 2 }))
            )
          }
          const result = yield* Deferred.await(outcome)
          if (result._tag === "Answered") {
            // Another member answered first: one that had not answered
            // within hedgeAfter is suspect (probed before it is used again).
            const now = yield* Clock.currentTimeMillis
            for (const [host, askedAt] of pending) {
              if (now - askedAt < hedgeAfter) continue
              yield* failed(host)
              yield* Effect.logDebug(`etcd ${operation}: ${host} did not answer within ${now - askedAt} ms while another member did`)
            }
          }
          return result
        })
      )

    /**
     * Sends one request to the members in rounds (see {@link round}) until
     * one answers, etcd refuses it, or the call timeout is over.
     */
    const failover = <Req, Res>(operation: string, method: Method<Req, Res>, request: Req, metadata: Effect.Effect<grpc.Metadata, EtcdError>) =>
      Effect.gen(function* () {
        const start = yield* Clock.currentTimeMillis
        const deadline = start + config.callTimeout
        const timedOut = (last: unknown) => Effect.fail(noAnswer(operation, config.callTimeout, last, toError))
        let last: unknown = undefined
        let reauthenticated = false
        for (let n = 0; ; n++) {
          if (closed.value) return yield* closedError(operation)
          const remaining = deadline - (yield* Clock.currentTimeMillis)
          if (remaining <= 0) return yield* timedOut(last)
          // The token (authenticating if need be) within the same deadline.
          const meta = yield* metadata.pipe(Effect.timeoutOrElse({ duration: Duration.millis(remaining), orElse: () => timedOut(last) }))
          const hosts = yield* ordered
          // A lone member gets the whole deadline; otherwise the member
          // timeout (doubled each round, for a slow cluster).
          const attemptMs = hosts.length === 1 ? remaining : config.memberTimeout * 2 ** Math.min(n, 8)
          const outcome = yield* round(operation, method, request, meta, hosts, attemptMs, deadline)
          if (outcome._tag === "Answered") return outcome.response
          if (outcome._tag === "Refused") return yield* outcome.error
          last = outcome.last
          if (outcome.staleToken && !reauthenticated) {
            // etcd no longer takes the token: authenticate again, at once.
            reauthenticated = true
            yield* Ref.set(token, undefined)
            continue
          }
          // Unreachable members fail fast (the caller has its own retry
          // schedule); during an election, or when members were only too slow,
          // wait a little and ask again (with a longer member timeout).
          if (!outcome.electing) return yield* toError(last, operation)
          const left = deadline - (yield* Clock.currentTimeMillis)
          if (left <= 0) return yield* timedOut(last)
          yield* Effect.sleep(Duration.millis(Math.min(left, 50 * 2 ** Math.min(n, 4))))
        }
      })

    const authenticate: Effect.Effect<string, EtcdError> = authLock.withPermits(1)(
      Effect.gen(function* () {
        const known = yield* Ref.get(token)
        if (known !== undefined) return known
        const auth = config.auth!
        const response = yield* failover(
          "authenticate",
          methods.authenticate,
          { name: auth.username, password: auth.password },
          Effect.succeed(new grpc.Metadata())
        )
        yield* Ref.set(token, response.token)
        return response.token
      })
    )

    const metadata = (stream: boolean): Effect.Effect<grpc.Metadata, EtcdError> =>
      Effect.gen(function* () {
        const meta = new grpc.Metadata()
        // A member without a leader ends a stream opened with this (clientv3's WithRequireLeader).
        if (stream) meta.set("hasleader", "true")
        if (config.auth !== undefined) meta.set("token", yield* authenticate)
        return meta
      })

    const request = <Req, Res>(operation: string, method: Method<Req, Res>, body: Req) =>
      failover(operation, method, body, metadata(false))

    const open = <Req, Res>(operation: string, method: Method<Req, Res>) =>
      Effect.gen(function* () {
        if (closed.value) return yield* closedError(operation)
        const hosts = yield* ordered
        const host = hosts[0]!
        const meta = yield* metadata(true)
        yield* Effect.acquireRelease(
          Effect.sync(() => streamHosts.set(host, (streamHosts.get(host) ?? 0) + 1)).pipe(Effect.andThen(streamsOpen.open)),
          () => Effect.sync(() => (streamHosts.get(host) === 1 ? streamHosts.delete(host) : streamHosts.set(host, streamHosts.get(host)! - 1)))
        )
        const since = strikes.get(host) ?? 0
        const stream = yield* duplex(channel(host), method, meta)
        return { host, since, stream }
      })

    /** Whether `host` answers its status within the member timeout, and has a leader. */
    const hasLeader = (host: string) =>
      metadata(false).pipe(
        Effect.flatMap((meta) => call(host, methods.status, {}, meta, config.memberTimeout, `status of ${host}`)),
        Effect.map((status) => status.leader !== 0n)
      )

    // -- leader checks of the members that carry streams ------------------------
    // etcd ends a `hasleader` stream only after its member has had no leader
    // for 3 more election timeouts (its monitorLeader), about 4 s with the
    // default 1 s election timeout, while a member cut off from its peers
    // still answers heartbeats from its own state. Asking such a member for
    // its status shows it has no leader one election timeout after it lost
    // its peers: it is then suspect, and its streams move.
    const streamHosts = new Map<string, number>()
    const leaderCheck = Effect.gen(function* () {
      // No stream, no timer: an idle client keeps no process alive.
      if (streamHosts.size === 0) {
        yield* streamsOpen.close
        if (streamHosts.size === 0) yield* streamsOpen.await
        return
      }
      yield* Effect.sleep(Duration.millis(Math.max(500, config.memberTimeout)))
      const hosts = [...streamHosts.keys()]
      yield* Effect.forEach(
        hosts,
        (host) =>
          Effect.gen(function* () {
            if (!(yield* isHealthy(host)) || (yield* hasLeader(host))) return
            yield* failed(host)
            yield* Effect.logDebug(`etcd member ${host} has no leader (cut off from its peers?); its streams move`)
          }).pipe(Effect.ignore),
        { concurrency: "unbounded", discard: true }
      )
    }).pipe(Effect.forever)
    yield* Effect.forkScoped(leaderCheck)

    // -- probes of suspect members --------------------------------------------
    // Alive but without a leader (cut off from its peers): still suspect.
    const probe = (host: string) =>
      hasLeader(host).pipe(Effect.flatMap((leader) => (leader ? succeeded(host) : Effect.void)), Effect.ignore)
    const probeLoop = Effect.gen(function* () {
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
    yield* Effect.forkScoped(probeLoop)

    // -- member list sync --------------------------------------------------------
    if (config.autoSync !== undefined) {
      const configured = config.hosts.map(dialAddress)
      const sync = request("member list", methods.memberList, {}).pipe(
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
      yield* Effect.forkScoped(
        Effect.sleep("1 second").pipe(Effect.andThen(Effect.repeat(sync, Schedule.spaced(Duration.millis(config.autoSync)))))
      )
    }

    return {
      config,
      members: Effect.map(Ref.get(members), (state) => state.members),
      request,
      open,
      succeeded,
      failed,
      failedSince,
      resetToken: Ref.set(token, undefined),
      toError
    }
  })
