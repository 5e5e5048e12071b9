/**
 * No secret in any output. Against a real etcd with TLS client certificates
 * and authentication, the Registrar, Discovery, registerEndpoint, the etcd
 * resolver and the `grpc-anchor register` command are run with a distinctive
 * password and a TLS private key, failures are provoked (wrong password,
 * unreachable etcd, certificates etcd refuses, unusable key files, the key's
 * PEM text where its path belongs), and everything that comes out is grepped:
 * Effect log lines with their causes (logfmt and JSON), console and
 * stdout/stderr output, and every error as message, `String(error)`, JSON
 * and `util.inspect`. Neither the password nor a line of the key's PEM body
 * may appear anywhere.
 */
import * as grpc from "@grpc/grpc-js"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as References from "effect/References"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Discovery from "../../src/adapters/etcd/Discovery.js"
import * as Etcd from "../../src/adapters/etcd/Etcd.js"
import * as Registrar from "../../src/adapters/etcd/Registrar.js"
import { call, startEchoServer } from "../../packages/cli/src/echo/echo.js"
import { register } from "../../src/main/index.js"
import { registerEndpoint } from "../../src/main/promise/registerEndpoint.js"
import { captureOutput, findSecrets, renderings, secretNeedles } from "../support/capture.js"
import { etcdCertificates } from "../support/certs.js"
import { withEnv } from "../support/env.js"
import { enablePrefixAuth, firstStatusError, freePort } from "../support/etcd.js"
import { etcdForFile } from "../support/etcdForFile.js"
import { firstCallError, pooled } from "../support/pooled.js"
import { killAll, requireBuild, run } from "../../packages/cli/test/run.js"

register()

const PASSWORD = "Quokka-Password-9c1f4e27-DO-NOT-PRINT"
const WRONG_PASSWORD = "Wombat-Mistyped-7b2d8a61-DO-NOT-PRINT"
const USER = "svc-writer"
const ROOT = "root:Root-Admin-Pass-3141"

const { ca, certs, clientPair, foreignPair, foreignTls, goodTls: good, serverPair } = etcdCertificates()
type Tls = NonNullable<Etcd.EtcdOptions["tls"]>
const goodTls: Tls = good

/** The key's PEM text where its path belongs (ETCD_KEY="$(cat key.pem)"). */
const pemAsPath: Tls = { ...goodTls, keyFile: clientPair.key.toString("utf8") }
/** A certificate with another certificate's key. */
const mismatched: Tls = { ...goodTls, keyFile: foreignPair.keyPath }

const NEEDLES = [
  PASSWORD,
  WRONG_PASSWORD,
  ...secretNeedles(clientPair.key),
  ...secretNeedles(foreignPair.key)
]

// Registered before etcdForFile: afterAll hooks run newest first, so the
// certificates are removed after etcd has stopped.
afterAll(() => certs.cleanup())
const etcd = etcdForFile({
  tls: { certFile: serverPair.certPath, keyFile: serverPair.keyPath, trustedCaFile: ca.certPath, client: goodTls as Required<Tls> },
  checkHandles: true
})
let port: number
let closedPort: number
beforeAll(async () => {
  port = etcd.member.spec.clientPort
  closedPort = await freePort()
  await enablePrefixAuth(etcd, { root: ROOT, role: "svc-rw", prefix: "svc/", user: USER, password: PASSWORD })
})
// The `grpc-anchor register` runs of the last test.
afterEach(killAll)

type Haystack = { readonly source: string; readonly text: string }

/**
 * One scenario's outputs: console and streams are captured while `body`
 * runs; `logger` records every Effect log line with its cause; `error`
 * records every rendering of an error. Afterwards all of it is grepped.
 */
