/**
 * The etcd v3 client: one gRPC channel per member, unary requests with a
 * deadline per member and failover to the next, streams opened on the best
 * member, a prober that re-admits suspect members, authentication, and
 * (optionally) the member list learned from etcd. Which member to ask is
 * decided by the pure `EtcdMembers` core. Internal; `Etcd` wraps it.
 */
import * as grpc from "@grpc/grpc-js"
import * as Effect from "effect/Effect"
import * as Latch from "effect/Latch"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import type * as EtcdMembers from "../../../../core/EtcdMembers.js"
import { EtcdError, toEtcdError } from "../error.js"
import { channelOptions, type Duplex, duplex, unary } from "./connection.js"
import { failover, type Requester } from "./failover.js"
import * as Health from "./health.js"
import { leaderChecks, memberSync, probes } from "./monitors.js"
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

/**
 * Builds a client; every channel is closed when the scope closes. Nothing
 * is dialled until the first request (or the first member list sync, a
 * second after it is built).
 */
export const make = (config: ClientConfig): Effect.Effect<Client, never, Scope.Scope> =>
  Effect.gen(function* () {
    const toError = (cause: unknown, operation: string) => toEtcdError(cause, operation, config.secrets)
    const health = yield* Health.make(config.hosts)
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

    // -- requests (with failover, see failover.ts) ------------------------------
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
    const requester: Requester = {
      config,
      health,
      call,
      isClosed: () => closed.value,
      closedError,
      toError,
      resetToken: Ref.set(token, undefined),
      hedgeAfter
    }

    // -- authentication --------------------------------------------------------
    const authenticate: Effect.Effect<string, EtcdError> = authLock.withPermits(1)(
      Effect.gen(function* () {
        const known = yield* Ref.get(token)
        if (known !== undefined) return known
        const auth = config.auth!
        const response = yield* failover(
          requester,
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
      failover(requester, operation, method, body, metadata(false))

    // -- streams -----------------------------------------------------------------
    /** Open streams per host: their members get leader checks. */
    const streamHosts = new Map<string, number>()
    const streamsOpen = yield* Latch.make(false)
    const open = <Req, Res>(operation: string, method: Method<Req, Res>) =>
      Effect.gen(function* () {
        if (closed.value) return yield* closedError(operation)
        const hosts = yield* health.ordered
        const host = hosts[0]!
        const meta = yield* metadata(true)
        yield* Effect.acquireRelease(
          Effect.sync(() => streamHosts.set(host, (streamHosts.get(host) ?? 0) + 1)).pipe(Effect.andThen(streamsOpen.open)),
          () => Effect.sync(() => (streamHosts.get(host) === 1 ? streamHosts.delete(host) : streamHosts.set(host, streamHosts.get(host)! - 1)))
        )
        const since = health.strikes(host)
        const stream = yield* duplex(channel(host), method, meta)
        return { host, since, stream }
      })

    /** Whether `host` answers its status within the member timeout, and has a leader. */
    const hasLeader = (host: string) =>
      metadata(false).pipe(
        Effect.flatMap((meta) => call(host, methods.status, {}, meta, config.memberTimeout, `status of ${host}`)),
        Effect.map((status) => status.leader !== 0n)
      )

    // -- background checks (see monitors.ts) ------------------------------------
    yield* Effect.forkScoped(leaderChecks({ hosts: streamHosts, opened: streamsOpen }, health, hasLeader, config.memberTimeout))
    yield* Effect.forkScoped(probes(health, hasLeader))
    if (config.autoSync !== undefined) {
      yield* Effect.forkScoped(memberSync(config.hosts, config.autoSync, health, channels, request("member list", methods.memberList, {})))
    }

    return {
      config,
      members: Effect.map(Ref.get(health.members), (state) => state.members),
      request,
      open,
      succeeded: health.succeeded,
      failed: health.failed,
      failedSince: health.failedSince,
      resetToken: requester.resetToken,
      toError
    }
  })
