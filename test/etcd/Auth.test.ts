/**
 * etcd with authentication enabled: errors are mapped to reasons, and no
 * message carries the password.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Discovery from "../../src/adapters/etcd/Discovery.js"
import * as Etcd from "../../src/adapters/etcd/Etcd.js"
import { registerEndpoint } from "../../src/main/promise/registerEndpoint.js"
import { captureLogs } from "../support/etcd.js"
import { etcdForFile } from "../support/etcdForFile.js"

const ROOT_PASSWORD = "root-Secret-4711"
const WRONG_PASSWORD = "wrong-Secret-0815"
const READER_PASSWORD = "reader-Secret-1234"

const server = etcdForFile({ checkHandles: true })
beforeAll(async () => {
  await server.ctlOk(["user", "add", `root:${ROOT_PASSWORD}`])
  await server.ctlOk(["user", "add", `nobody:${READER_PASSWORD}`])
  await server.ctlOk(["auth", "enable"])
  await server.ctlOk(["put", "authsvc/a", '{"Op":0,"Addr":"10.7.0.1:80","Metadata":null}'], { user: `root:${ROOT_PASSWORD}` })
})

const logs = captureLogs()
const firstSnapshot = (username: string, password: string, captured = logs) =>
  Effect.gen(function* () {
    const discovery = yield* Discovery.Discovery
    return yield* discovery.watch("authsvc").pipe(Stream.runHead, Effect.timeout("20 seconds"))
  }).pipe(
    Effect.provide(
      Discovery.layer().pipe(
        Layer.provide(Etcd.layer({ hosts: server.endpoints, auth: { username, password: Redacted.make(password) } }))
      )
    ),
    Effect.provide(captured.layer)
  )

describe("etcd with authentication (real etcd)", () => {
  it.live("the right password works", () =>
    Effect.gen(function* () {
      const snapshot = yield* firstSnapshot("root", ROOT_PASSWORD)
      expect(snapshot._tag === "Some" && snapshot.value.addresses).toEqual(["10.7.0.1:80"])
    })
  )

  it.live("a wrong password fails the watch with Unauthenticated, without the password in the message or the log", () =>
    Effect.gen(function* () {
      // This test's own log lines: the file's shared logger holds other tests' lines too.
      const own = captureLogs()
      const error = yield* Effect.flip(firstSnapshot("root", WRONG_PASSWORD, own))
      expect(error._tag).toBe("EtcdError")
      expect(error._tag === "EtcdError" && error.reason).toBe("Unauthenticated")
      expect(error.message).not.toContain(WRONG_PASSWORD)
      // The failure is logged (so the check below is not vacuous), with its annotations, and no line holds the password.
      expect(own.lines.some((line) => line.message.includes("Unauthenticated"))).toBe(true)
      const texts = own.lines.map((line) => [line.message, ...Object.values(line.annotations).map(String)].join(" "))
      expect(texts.filter((text) => text.includes(WRONG_PASSWORD))).toEqual([])
    })
  )

  it.live("a user without a role fails with PermissionDenied", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(firstSnapshot("nobody", READER_PASSWORD))
      expect(error._tag === "EtcdError" && error.reason).toBe("PermissionDenied")
      expect(error.message).not.toContain(READER_PASSWORD)
    })
  )

  it.live("layerConfig reads hosts and credentials through Config", () =>
    Effect.gen(function* () {
      const etcd = yield* Etcd.Etcd
      expect(etcd.hosts).toEqual(server.endpoints)
      const response = yield* etcd.range("get authsvc/a", { key: "authsvc/a" })
      expect(response.kvs.map((kv) => kv.value.toString("utf8")).join("")).toContain("10.7.0.1:80")
    }).pipe(
      Effect.provide(Etcd.layerConfig(Etcd.config)),
      Effect.provideService(
        ConfigProvider.ConfigProvider,
        ConfigProvider.fromUnknown({
          ETCD_ENDPOINTS: ` ${server.endpoints.join(" , ")} ,`,
          ETCD_USERNAME: "root",
          ETCD_PASSWORD: ROOT_PASSWORD
        })
      )
    )
  )

  it("registerEndpoint rejects with the EtcdError when etcd refuses the password", async () => {
    const attempt = registerEndpoint({
      etcd: { hosts: server.endpoints, auth: { username: "root", password: WRONG_PASSWORD } },
      service: "authsvc",
      address: "10.7.0.2:80",
      logLevel: "None"
    })
    await expect(attempt).rejects.toMatchObject({ _tag: "EtcdError", reason: "Unauthenticated" })
    const error: unknown = await attempt.catch((e: unknown) => e)
    expect(String((error as Error).message)).not.toContain(WRONG_PASSWORD)
  })
})