const scenario = async (
  name: string,
  body: (tools: {
    readonly logger: Layer.Layer<never>
    readonly error: (source: string, error: unknown) => void
    readonly text: (source: string, text: string) => void
  }) => Promise<void>
): Promise<ReadonlyArray<Haystack>> => {
  const haystacks: Array<Haystack> = []
  const logLines: Array<string> = []
  const logger = Layer.merge(
    Logger.layer([
      Logger.make((options) => {
        logLines.push(Logger.formatLogFmt.log(options), Logger.formatJson.log(options))
        if (options.cause.reasons.length > 0) logLines.push(Cause.pretty(options.cause))
      })
    ]),
    Layer.succeed(References.MinimumLogLevel, "All")
  )
  const output = captureOutput()
  try {
    await body({
      logger,
      error: (source, error) => {
        for (const text of renderings(error)) haystacks.push({ source: `${name}: ${source}`, text })
      },
      text: (source, text) => haystacks.push({ source: `${name}: ${source}`, text })
    })
  } finally {
    output.restore()
  }
  for (const line of output.lines) haystacks.push({ source: `${name}: console/stdout/stderr`, text: line })
  for (const line of logLines) haystacks.push({ source: `${name}: Effect log`, text: line })
  expect(findSecrets(haystacks, NEEDLES)).toEqual([])
  return haystacks
}

/** Whether some output mentions `word` (so that a scenario is not vacuously clean). */
const mentions = (haystacks: ReadonlyArray<Haystack>, word: string | RegExp) =>
  haystacks.some((h) => (typeof word === "string" ? h.text.includes(word) : word.test(h.text)))

const etcdOptions = (password: string, tls: Tls, hosts: ReadonlyArray<string> = etcd.endpoints): Etcd.EtcdOptions => ({
  hosts,
  auth: { username: USER, password: Redacted.make(password) },
  tls,
  callTimeout: "2 seconds"
})

/** A registrar's first status with an error, then a second of its retries (and their logs). */
const registrarErrors = (options: Etcd.EtcdOptions, record: (source: string, error: unknown) => void) =>
  Effect.scoped(
    Effect.gen(function* () {
      const registrar = yield* Registrar.make({ service: "svc", address: "127.0.0.1:7", ttl: 5 })
      const first = yield* firstStatusError(registrar)
      yield* Effect.sleep("1 second")
      const last = yield* registrar.status
      for (const status of [first, last]) {
        if (status._tag === "Reconnecting") {
          record("registrar status reason", status.reason)
          record("registrar status error", status.error)
        }
      }
      return first.error
    })
  ).pipe(Effect.provide(Etcd.layer(options)))

/** Discovery's failure, or whatever it logged within `forMs` while it kept retrying. */
const discoveryError = (options: Etcd.EtcdOptions, forMs = 10_000) =>
  Effect.flatMap(Discovery.Discovery, (d) => d.watch("svc").pipe(Stream.runHead)).pipe(
    Effect.timeout(forMs),
    Effect.provide(Discovery.layer().pipe(Layer.provide(Etcd.layer(options)))),
    Effect.flip
  )

const envOf = (password: string, tls: Tls) => ({
  ETCD_USERNAME: USER,
  ETCD_PASSWORD: password,
  ETCD_CACERT: tls.caFile!,
  ETCD_CERT: tls.certFile!,
  ETCD_KEY: tls.keyFile!
})

/** The first call's error on `etcd://127.0.0.1:etcdPort/svc#2` with the given environment. */
const resolverError = (env: Record<string, string>, etcdPort = port) =>
  withEnv(env, () =>
    firstCallError(`etcd://127.0.0.1:${etcdPort}/svc#2`, {
      deadlineMs: 8_000,
      channelOptions: { "grpc_anchor.etcd_resolution_timeout_ms": 1_000 }
    })
  )

/** registerEndpoint's rejection with this password and TLS (undefined if it registered). */
const registerError = (password: string, tls: Tls) =>
  registerEndpoint({
    etcd: { hosts: etcd.endpoints, auth: { username: USER, password }, tls },
    service: "svc",
    address: "127.0.0.1:7",
    logLevel: "Debug"
  }).then(
    async (registration) => {
      await registration.close()
      return undefined
    },
    (e: unknown) => e
  )

