/**
 * etcd over TLS with client certificates: a real etcd serving https client
 * URLs with `--client-cert-auth` (certificates made at test time), real
 * echo servers. Registrar, Discovery, registerEndpoint, the `etcd` resolver
 * (TLS from ETCD_CACERT/ETCD_CERT/ETCD_KEY) and AnchoredChannel (Etcd layer
 * with `tls`) work end to end; a client without a certificate, with one from
 * another CA, or not trusting etcd's CA gets an error naming the TLS
 * handshake and the certificate at once, from every entry point.
 */
import * as grpc from "@grpc/grpc-js"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Discovery from "../../src/adapters/etcd/Discovery.js"
import * as Etcd from "../../src/adapters/etcd/Etcd.js"
import * as Registrar from "../../src/adapters/etcd/Registrar.js"
import { EchoClient, startEchoServer, type Echo } from "../../packages/cli/src/echo/echo.js"
import { AnchoredChannel, register } from "../../src/main/index.js"
import { registerEndpoint } from "../../src/main/promise/registerEndpoint.js"
import { etcdCertificates } from "../support/certs.js"
import { withEnv } from "../support/env.js"
import { captureLogs, firstStatusError, follow, waitUntil } from "../support/etcd.js"
import { etcdForFile } from "../support/etcdForFile.js"
import { callMany, eventually, tally } from "../support/grpc.js"
import { firstCallError, pooled } from "../support/pooled.js"

register()

type Tls = NonNullable<Etcd.EtcdOptions["tls"]>

// etcd 3.4's own gateway dials itself with the server certificate, so it needs clientAuth too (etcdCertificates).
const { ca, certs, clientPair, foreignPair, goodTls, otherCa, serverPair } = etcdCertificates()

/** Clients etcd must turn away, and the words their error must contain. */
const badClients: ReadonlyArray<readonly [string, Tls, RegExp]> = [
  ["no client certificate", { caFile: ca.certPath }, /etcd refused the client certificate/],
  [
    "a client certificate from another CA",
    { caFile: ca.certPath, certFile: foreignPair.certPath, keyFile: foreignPair.keyPath },
    /etcd refused the client certificate/
  ],
  [
    "a CA file that did not sign etcd's certificate",
    { caFile: otherCa.certPath, certFile: clientPair.certPath, keyFile: clientPair.keyPath },
    /etcd's certificate is not trusted/
  ]
]

// Registered before etcdForFile: afterAll hooks run newest first, so the
// certificates are removed after etcd has stopped.
afterAll(() => certs.cleanup())
const etcd = etcdForFile({
  tls: {
    certFile: serverPair.certPath,
    keyFile: serverPair.keyPath,
    trustedCaFile: ca.certPath,
    client: { caFile: ca.certPath, certFile: clientPair.certPath, keyFile: clientPair.keyPath }
  },
  checkHandles: true
})
let port: number
beforeAll(() => {
  port = etcd.member.spec.clientPort
})

const echo = (name: string) =>
  Effect.acquireRelease(
    Effect.promise(() => startEchoServer({ name })),
    (server) => Effect.promise(() => server.close({ force: true }))
  )

const tlsEnv = (tls: Tls) => ({ ETCD_CACERT: tls.caFile, ETCD_CERT: tls.certFile, ETCD_KEY: tls.keyFile })

const logs = captureLogs()
const layerWith = (tls: Tls) =>
  Discovery.layer().pipe(Layer.provideMerge(Etcd.layer({ hosts: etcd.endpoints, tls, callTimeout: "3 seconds" })))

