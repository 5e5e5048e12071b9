/**
 * Promise API for registering a backend in etcd, for code that does not use
 * Effect. It runs a {@link Registrar} in a `ManagedRuntime` of its own and
 * resolves once the record is in etcd; `close()` disposes the runtime, which
 * revokes the lease. Warnings go to stderr, never stdout.
 *
 * @example
 * ```ts
 * import { registerEndpoint } from "grpc-anchor"
 * const registration = await registerEndpoint({
 *   etcd: { hosts: "127.0.0.1:2379", auth: { username: "app", password: "secret" }, callTimeout: "3 seconds" },
 *   service: "my-service",
 *   address: "10.0.0.1:9080",
 *   ttl: 10
 * })
 * process.on("SIGTERM", () => registration.close())
 * ```
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import type * as LogLevel from "effect/LogLevel"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as References from "effect/References"
import * as Stream from "effect/Stream"
import * as Etcd from "../../adapters/etcd/Etcd.js"
import * as Registrar from "../../adapters/etcd/Registrar.js"
import { stderrLogger } from "../../adapters/internal/stderrLogger.js"

/**
 * How to reach etcd when no client is passed: the same shape as
 * `Etcd.EtcdOptions` (a plain string or `Redacted` password; timeouts as
 * `"5 seconds"` or a number of milliseconds).
 *
 * @example
 * ```ts
 * import type { EtcdConnectionOptions } from "grpc-anchor"
 * const etcd: EtcdConnectionOptions = { hosts: "127.0.0.1:2379", callTimeout: 3000 }
 * ```
 *
 * @deprecated use `Etcd.EtcdOptions`, which it is.
 * @since 0.1.0
 */
export type EtcdConnectionOptions = Etcd.EtcdOptions

/**
 * What to register.
 *
 * @example
 * ```ts
 * import type { RegisterEndpointOptions } from "grpc-anchor"
 * const options: RegisterEndpointOptions = { etcd: { hosts: "127.0.0.1:2379" }, service: "billing", address: "10.0.0.7:9080" }
 * ```
 *
 * @since 0.1.0
 */
export interface RegisterEndpointOptions {
  /** How to reach etcd: one member, or the members of a cluster (the client is closed by `close()`). */
  readonly etcd: Etcd.EtcdOptions
  readonly service: string
  /** `host:port`. */
  readonly address: string
  /** Lease TTL in whole seconds (default 10). */
  readonly ttl?: number
  /** JSON data stored as the record's `Metadata`. */
  readonly metadata?: unknown
  /**
   * This backend's own connection count for clients (`4`, `"4"` or the
   * adaptive range `"2..8"`), overriding their target's `#N`; written into
   * the metadata as `{"grpc_anchor.connections": 4}` (the metadata must then
   * be an object or null). Go interop: any object `Metadata` crashes Go's
   * etcd resolver under `round_robin` (etcd-io/etcd#19700), so fleets with
   * Go clients leave it off; a Go client on a service name containing `/`
   * also needs `grpc.WithAuthority`.
   */
  readonly connections?: number | string
  /** Bound on revoking the lease in `close()` (default 2 seconds; a number is milliseconds). */
  readonly revokeTimeout?: Duration.Input
  /**
   * Bound on revoking the lease in `close()`, in milliseconds.
   *
   * @deprecated use `revokeTimeout`
   */
  readonly revokeTimeoutMs?: number
  /** Least level logged to stderr (default "Warning"). */
  readonly logLevel?: "None" | "Error" | "Warning" | "Info" | "Debug"
}

/**
 * A running registration.
 *
 * @example
 * ```ts
 * import { registerEndpoint } from "grpc-anchor"
 * const registration = await registerEndpoint({ etcd: { hosts: "127.0.0.1:2379" }, service: "billing", address: "10.0.0.7:9080" })
 * const stop = registration.onStatus((status) => console.error("registration:", status._tag))
 * ```
 *
 * @since 0.1.0
 */