describe("no secret in any output (real etcd with TLS client certificates and authentication)", () => {
  it("a wrong password: Registrar, Discovery, registerEndpoint and the resolver", async () => {
    const seen = await scenario("wrong password", async ({ error, logger }) => {
      const options = etcdOptions(WRONG_PASSWORD, goodTls)
      const registrar = await Effect.runPromise(registrarErrors(options, error).pipe(Effect.provide(logger)))
      expect(registrar.reason).toBe("Unauthenticated")
      const discovery = await Effect.runPromise(discoveryError(options).pipe(Effect.provide(logger)))
      error("discovery", discovery)
      expect(discovery._tag === "EtcdError" && discovery.reason).toBe("Unauthenticated")
      const rejected = await registerError(WRONG_PASSWORD, goodTls)
      error("registerEndpoint", rejected)
      expect(rejected).toMatchObject({ _tag: "EtcdError", reason: "Unauthenticated" })
      const resolver = await resolverError(envOf(WRONG_PASSWORD, goodTls))
      error("resolver call", resolver)
      expect(resolver?.details).toContain("Unauthenticated")
    })
    expect(mentions(seen, "authentication failed")).toBe(true)
  })

  it("an unreachable etcd: Registrar, Discovery (retrying) and the resolver", async () => {
    const seen = await scenario("unreachable", async ({ error, logger }) => {
      const options = etcdOptions(PASSWORD, goodTls, [`https://127.0.0.1:${closedPort}`])
      const registrar = await Effect.runPromise(registrarErrors(options, error).pipe(Effect.provide(logger)))
      expect(registrar.reason).toBe("Unavailable")
      // Discovery retries an unreachable etcd forever: give it 1.5 s of retries and their warnings.
      const discovery = await Effect.runPromise(discoveryError(options, 1_500).pipe(Effect.provide(logger)))
      error("discovery", discovery)
      const resolver = await resolverError(envOf(PASSWORD, goodTls), closedPort)
      error("resolver call", resolver)
      expect(resolver?.code).toBe(grpc.status.UNAVAILABLE)
    })
    expect(mentions(seen, /listing svc\/ failed/)).toBe(true)
  })

  it("certificates etcd refuses, a mismatched key, and the key's PEM text where its path belongs", async () => {
    const seen = await scenario("bad TLS", async ({ error, logger }) => {
      for (const [name, tls, reason] of [
        ["foreign certificate", foreignTls, "Unauthenticated"],
        ["mismatched key", mismatched, "InvalidArgument"],
        ["PEM as path", pemAsPath, "InvalidArgument"]
      ] as const) {
        const options = etcdOptions(PASSWORD, tls)
        const discovery = await Effect.runPromise(discoveryError(options).pipe(Effect.provide(logger)))
        error(`${name}: discovery`, discovery)
        expect(discovery._tag === "EtcdError" && discovery.reason).toBe(reason)
        const rejected = await registerError(PASSWORD, tls)
        error(`${name}: registerEndpoint`, rejected)
        expect(rejected).toMatchObject({ _tag: "EtcdError", reason })
        const resolver = await resolverError(envOf(PASSWORD, tls))
        error(`${name}: resolver call`, resolver)
        expect(resolver?.code).toBe(grpc.status.UNAVAILABLE)
      }
      // The Registrar, once, with the PEM text as the key path.
      const layerError = await Effect.runPromise(
        Effect.flip(registrarErrors(etcdOptions(PASSWORD, pemAsPath), error)).pipe(Effect.provide(logger))
      )
      error("PEM as path: registrar layer", layerError)
    })
    expect(mentions(seen, "TLS handshake failed")).toBe(true)
    expect(mentions(seen, "looks like PEM content")).toBe(true)
  })

  it("success, with every debug log: register, discover, resolve, deregister", async () => {
    const server = await startEchoServer({ name: "a" })
    try {
      const seen = await scenario("success", async ({ logger }) => {
        const options = etcdOptions(PASSWORD, goodTls)
        await Effect.runPromise(
          Effect.gen(function* () {
            const scope = yield* Scope.make()
            const registrar = yield* Registrar.make({ service: "svc", address: `127.0.0.1:${server.port}`, ttl: 5 }).pipe(
              Scope.provide(scope)
            )
            yield* registrar.awaitRegistered.pipe(Effect.timeout("10 seconds"))
            const discovery = yield* Discovery.Discovery
            yield* discovery.watch("svc").pipe(Stream.runHead, Effect.timeout("10 seconds"))
            const answer = yield* Effect.promise(() =>
              withEnv(envOf(PASSWORD, goodTls), () => {
                const channel = pooled(`etcd://127.0.0.1:${port}/svc#2`)
                return call(channel.client, { waitForReady: true }).finally(() => channel.close())
              })
            )
            expect(answer).toBe("a")
            yield* Scope.close(scope, Exit.void)
          }).pipe(Effect.provide(Discovery.layer().pipe(Layer.provideMerge(Etcd.layer(options)))), Effect.provide(logger))
        )
        const registration = await registerEndpoint({
          etcd: { hosts: etcd.endpoints, auth: { username: USER, password: PASSWORD }, tls: goodTls },
          service: "svc",
          address: `127.0.0.1:${server.port}`,
          logLevel: "Debug"
        })
        await registration.close()
      })
      expect(mentions(seen, /registered 127\.0\.0\.1:\d+ with lease/)).toBe(true)
    } finally {
      await server.close({ force: true })
    }
  })

  /**
   * Runs `grpc-anchor register --verbose` with `env` (at most 20 s). The
   * command inherits this process's environment: every other ETCD_*
   * variable is blanked so that only `env` configures etcd.
   */
  const cli = (hosts: string, env: Record<string, string>) => {
    const blanked = Object.fromEntries(
      Object.keys(process.env)
        .filter((name) => name.startsWith("ETCD_"))
        .map((name) => [name, ""])
    )
    return run(["register", "--etcd", hosts, "--service", "svc", "--address", "127.0.0.1:7", "--ttl", "5", "--verbose"], {
      env: { ...blanked, ...env },
      timeoutMs: 20_000
    })
  }

  // The command is built by `npm run build` (npm test builds before it runs the suites).
  it("grpc-anchor register --verbose: wrong password, PEM text as ETCD_KEY, unreachable etcd", async () => {
    requireBuild()
    const runs = [
      ["wrong password", etcd.endpoints[0]!, envOf(WRONG_PASSWORD, goodTls)],
      ["PEM text as ETCD_KEY", etcd.endpoints[0]!, envOf(PASSWORD, pemAsPath)],
      ["foreign certificate", etcd.endpoints[0]!, envOf(PASSWORD, foreignTls)],
      ["unreachable", `https://127.0.0.1:${closedPort}`, envOf(PASSWORD, goodTls)]
    ] as const
    const results = await Promise.all(runs.map(([, hosts, env]) => cli(hosts, env)))
    const haystacks = results.flatMap((r, i) => [
      { source: `cli ${runs[i]![0]}: stdout`, text: r.stdout },
      { source: `cli ${runs[i]![0]}: stderr`, text: r.stderr }
    ])
    expect(findSecrets(haystacks, NEEDLES)).toEqual([])
    // Each run failed, and said why on stderr.
    expect(results.map((r) => r.code)).toEqual([1, 1, 1, 1])
    expect(results[0]!.stderr).toContain("Unauthenticated")
    expect(results[1]!.stderr).toContain("looks like PEM content")
    expect(results[2]!.stderr).toContain("TLS handshake failed")
    expect(results[3]!.stderr).toMatch(/cannot reach etcd/)
  }, 40_000)
})