describe("Etcd.toEtcdError on TLS failures", () => {
  // What grpc-js fails a call with when it could not connect (a ServiceError), with the connection's last error inside.
  const unavailable = (lastError: string): grpc.ServiceError => {
    const details = `No connection established. Last error: ${lastError}. Resolution note: `
    return Object.assign(new Error(`${grpc.status.UNAVAILABLE} UNAVAILABLE: ${details}`), {
      code: grpc.status.UNAVAILABLE,
      details,
      metadata: new grpc.Metadata()
    })
  }
  it.each([
    ["no or foreign client certificate (TLS 1.3)", "error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate", "Unauthenticated", /refused the client certificate/],
    // Node 24's OpenSSL 3 text, as grpc-js reports it.
    ["no or foreign client certificate (OpenSSL 3)", "402DE6CABC7F0000:error:0A000412:SSL routines:ssl3_read_bytes:ssl/tls alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:918:SSL alert number 42", "Unauthenticated", /refused the client certificate/],
    ["certificate required", "error:0A00045C:SSL routines::tlsv13 alert certificate required", "Unauthenticated", /refused the client certificate/],
    ["unknown CA", "error:0A000418:SSL routines::tlsv1 alert unknown ca", "Unauthenticated", /refused the client certificate/],
    ["etcd's certificate from another CA", "Error: unable to verify the first certificate", "Unauthenticated", /etcd's certificate is not trusted/],
    ["self-signed etcd certificate", "Error: self-signed certificate", "Unauthenticated", /etcd's certificate is not trusted/],
    ["expired etcd certificate", "Error: certificate has expired", "Unauthenticated", /etcd's certificate is not trusted/],
    ["wrong name", "Error: Hostname/IP does not match certificate's altnames: IP: 127.0.0.2 is not in the cert's list", "Unauthenticated", /etcd's certificate is not trusted/],
    // Not about certificates: etcd may just be away, so these stay Unavailable (retried).
    ["plain connection refused", "Error: connect ECONNREFUSED 127.0.0.1:2379", "Unavailable", /^(?!.*TLS handshake)/],
    ["TLS to a plaintext port", "Error: Client network socket disconnected before secure TLS connection was established", "Unavailable", /^(?!.*TLS handshake)/]
  ] as const)("%s", (_name, lastError, reason, detail) => {
    const error = Etcd.toEtcdError(unavailable(lastError), "get x")
    expect(error.reason).toBe(reason)
    expect(error.detail).toMatch(detail)
  })

  it("an OpenSSL error while the client is built (unusable key or certificate) is InvalidArgument", () => {
    const cause = Object.assign(new Error("error:05800074:x509 certificate routines::key values mismatch"), { code: "ERR_OSSL_X509_KEY_VALUES_MISMATCH" })
    expect(Etcd.toEtcdError(cause, "connect").reason).toBe("InvalidArgument")
  })
})

describe("etcd over TLS with client certificates (real etcd, --client-cert-auth)", () => {
  it("the harness serves https only, and etcdctl with the client certificate works", async () => {
    expect(etcd.endpoints).toEqual([`https://127.0.0.1:${port}`])
    await etcd.ctlOk(["put", "tls-probe/x", "1"])
    expect((await etcd.ctlOk(["get", "tls-probe/x", "--print-value-only"])).trim()).toBe("1")
  })

  it.live("Registrar writes and revokes, Discovery follows, over TLS", () =>
    Effect.gen(function* () {
      const a = yield* echo("a")
      const address = `127.0.0.1:${a.port}`
      const scope = yield* Scope.make()
      const registrar = yield* Registrar.make({ service: "tls-reg", address, ttl: 5 }).pipe(Scope.provide(scope))
      yield* registrar.awaitRegistered.pipe(Effect.timeout("10 seconds"))
      const f = yield* follow("tls-reg")
      yield* f.waitFor("the registered backend", [address])
      const stored = yield* Effect.promise(() => etcd.ctlOk(["get", registrar.key, "--print-value-only"]))
      expect(stored.trim()).toBe(registrar.value)
      yield* Scope.close(scope, Exit.void)
      yield* f.waitFor("gone after the revoke", [])
    }).pipe(Effect.provide(layerWith(goodTls)), Effect.provide(logs.layer))
  )

  it("an etcd:// channel with ETCD_CACERT/ETCD_CERT/ETCD_KEY opens #2 to each backend registered by registerEndpoint", async () => {
    const service = "tls/echo"
    const servers = await Promise.all([startEchoServer({ name: "a" }), startEchoServer({ name: "b" })])
    const registrations = await Promise.all(
      servers.map((server) =>
        registerEndpoint({
          etcd: { hosts: etcd.endpoints, tls: goodTls },
          service,
          address: `127.0.0.1:${server.port}`,
          ttl: 5,
          logLevel: "None"
        })
      )
    )
    try {
      await withEnv(tlsEnv(goodTls), async () => {
        // The authority has no scheme: the TLS variables alone make the client use TLS.
        const channel = pooled(`etcd://127.0.0.1:${port}/${service}#2`)
        try {
          await channel.waitSlots(4)
          expect(tally(await callMany(channel.client, 40, 4))).toEqual({ a: 20, b: 20 })
          expect(servers.map((s) => s.observer.connections().length)).toEqual([2, 2])
        } finally {
          channel.close()
        }
      })
    } finally {
      await Promise.all(registrations.map((r) => r.close()))
      await Promise.all(servers.map((s) => s.close({ force: true })))
    }
  })

  it.live("AnchoredChannel on etcd:///service#2 takes an Etcd layer with https hosts and tls", () =>
    Effect.gen(function* () {
      const service = "tls/effect"
      const [a, b] = [yield* echo("a"), yield* echo("b")]
      for (const server of [a, b]) {
        yield* Registrar.make({ service, address: `127.0.0.1:${server.port}`, ttl: 5 }).pipe(
          Effect.flatMap((r) => r.awaitRegistered),
          Effect.timeout("10 seconds")
        )
      }
      const answers = yield* Effect.scoped(
        Effect.gen(function* () {
          const anchored = yield* AnchoredChannel.make({ target: `etcd:///${service}#2` })
          const client = anchored.client(EchoClient) as unknown as Echo
          yield* anchored.waitForReady("10 seconds")
          yield* waitUntil(
            "4 READY",
            anchored.stats.pipe(Effect.map((s) => s.connections.filter((c) => c.state === "READY").length === 4))
          )
          return yield* Effect.promise(() => callMany(client, 20, 2))
        })
      )
      expect(tally(answers)).toEqual({ a: 10, b: 10 })
      yield* Effect.promise(() =>
        eventually("connections closed with the scope", () => a.observer.connections().length + b.observer.connections().length === 0)
      )
    }).pipe(Effect.provide(Etcd.layer({ hosts: etcd.endpoints, tls: goodTls })), Effect.provide(logs.layer))
  )

  describe.each(badClients)("a client with %s", (_name, tls, words) => {
    // The error names the TLS handshake and the certificate with reason
    // Unauthenticated: it came from the handshake, not from a call timeout
    // (that one is Unavailable, "no answer within ...").
    const expectTlsError = (error: unknown) => {
      expect(error).toBeInstanceOf(Etcd.EtcdError)
      const e = error as Etcd.EtcdError
      expect(e.reason).toBe("Unauthenticated")
      expect(e.message).toMatch(/TLS handshake failed/)
      expect(e.message).toMatch(words)
      expect(Etcd.isTransient(e)).toBe(false)
    }

    it.live("a call fails at once with Unauthenticated naming the TLS handshake and the certificate", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(Effect.flatMap(Etcd.Etcd, (e) => e.range("get x", { key: "x" }))).pipe(
          Effect.provide(Etcd.layer({ hosts: etcd.endpoints, tls, callTimeout: "3 seconds" }))
        )
        expectTlsError(error)
        expect(error.operation).toBe("get x")
      })
    )

    it.live("with a user and password configured too, the certificate error survives the authentication that comes first", () =>
      Effect.gen(function* () {
        // The client authenticates before the call: the handshake's own
        // error must come out of that, not a timeout of the authentication.
        const error = yield* Effect.flip(Effect.flatMap(Etcd.Etcd, (e) => e.range("get x", { key: "x" }))).pipe(
          Effect.provide(
            Etcd.layer({ hosts: etcd.endpoints, tls, auth: { username: "u", password: Redacted.make("p") }, callTimeout: "3 seconds" })
          )
        )
        expectTlsError(error)
        expect(error.message).not.toContain("no answer within")
        expect(error.message).not.toContain("Redacted")
      })
    )

    it.live("Discovery's stream fails with it instead of retrying in silence", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flatMap(Discovery.Discovery, (d) => d.watch("tls-reg").pipe(Stream.runHead)).pipe(
          Effect.timeout("10 seconds"),
          Effect.flip,
          Effect.provide(layerWith(tls))
        )
        expectTlsError(error)
      }).pipe(Effect.provide(logs.layer))
    )

    it.live("the Registrar reports it in its status", () =>
      Effect.gen(function* () {
        const registrar = yield* Registrar.make({ service: "tls-reg", address: "127.0.0.1:7", ttl: 5 })
        const status = yield* firstStatusError(registrar)
        expectTlsError(status.error)
        expect(status.reason).toMatch(words)
      }).pipe(Effect.provide(Etcd.layer({ hosts: etcd.endpoints, tls })), Effect.provide(logs.layer))
    )

    it("registerEndpoint rejects with it instead of waiting forever", async () => {
      const error = await registerEndpoint({
        etcd: { hosts: etcd.endpoints, tls },
        service: "tls-reg",
        address: "127.0.0.1:7",
        logLevel: "None"
      }).then(
        async (registration) => {
          await registration.close()
          return undefined
        },
        (e: unknown) => e
      )
      expectTlsError(error)
    })

    it("the etcd resolver fails calls with UNAVAILABLE naming the service and the TLS handshake, before its 5 s timeout", async () => {
      // The call's 4 s deadline is the bound: a call still waiting then fails with DEADLINE_EXCEEDED.
      const error = await withEnv(tlsEnv(tls), () => firstCallError(`etcd://127.0.0.1:${port}/tls/refused#2`, { deadlineMs: 4_000 }))
      expect(error?.code).toBe(grpc.status.UNAVAILABLE)
      expect(error?.details).toContain('"tls/refused"')
      expect(error?.details).toMatch(/TLS handshake failed/)
      expect(error?.details).toMatch(words)
    })
  })
})
