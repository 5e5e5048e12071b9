/**
 * etcd with authentication enabled and a user whose role is limited to the
 * service's prefix (`role grant-permission --prefix=true svc-rw readwrite
 * svc/`), as an operator would set it up. Registrar, Discovery and the etcd
 * resolver work with those credentials end to end; outside the prefix every
 * entry point says PermissionDenied, and with a wrong password the Registrar
 * and the resolver say Unauthenticated (Discovery and registerEndpoint with a
 * wrong password, and a user without any role, are covered by Auth.test.ts).
 */
import * as grpc from "@grpc/grpc-js"
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Discovery from "../../src/adapters/etcd/Discovery.js"
import * as Etcd from "../../src/adapters/etcd/Etcd.js"
import * as Registrar from "../../src/adapters/etcd/Registrar.js"
import { startEchoServer } from "../../packages/cli/src/echo/echo.js"
import { register } from "../../src/main/index.js"
import { registerEndpoint } from "../../src/main/promise/registerEndpoint.js"
import { withEnv } from "../support/env.js"
import { captureLogs, enablePrefixAuth, firstStatusError, follow } from "../support/etcd.js"
import { etcdForFile } from "../support/etcdForFile.js"
import { callMany, tally } from "../support/grpc.js"
import { firstCallError, pooled } from "../support/pooled.js"

register()

const ROOT = "root:Root-Pass-5521"
const USER = "svc-writer"
const PASSWORD = "Svc-Writer-Pass-8832"
const WRONG = "Not-The-Pass-1177"

const etcd = etcdForFile({ checkHandles: true })
let port: number
beforeAll(async () => {
  port = etcd.member.spec.clientPort
  await enablePrefixAuth(etcd, { root: ROOT, role: "svc-rw", prefix: "svc/", user: USER, password: PASSWORD })
  // Something outside the prefix the user must not see.
  await etcd.ctlOk(["put", "other/10.9.0.1:80", '{"Op":0,"Addr":"10.9.0.1:80","Metadata":null}'], { user: ROOT })
})

const logs = captureLogs()
const etcdAs = (password: string) =>
  Etcd.layer({ hosts: etcd.endpoints, auth: { username: USER, password: Redacted.make(password) }, callTimeout: "3 seconds" })
const asUser = (password: string) => Discovery.layer().pipe(Layer.provideMerge(etcdAs(password)))

/** ETCD_USERNAME/ETCD_PASSWORD, as the resolver reads them. */
const credentials = (password: string) => ({ ETCD_USERNAME: USER, ETCD_PASSWORD: password })

/**
 * The first call's error on `etcd://HOST/service#2` under the given password.
 * "At once": the call's 4 s deadline, under the resolver's 5 s resolution
 * timeout, is the bound (a call still waiting then fails with DEADLINE_EXCEEDED).
 */
const resolverError = (service: string, password: string) =>
  withEnv(credentials(password), () => firstCallError(`etcd://127.0.0.1:${port}/${service}#2`, { deadlineMs: 4_000 }))

describe("etcd auth with a role limited to the service prefix (real etcd)", () => {
  it.live("the user registers backends, discovers them and an etcd:// channel with its credentials serves them", () =>
    Effect.gen(function* () {
      const servers = yield* Effect.acquireRelease(
        Effect.promise(() => Promise.all([startEchoServer({ name: "a" }), startEchoServer({ name: "b" })])),
        (all) => Effect.promise(() => Promise.all(all.map((s) => s.close({ force: true }))))
      )
      const addresses = servers.map((s) => `127.0.0.1:${s.port}`)
      const scope = yield* Scope.make()
      for (const address of addresses) {
        const registrar = yield* Registrar.make({ service: "svc", address, ttl: 5 }).pipe(Scope.provide(scope))
        yield* registrar.awaitRegistered.pipe(Effect.timeout("10 seconds"))
      }
      const f = yield* follow("svc")
      yield* f.waitFor("both backends", addresses)

      const result = yield* Effect.promise(() =>
        withEnv(credentials(PASSWORD), async () => {
          const channel = pooled(`etcd://127.0.0.1:${port}/svc#2`)
          try {
            await channel.waitSlots(4)
            return {
              answers: tally(await callMany(channel.client, 20, 2)),
              perServer: servers.map((s) => s.observer.connections().length)
            }
          } finally {
            channel.close()
          }
        })
      )
      expect(result).toEqual({ answers: { a: 10, b: 10 }, perServer: [2, 2] })

      // Closing revokes the lease: allowed by the prefix permission, so the records go at once.
      yield* Scope.close(scope, Exit.void)
      yield* f.waitFor("revoked", [])
      expect(yield* Effect.promise(() => etcd.ctlOk(["get", "--prefix", "svc/", "--keys-only"], { user: ROOT }))).toBe("")
    }).pipe(Effect.provide(asUser(PASSWORD)), Effect.provide(logs.layer))
  )

  describe("outside the prefix: PermissionDenied", () => {
    it.live("the Registrar's status", () =>
      Effect.gen(function* () {
        const registrar = yield* Registrar.make({ service: "other", address: "10.9.0.2:80", ttl: 5 })
        const status = yield* firstStatusError(registrar)
        expect(status.error.reason).toBe("PermissionDenied")
        expect(status.reason).toContain("other/10.9.0.2:80")
      }).pipe(Effect.provide(etcdAs(PASSWORD)), Effect.provide(logs.layer))
    )

    it.live("Discovery's stream", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flatMap(Discovery.Discovery, (d) => d.watch("other").pipe(Stream.runHead)).pipe(
          Effect.timeout("10 seconds"),
          Effect.flip
        )
        expect(error._tag === "EtcdError" && error.reason).toBe("PermissionDenied")
        expect(error.message).toContain("other/")
      }).pipe(Effect.provide(asUser(PASSWORD)), Effect.provide(logs.layer))
    )

    it("registerEndpoint", async () => {
      const attempt = registerEndpoint({
        etcd: { hosts: etcd.endpoints, auth: { username: USER, password: PASSWORD } },
        service: "other",
        address: "10.9.0.3:80",
        logLevel: "None"
      })
      await expect(attempt).rejects.toMatchObject({ _tag: "EtcdError", reason: "PermissionDenied" })
    })

    it("the resolver: UNAVAILABLE naming the service and the reason, at once", async () => {
      const error = await resolverError("other", PASSWORD)
      expect(error?.code).toBe(grpc.status.UNAVAILABLE)
      expect(error?.details).toContain('service "other"')
      expect(error?.details).toContain("PermissionDenied")
    })
  })

  describe("a wrong password: Unauthenticated", () => {
    it.live("the Registrar's status", () =>
      Effect.gen(function* () {
        const registrar = yield* Registrar.make({ service: "svc", address: "10.9.0.4:80", ttl: 5 })
        const status = yield* firstStatusError(registrar)
        expect(status.error.reason).toBe("Unauthenticated")
        expect(status.reason).not.toContain(WRONG)
      }).pipe(Effect.provide(etcdAs(WRONG)), Effect.provide(logs.layer))
    )

    it("the resolver: UNAVAILABLE naming the service and the reason, at once", async () => {
      const error = await resolverError("svc", WRONG)
      expect(error?.code).toBe(grpc.status.UNAVAILABLE)
      expect(error?.details).toContain('service "svc"')
      expect(error?.details).toContain("Unauthenticated")
      expect(error?.details).not.toContain(WRONG)
    })
  })
})
