/**
 * The one error mapping of the Etcd adapter, on errors etcd3 really throws
 * (a closed or unreachable client) and on its error classes.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import {
  ClientClosedError,
  EtcdAuthenticationFailedError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCUnavailableError
} from "etcd3"
import * as Etcd from "../../src/adapters/etcd/Etcd.js"
import { freePort } from "../support/etcd.js"

describe("Etcd.toEtcdError", () => {
  it.each([
    ["unavailable", new GRPCUnavailableError("14 UNAVAILABLE: No connection established"), "Unavailable"],
    ["deadline", new GRPCDeadlineExceededError("4 DEADLINE_EXCEEDED"), "Unavailable"],
    ["auth failed", new EtcdAuthenticationFailedError("etcdserver: authentication failed"), "Unauthenticated"],
    ["permission", new EtcdPermissionDeniedError("etcdserver: permission denied"), "PermissionDenied"],
    ["lease", new EtcdLeaseInvalidError("1234"), "NotFound"],
    ["closed", new ClientClosedError("KV"), "Closed"],
    ["compacted range", new Error("etcdserver: mvcc: required revision has been compacted"), "Compacted"],
    ["compacted watch", new Error("Watcher canceled: "), "Compacted"],
    ["no leader", new Error("etcdserver: no leader"), "Unavailable"],
    ["circuit open", Object.assign(new Error("Execution prevented because the circuit breaker is open"), { isBrokenCircuitError: true }), "Unavailable"],
    ["other", new Error("boom"), "Unknown"]
  ] as const)("%s -> %s", (_name, cause, reason) => {
    const error = Etcd.toEtcdError(cause, "op")
    expect(error.reason).toBe(reason)
    expect(error.cause).toBe(cause)
    expect(error.message).toContain("etcd op")
  })

  it("cuts secrets out of the message", () => {
    const error = Etcd.toEtcdError(new Error("bad credentials hunter2 for user"), "auth", ["hunter2"])
    expect(error.message).not.toContain("hunter2")
    expect(error.message).toContain("<redacted>")
  })
})

describe("Etcd client", () => {
  it.live("maps a call to an unreachable etcd to Unavailable within the call timeout", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(() => freePort())
      const error = yield* Effect.gen(function* () {
        const etcd = yield* Etcd.Etcd
        return yield* etcd.use("get x", (client) => client.get("x").string())
      }).pipe(
        Effect.provide(Etcd.layer({ hosts: [`127.0.0.1:${port}`], callTimeout: "1 second" })),
        Effect.flip,
        // The bound: a call still running after 5 s fails the test.
        Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.fail(new Error("no error within 5 s")) })
      )
      expect(error.reason).toBe("Unavailable")
    })
  )

  it.live("a call after the scope closed fails with Closed", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const etcd = yield* Etcd.make({ hosts: "127.0.0.1:1" }).pipe(Scope.provide(scope))
      yield* Scope.close(scope, Exit.void)
      const error = yield* Effect.flip(etcd.use("get x", (client) => client.get("x").string()))
      expect(error.reason).toBe("Closed")
    })
  )

  it.live("rejects an empty host list and unreadable TLS files with InvalidArgument", () =>
    Effect.gen(function* () {
      const none = yield* Effect.flip(Effect.scoped(Etcd.make({ hosts: " , " })))
      expect(none.reason).toBe("InvalidArgument")
      const tls = yield* Effect.flip(Effect.scoped(Etcd.make({ hosts: "127.0.0.1:1", tls: { caFile: "/nonexistent/ca.pem" } })))
      expect(tls.reason).toBe("InvalidArgument")
    })
  )
})
