/**
 * Promise API for registering a backend in etcd, for code that does not use
 * Effect. It runs a {@link Registrar} in a scope of its own and resolves once
 * the record is in etcd.
 *
 * @example
 * ```ts
 * import { registerEndpoint } from "grpc-anchor"
 * const registration = await registerEndpoint({
 *   etcd: { hosts: "127.0.0.1:2379" },
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
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Etcd3 } from "etcd3"
import * as Etcd from "../../adapters/etcd/Etcd.js"
import * as Registrar from "../../adapters/etcd/Registrar.js"
import { stderrLogger } from "../../adapters/internal/stderrLogger.js"

/**
 * How to reach etcd when no client is passed.
 *
 * @since 0.1.0
 */
export interface EtcdConnectionOptions {
  /** `host:port` entries or a comma list (`https://` for TLS). */
  readonly hosts: string | ReadonlyArray<string>
  readonly auth?: { readonly username: string; readonly password: string }
  /** PEM files. */
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string }
  /** Deadline of one etcd call in milliseconds (default 5000). */
  readonly callTimeoutMs?: number
}

/**
 * What to register.
 *
 * @since 0.1.0
 */
export interface RegisterEndpointOptions {
  /** An etcd3 client you own (it is not closed), or how to connect (the client is closed by `close()`). */
  readonly etcd: Etcd3 | EtcdConnectionOptions
  readonly service: string
  /** `host:port`. */
  readonly address: string
  /** Lease TTL in whole seconds (default 10). */
  readonly ttl?: number
  /** JSON data stored as the record's `Metadata`. */
  readonly metadata?: unknown
  /** Bound on revoking the lease in `close()`, in milliseconds (default 2000). */
  readonly revokeTimeoutMs?: number
  /** Least level logged to the console (default "Warning"). */
  readonly logLevel?: "None" | "Error" | "Warning" | "Info" | "Debug"
}

/**
 * A running registration.
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
   * Revokes the lease (the record disappears at once) and closes what was
   * opened. Bounded even when etcd is unreachable; safe to call twice.
   */
  close(): Promise<void>
}

const isClient = (etcd: RegisterEndpointOptions["etcd"]): etcd is Etcd3 =>
  typeof (etcd as Partial<Etcd3>).lease === "function" && typeof (etcd as Partial<Etcd3>).watch === "function"

const runOrThrow = async <A>(effect: Effect.Effect<A, unknown>): Promise<A> => {
  const exit = await Effect.runPromiseExit(effect)
  if (Exit.isSuccess(exit)) return exit.value
  throw Option.getOrElse(Cause.failureOption(exit.cause), () => Cause.squash(exit.cause))
}

/**
 * Registers `address` under `service` and keeps it registered (new lease when
 * one is lost, record written back when deleted) until `close()`. Resolves
 * when the record is first in etcd; while etcd is unreachable it keeps
 * waiting. Rejects with a `RegistrarError` for invalid options, or with an
 * `EtcdError` when etcd refuses (`Unauthenticated`, `PermissionDenied`,
 * `InvalidArgument`).
 *
 * @since 0.1.0
 */
export const registerEndpoint = async (options: RegisterEndpointOptions): Promise<EndpointRegistration> => {
  const scope = Effect.runSync(Scope.make())
  // Tells the listeners of every status, up to and including Closed.
  let statusFiber: Fiber.RuntimeFiber<void> | undefined
  let closing: Promise<void> | undefined
  const close = () =>
    (closing ??= Effect.runPromise(
      Scope.close(scope, Exit.void).pipe(
        // Closed is set as the scope closes; the listeners hear it before close() resolves.
        Effect.zipRight(Effect.suspend(() => (statusFiber === undefined ? Effect.void : Fiber.await(statusFiber))))
      )
    ).then(() => undefined))
  const level = LogLevel.fromLiteral(options.logLevel ?? "Warning")

  try {
    const etcdOptions = options.etcd
    const registrar = await runOrThrow(
      Effect.gen(function* () {
        const etcd = isClient(etcdOptions)
          ? Etcd.fromClient(etcdOptions)
          : yield* Etcd.make({
              hosts: etcdOptions.hosts,
              ...(etcdOptions.auth === undefined
                ? {}
                : { auth: { username: etcdOptions.auth.username, password: Redacted.make(etcdOptions.auth.password) } }),
              ...(etcdOptions.tls === undefined ? {} : { tls: etcdOptions.tls }),
              ...(etcdOptions.callTimeoutMs === undefined ? {} : { callTimeout: etcdOptions.callTimeoutMs })
            })
        return yield* Registrar.make({
          service: options.service,
          address: options.address,
          ...(options.ttl === undefined ? {} : { ttl: options.ttl }),
          metadata: options.metadata,
          ...(options.revokeTimeoutMs === undefined ? {} : { revokeTimeout: options.revokeTimeoutMs })
        }).pipe(Effect.provideService(Etcd.Etcd, etcd))
      }).pipe(Scope.extend(scope), Logger.withMinimumLogLevel(level), Effect.provide(stderrLogger))
    )

    let current = await Effect.runPromise(registrar.status)
    const listeners = new Set<(status: Registrar.Status) => void>()
    statusFiber = Effect.runFork(
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
    )

    // Wait for the first registration, or an error retrying cannot fix.
    const first = await Effect.runPromise(Effect.either(registrar.awaitRegistered))
    if (first._tag === "Left") throw first.left

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
      close
    }
  } catch (error) {
    await close()
    throw error
  }
}
