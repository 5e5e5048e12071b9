/**
 * The one error mapping of the Etcd adapter, on what a call to etcd really
 * fails with (a grpc-js ServiceError carrying etcd's status code and message,
 * a closed or unreachable client), and the client's option checks.
 */
import * as grpc from "@grpc/grpc-js"
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Etcd from "../../src/adapters/etcd/Etcd.js"
import { freePort } from "../support/etcd.js"

/** What grpc-js fails a call with: `code`, etcd's message as `details`, and grpc-js's own message text. */
const serviceError = (code: grpc.status, details: string): grpc.ServiceError =>
  Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details, metadata: new grpc.Metadata() })

describe("Etcd.toEtcdError", () => {
  // etcd's status codes and messages (etcd api/v3rpc/rpctypes).
  it.each([
    ["unavailable", serviceError(grpc.status.UNAVAILABLE, "No connection established. Last error: connect ECONNREFUSED 127.0.0.1:2379"), "Unavailable"],
    ["deadline", serviceError(grpc.status.DEADLINE_EXCEEDED, "Deadline exceeded after 1.001s"), "Unavailable"],
    ["auth failed", serviceError(grpc.status.INVALID_ARGUMENT, "etcdserver: authentication failed, invalid user ID or password"), "Unauthenticated"],
    ["invalid token", serviceError(grpc.status.UNAUTHENTICATED, "etcdserver: invalid auth token"), "Unauthenticated"],
    ["permission", serviceError(grpc.status.PERMISSION_DENIED, "etcdserver: permission denied"), "PermissionDenied"],
    ["lease", serviceError(grpc.status.NOT_FOUND, "etcdserver: requested lease not found"), "NotFound"],
    ["closed", new Error("the etcd client is closed"), "Closed"],
    ["compacted range", serviceError(grpc.status.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted"), "Compacted"],
    ["compacted watch", new Error("mvcc: required revision has been compacted"), "Compacted"],
    ["no leader", serviceError(grpc.status.UNAVAILABLE, "etcdserver: no leader"), "Unavailable"],
    ["request timed out", serviceError(grpc.status.UNAVAILABLE, "etcdserver: request timed out"), "Unavailable"],
    ["too many requests", serviceError(grpc.status.RESOURCE_EXHAUSTED, "etcdserver: too many requests"), "Unavailable"],
    ["request too large", serviceError(grpc.status.INVALID_ARGUMENT, "etcdserver: request is too large"), "InvalidArgument"],
    ["other", new Error("boom"), "Unknown"]
  ] as const)("%s -> %s", (_name, cause, reason) => {
    const error = Etcd.toEtcdError(cause, "op")
    expect(error.reason).toBe(reason)
    expect(error.cause).toBe(cause)
    expect(error.message).toContain("etcd op")
  })

  it("an EtcdError passes through unchanged", () => {
    const error = Etcd.toEtcdError(serviceError(grpc.status.PERMISSION_DENIED, "etcdserver: permission denied"), "put x")
    expect(Etcd.toEtcdError(error, "other")).toBe(error)
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
        return yield* etcd.range("get x", { key: "x" })
      }).pipe(
        Effect.provide(Etcd.layer({ hosts: [`127.0.0.1:${port}`], callTimeout: "1 second" })),
        Effect.flip,
        // The bound: a call still running after 5 s fails the test.
        Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.fail(new Error("no error within 5 s")) })
      )
      expect(error.reason).toBe("Unavailable")
      expect(error.operation).toBe("get x")
      expect(Etcd.isTransient(error)).toBe(true)
    })
  )

  it.live("a call after the scope closed fails with Closed", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const etcd = yield* Etcd.make({ hosts: "127.0.0.1:1" }).pipe(Scope.provide(scope))
      yield* Scope.close(scope, Exit.void)
      const error = yield* Effect.flip(etcd.range("get x", { key: "x" }))
      expect(error.reason).toBe("Closed")
      expect(error.operation).toBe("get x")
      expect(Etcd.isTransient(error)).toBe(false)
      // Streams too: a watch on a closed client ends with a Cancelled signal saying Closed.
      const signal = yield* etcd.watch("watch x", { key: "x", startRevision: 0n }).pipe(Stream.runHead, Effect.timeout("5 seconds"))
      expect(signal._tag === "Some" && signal.value._tag === "Cancelled" && signal.value.error.reason).toBe("Closed")
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

  it.effect.each([
    ["hosts not text", { hosts: 2379 }, "invalid etcd options: Expected string | array at [\"hosts\"]"],
    ["a TLS path not text", { hosts: "a:1", tls: { caFile: 7 } }, "at [\"tls\"][\"caFile\"]"],
    ["a password neither text nor Redacted", { hosts: "a:1", auth: { username: "u", password: 424242 } }, "auth.password must be a string or a Redacted string"],
    ["a call timeout that is no duration", { hosts: "a:1", callTimeout: "soon" }, 'callTimeout must be a positive duration ("5 seconds", or a number of milliseconds), got "soon"'],
    // dialTimeout is deprecated and unused (a member that does not answer is left after memberTimeout): its successors are checked.
    ["a negative member timeout", { hosts: "a:1", memberTimeout: -5 }, "memberTimeout must be a positive duration"],
    ["a keepalive time that is no duration", { hosts: "a:1", keepalive: { time: "often" } }, 'keepalive.time must be a positive duration ("5 seconds", or a number of milliseconds), got "often"'],
    ["a zero auto-sync interval", { hosts: "a:1", autoSync: 0 }, "autoSync must be a positive duration"]
  ] as const)("rejects %s with InvalidArgument saying what is expected", ([, options, text]) =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Effect.scoped(Etcd.make(options as unknown as Etcd.EtcdOptions)))
      expect(error.reason).toBe("InvalidArgument")
      expect(error.message).toContain(text)
      expect(error.message).not.toContain("424242")
    })
  )

  it.effect("takes one options shape: a plain or Redacted password, durations as text or milliseconds", () =>
    Effect.gen(function* () {
      for (const options of [
        { hosts: "127.0.0.1:1", auth: { username: "u", password: "plain" }, callTimeout: 1500, dialTimeout: "2 seconds" },
        { hosts: ["127.0.0.1:1"], auth: { username: "u", password: Redacted.make("hidden") }, callTimeout: "1 second" }
      ] satisfies ReadonlyArray<Etcd.EtcdOptions>) {
        const etcd = yield* Effect.scoped(Etcd.make(options))
        expect(etcd.hosts).toEqual(["127.0.0.1:1"])
        expect(etcd.toError(new Error("bad plain hidden"), "op").message).toContain("<redacted>")
      }
    })
  )
})

describe("Etcd.hostsConfig (the one reader of ETCD_ENDPOINTS)", () => {
  const read = (env: Record<string, string>) =>
    Etcd.hostsConfig.parse(ConfigProvider.fromUnknown(env))

  it.effect("splits a comma list, trimming and dropping empty entries", () =>
    Effect.gen(function* () {
      expect(yield* read({ ETCD_ENDPOINTS: " 10.0.0.5:2379 ,https://10.0.0.6:2379,, " })).toEqual(["10.0.0.5:2379", "https://10.0.0.6:2379"])
    })
  )

  it.effect("a value with no host is an error saying so; a missing one is missing", () =>
    Effect.gen(function* () {
      const empty = yield* Effect.flip(read({ ETCD_ENDPOINTS: " , " }))
      expect(empty.message).toContain("lists no host")
      const missing = yield* Effect.flip(read({}))
      expect(missing.message).toContain("ETCD_ENDPOINTS")
      expect(Etcd.splitHosts(["a:1,b:2", " c:3 "])).toEqual(["a:1", "b:2", "c:3"])
    })
  )
})