export interface EndpointRegistration {
  readonly service: string
  /** The canonical address. */
  readonly address: string
  /** The etcd key, `${service}/${address}`. */
  readonly key: string
  /** The exact value written. */
  readonly value: string
  /** The current status. */
  status(): Registrar.Status
  /** Calls `listener` on every status change; returns a function that stops it. */
  onStatus(listener: (status: Registrar.Status) => void): () => void
  /**
   * The registration's counts so far: leases re-granted, record re-puts,
   * moves onto a new lease, and when etcd last renewed the lease (see
   * `Registrar.Counters`). Still readable after `close()`.
   *
   * @example
   * ```ts
   * import { registerEndpoint } from "grpc-anchor"
   * const registration = await registerEndpoint({ etcd: { hosts: "127.0.0.1:2379" }, service: "billing", address: "10.0.0.7:9080" })
   * const { leaseRegrants, lastKeepAliveMillis } = registration.counters()
   * ```
   *
   * @since 0.3.0
   */
  counters(): Registrar.Counters
  /**
   * Revokes the lease (the record disappears at once) and closes what was
   * opened. Bounded even when etcd is unreachable; safe to call twice.
   */
  close(): Promise<void>
}

const levels: Record<NonNullable<RegisterEndpointOptions["logLevel"]>, LogLevel.LogLevel> = {
  None: "None",
  Error: "Error",
  Warning: "Warn",
  Info: "Info",
  Debug: "Debug"
}

/** The failure of an exit as a Promise user expects it: the typed error itself. */
const failureOf = (cause: Cause.Cause<unknown>): unknown => Option.getOrElse(Cause.findErrorOption(cause), () => Cause.squash(cause))

/**
 * Registers `address` under `service` and keeps it registered (new lease when
 * one is lost, record written back when deleted) until `close()`. Resolves
 * when the record is first in etcd; while etcd is unreachable it keeps
 * waiting. Rejects with a `RegistrarError` for invalid options, or with an
 * `EtcdError` when etcd refuses (`Unauthenticated`, `PermissionDenied`,
 * `InvalidArgument`).
 *
 * @example
 * ```ts
 * import { registerEndpoint } from "grpc-anchor"
 * const registration = await registerEndpoint({ etcd: { hosts: "127.0.0.1:2379" }, service: "billing", address: "10.0.0.7:9080" })
 * await registration.close()
 * ```
 *
 * @since 0.1.0
 */
export const registerEndpoint = async (options: RegisterEndpointOptions): Promise<EndpointRegistration> => {
  const etcdOptions = options.etcd
  const revokeTimeout = options.revokeTimeout ?? options.revokeTimeoutMs
  const EtcdLive = Etcd.layer(etcdOptions)
  const LogLive = Layer.merge(stderrLogger, Layer.succeed(References.MinimumLogLevel, levels[options.logLevel ?? "Warning"]))
  const runtime = ManagedRuntime.make(
    Registrar.layer({
      service: options.service,
      address: options.address,
      ...(options.ttl === undefined ? {} : { ttl: options.ttl }),
      metadata: options.metadata,
      ...(options.connections === undefined ? {} : { connections: options.connections }),
      ...(revokeTimeout === undefined ? {} : { revokeTimeout })
    }).pipe(Layer.provide(EtcdLive), Layer.provide(LogLive))
  )

  // Tells the listeners of every status, up to and including Closed.
  let statusDone: Promise<unknown> | undefined
  let closing: Promise<void> | undefined
  const close = () =>
    (closing ??= runtime
      .dispose()
      // Closed is set as the runtime's scope closes; the listeners hear it before close() resolves.
      .then(() => statusDone)
      .then(() => undefined))

  try {
    const exit = await runtime.runPromiseExit(Registrar.Registrar)
    if (Exit.isFailure(exit)) throw failureOf(exit.cause)
    const registrar = exit.value

    let current = await Effect.runPromise(registrar.status)
    const listeners = new Set<(status: Registrar.Status) => void>()
    statusDone = Effect.runPromise(
      registrar.changes.pipe(
        Stream.takeUntil((status) => status._tag === "Closed"),
        Stream.runForEach((status) =>
          Effect.sync(() => {
            current = status
            for (const listener of listeners) {
              try {
                listener(status)
              } catch {
                // A listener's failure is its own: the others, and the status, go on.
              }
            }
          })
        )
      )
    ).catch(() => undefined)

    // Wait for the first registration, or an error retrying cannot fix.
    const first = await Effect.runPromiseExit(registrar.awaitRegistered)
    if (Exit.isFailure(first)) throw failureOf(first.cause)

    return {
      service: registrar.service,
      address: registrar.address,
      key: registrar.key,
      value: registrar.value,
      status: () => current,
      onStatus: (listener) => {
        listeners.add(listener)
        return () => listeners.delete(listener)
      },
      counters: () => Effect.runSync(registrar.counters),
      close
    }
  } catch (error) {
    await close()
    throw error
  }
}
