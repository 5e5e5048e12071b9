/**
 * The demo's echo servers, each its own child process (so killing one is a
 * real SIGKILL, sockets and all): start (registered in etcd with `--etcd`),
 * stop, and ask each what it sees.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { Address, type Target } from "grpc-anchor/core"
import { EchoProcessError, startEchoProcess, type EchoProcess } from "../echo/echoProcess.js"
import { type CommandError, failure, oneLine } from "../internal/common.js"
import type { Backend, State } from "./state.js"

/** Where the servers register, with `--etcd`: the channel's etcd target and the lease TTL. */
export interface Registration {
  readonly etcd: Option.Option<Target.EtcdTarget>
  readonly ttl: number
}

/** Starts the backend's server (on its old port when it had one) and records the process. */
export const startBackend = (backend: Backend, registration: Registration): Effect.Effect<EchoProcess, CommandError> =>
  Effect.tryPromise({
    try: () =>
      startEchoProcess({
        name: backend.name,
        port: backend.port,
        timeoutMs: 20_000,
        ...Option.match(registration.etcd, {
          onNone: () => ({}),
          onSome: (target) => ({
            etcd: { hosts: target.etcd.map(Address.format).join(","), service: target.service, ttl: registration.ttl }
          })
        })
      }),
    catch: (error) =>
      failure(
        `starting echo server ${backend.name}${backend.port === 0 ? "" : ` on port ${backend.port}`} failed: ${oneLine(
          error instanceof EchoProcessError ? error.detail : String(error)
        )}`,
        error
      )
  }).pipe(
    Effect.tap((process) =>
      Effect.sync(() => {
        backend.process = process
        backend.port = process.port
        backend.serverConnections = undefined
        backend.serverCalls = undefined
        backend.perConnection = []
      })
    )
  )

/** SIGTERM (deregister, drain), SIGKILL if it has not exited within 5 s. */
export const stopBackend = (backend: Backend): Effect.Effect<void> =>
  Effect.suspend(() => {
    const process = backend.process
    backend.process = undefined
    if (process === undefined) return Effect.void
    return Effect.promise(() => process.stop()).pipe(
      Effect.timeout("5 seconds"),
      Effect.catch(() => Effect.promise(() => process.kill())),
      Effect.timeout("5 seconds"),
      Effect.ignore
    )
  })

/** SIGKILLs the backend's server; resolved once the process is gone. */
export const killBackend = (backend: Backend): Effect.Effect<EchoProcess | undefined> =>
  Effect.suspend(() => {
    const killed = backend.process
    backend.process = undefined
    return killed === undefined ? Effect.succeed(undefined) : Effect.as(Effect.promise(() => killed.kill()), killed)
  })

/** Asks every running server what its ConnectionObserver sees (bounded; a server that does not answer keeps its last view). */
export const pollServers = (state: State): Effect.Effect<void> =>
  Effect.forEach(
    state.backends,
    (b) => {
      const process = b.process
      if (process === undefined) return Effect.void
      return Effect.tryPromise(() => process.stats()).pipe(
        Effect.timeout("2 seconds"),
        Effect.tap((stats) =>
          Effect.sync(() => {
            // Only the answer of the process still running counts.
            if (b.process !== process) return
            const live = stats.connections.filter((c) => c.open)
            b.serverConnections = live.length
            b.serverCalls = stats.calls
            b.perConnection = live.map((c) => c.calls)
          })
        ),
        Effect.ignore
      )
    },
    { concurrency: "unbounded", discard: true }
  )
