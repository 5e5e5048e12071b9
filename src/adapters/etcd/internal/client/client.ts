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
import { EtcdError, isMemberFault, toEtcdError } from "../error.js"
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
  ) => Effect.Effect<{ readonly host: string; readonly stream: Duplex<Req, Res> }, EtcdError, Scope.Scope>
  /** Reports that `host` answered / failed or stayed silent. */
  readonly succeeded: (host: string) => Effect.Effect<void>
  readonly failed: (host: string) => Effect.Effect<void>
  /** Whether `host` is healthy now. */
  readonly isHealthy: (host: string) => Effect.Effect<boolean>
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
      readonly invalidToken: boolean
    }

const isInvalidToken = (cause: unknown): boolean => /etcdserver: invalid auth token/.test(String((cause as Error)?.message))

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
    const succeeded = (host: string) => Ref.update(members, (state) => EtcdMembers.onSuccess(state, host))
    const failed = (host: string) =>
      Clock.currentTimeMillis.pipe(
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

    // -- authentication --------------------------------------------------------
    const token = yield* Ref.make<string | undefined>(undefined)
    /** A request still unanswered this long is also sent to the next member. */
    const hedgeAfter = Math.max(20, Math.floor(config.memberTimeout * 0.3))
    const authLock = yield* Semaphore.make(1)
    /**
     * One round of a request over `hosts` (in order): the first member is
     * asked at once, the next one when an attempt fails or after
     * `hedgeAfter` without an answer (a hung member, or a follower whose
     * proposal went to a hung leader, must not hold the request for a whole
     * member timeout), the earlier attempts still running. The first answer
     * wins and the other attempts are cancelled.
     */
    const round = <Req, Res>(
      operation: string,
      method: Method<Req, Res>,
      request: Req,
      metadata: Effect.Effect<grpc.Metadata, EtcdError>,
      hosts: ReadonlyArray<string>,
      attemptMs: number
    ) =>
      Effect.scoped(
        Effect.gen(function* () {
          const outcome = yield* Deferred.make<RoundOutcome<Res>>()
          const progress = { launched: 0, failed: 0, last: undefined as unknown, electing: false, invalidToken: false }
          /** Attempts not finished yet: host -> when it was asked. */
          const pending = new Map<string, number>()
          const launch: Effect.Effect<void, never, Scope.Scope> = Effect.suspend(() => {
            if (progress.launched >= hosts.length) return Effect.void
            const host = hosts[progress.launched++]!
            const attempt = Effect.flatMap(metadata, (meta) => unary(channel(host), method, request, meta, attemptMs)).pipe(
              Effect.ensuring(Effect.sync(() => pending.delete(host))),
              Effect.matchEffect({
                onSuccess: (response) => Effect.andThen(succeeded(host), Deferred.succeed(outcome, { _tag: "Answered", response })),
                onFailure: (error): Effect.Effect<unknown, never, Scope.Scope> => {
                  if (error instanceof EtcdError) return Deferred.succeed(outcome, { _tag: "Refused", error })
                  const invalidToken = isInvalidToken(error) && config.auth !== undefined
                  if (!invalidToken && !isMemberFault(error)) {
                    return Deferred.succeed(outcome, { _tag: "Refused", error: toError(error, operation) })
                  }
                  progress.last = error
                  // etcd's own word (an election, a timed-out proposal) or no
                  // answer in time (a proposal forwarded to a hung leader): asking again may work.
                  progress.electing ||= /etcdserver:/.test(error.message) || error.code === grpc.status.DEADLINE_EXCEEDED
                  progress.invalidToken ||= invalidToken
                  return Effect.gen(function* () {
                    if (!invalidToken) {
                      yield* failed(host)
                      if (hosts.length > 1) {
                        yield* Effect.logDebug(`etcd ${operation}: ${host} failed (${toError(error, operation).detail}); trying the next member`)
                      }
                    }
                    if (++progress.failed < hosts.length) return yield* launch
                    yield* Deferred.succeed(outcome, {
                      _tag: "AllFailed",
                      last: progress.last,
                      electing: progress.electing,
                      invalidToken: progress.invalidToken
                    })
                  })
                }
              })
            )
            return Effect.flatMap(Clock.currentTimeMillis, (now) => {
              pending.set(host, now)
              return Effect.asVoid(Effect.forkScoped(attempt))
            })
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
        let last: unknown = undefined
        let reauthenticated = false
        for (let n = 0; ; n++) {
          if (closed.value) return yield* closedError(operation)
          const remaining = deadline - (yield* Clock.currentTimeMillis)
          if (remaining <= 0) return yield* noAnswer(operation, config.callTimeout, last, toError)
          const hosts = yield* ordered
          // A lone member gets the whole deadline; otherwise the member
          // timeout (doubled each round, for a slow cluster).
          const attemptMs = hosts.length === 1 ? remaining : Math.min(remaining, config.memberTimeout * 2 ** Math.min(n, 8))
          const outcome = yield* round(operation, method, request, metadata, hosts, attemptMs)
          if (outcome._tag === "Answered") return outcome.response
          if (outcome._tag === "Refused") return yield* outcome.error
          last = outcome.last
          if (outcome.invalidToken && !reauthenticated) {
            // etcd forgot the token (a restart): authenticate again, at once.
            reauthenticated = true
            yield* Ref.set(token, undefined)
            continue
          }
          // Unreachable members fail fast (the caller has its own retry
          // schedule); during an election, or when members were only too slow,
          // wait a little and ask again (with a longer member timeout).
          if (!outcome.electing) return yield* toError(last, operation)
          const left = deadline - (yield* Clock.currentTimeMillis)
          if (left <= 0) return yield* noAnswer(operation, config.callTimeout, last, toError)
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
        const stream = yield* duplex(channel(host), method, meta)
        return { host, stream }
      })

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
            if (!(yield* isHealthy(host))) return
            const meta = yield* metadata(false)
            const status = yield* unary(channel(host), methods.status, {}, meta, config.memberTimeout)
            if (status.leader !== 0n) return
            yield* failed(host)
            yield* Effect.logDebug(`etcd member ${host} has no leader (cut off from its peers?); its streams move`)
          }).pipe(Effect.ignore),
        { concurrency: "unbounded", discard: true }
      )
    }).pipe(Effect.forever)
    yield* Effect.forkScoped(leaderCheck)

    // -- probes of suspect members --------------------------------------------
    const probe = (host: string) =>
      Effect.gen(function* () {
        const meta = yield* metadata(false)
        const status = yield* unary(channel(host), methods.status, {}, meta, config.memberTimeout)
        // Alive but without a leader (cut off from its peers): still suspect.
        if (status.leader !== 0n) yield* succeeded(host)
      }).pipe(Effect.ignore)
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
        Effect.flatMap((response) => {
          const learned = response.members.filter((m) => !m.isLearner).flatMap((m) => m.clientURLs.map(dialAddress))
          return Ref.update(members, (state) => EtcdMembers.setHosts(state, [...configured, ...learned]))
        }),
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
      isHealthy,
      resetToken: Ref.set(token, undefined),
      toError
    }
  })
