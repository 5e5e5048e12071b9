/**
 * Registrar and Discovery while etcd fails: killed and restarted (data kept
 * or wiped), compacted past a watch that fell behind, a cluster member lost,
 * etcd unreachable at start and at close. Every test starts its own etcd.
 */
import { execFileSync } from "node:child_process"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Discovery from "../../src/adapters/etcd/Discovery.js"
import * as Etcd from "../../src/adapters/etcd/Etcd.js"
import * as Registrar from "../../src/adapters/etcd/Registrar.js"
import {
  captureLogs,
  connectedPorts,
  etcdCluster,
  etcdServer,
  expectNoOpenHandles,
  follow,
  leaseOf,
  waitUntil
} from "../support/etcd.js"

const record = (addr: string, metadata = "null") => `{"Op":0,"Addr":"${addr}","Metadata":${metadata}}`

/** Provides Etcd (on `hosts`) and Discovery, with captured logs, to `effect`. */
const withAdapters = (hosts: ReadonlyArray<string>, logs = captureLogs()) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(
      Effect.provide(Discovery.layer().pipe(Layer.provideMerge(Etcd.layer({ hosts })), Layer.provide(logs.layer))),
      Effect.provide(logs.layer)
    )

const registered = (registrar: Registrar.Registrar.Shape) =>
  registrar.awaitRegistered.pipe(
    Effect.timeoutOrElse({ duration: "20 seconds", orElse: () => Effect.fail(new Error("not registered in 20 s")) }),
    Effect.orDie
  )

afterAll(() => expectNoOpenHandles())

describe("Registrar and Discovery when etcd fails (real etcd)", () => {
  it.live("etcd killed and restarted with its data: registrations survive, the watch resumes", () =>
    Effect.gen(function* () {
      const server = yield* etcdServer
      yield* withAdapters(server.endpoints)(
        Effect.gen(function* () {
          const registrar = yield* Registrar.make({ service: "survive", address: "127.0.0.1:6000", ttl: 5 })
          const first = yield* registered(registrar)
          yield* Effect.promise(() => server.ctlOk(["put", "survive/static", record("127.0.0.1:6001")]))
          const f = yield* follow("survive")
          yield* f.waitFor("before the crash", ["127.0.0.1:6000", "127.0.0.1:6001"])

          yield* Effect.promise(() => server.restart({ kill: true }))
          yield* Effect.promise(() => server.ctlOk(["put", "survive/new", record("127.0.0.1:6002")]))
          yield* Effect.promise(() => server.ctlOk(["del", "survive/static"]))
          yield* f.waitFor("changes made after the restart", ["127.0.0.1:6000", "127.0.0.1:6002"], { timeout: "20 seconds" })

          // The lease survived the restart (etcd keeps leases with the data) and is still kept alive.
          expect(yield* leaseOf(server.ctl, registrar.key)).toBe(first.leaseId)
          yield* waitUntil(
            "registrar registered again",
            registrar.status.pipe(Effect.map((s) => s._tag === "Registered"))
          )
          // The registration never disappeared from what discovery saw.
          for (const snapshot of yield* f.all) expect(snapshot.addresses).toContain("127.0.0.1:6000")
        })
      )
    })
  )

  it.live("etcd restarted with its data wiped: the registrar writes its record again, discovery sees it", () =>
    Effect.gen(function* () {
      const server = yield* etcdServer
      yield* withAdapters(server.endpoints)(
        Effect.gen(function* () {
          const registrar = yield* Registrar.make({ service: "wiped", address: "127.0.0.1:6100", ttl: 3 })
          const first = yield* registered(registrar)
          yield* Effect.promise(() => server.ctlOk(["put", "wiped/static", record("127.0.0.1:6101")]))
          const f = yield* follow("wiped")
          yield* f.waitFor("before the wipe", ["127.0.0.1:6100", "127.0.0.1:6101"])

          yield* Effect.promise(() => server.restart({ kill: true, wipe: true }))
          // The new etcd has nothing; the registrar's record comes back under a new lease,
          // and discovery drops the record that went with the old data.
          yield* f.waitFor("after the wipe", ["127.0.0.1:6100"], { timeout: "25 seconds" })
          const lease = yield* leaseOf(server.ctl, registrar.key)
          expect(lease).toBeDefined()
          expect(lease).not.toBe(first.leaseId)
        })
      )
    })
  )

  it.live("compaction past a watch that fell behind: discovery lists again", () =>
    Effect.gen(function* () {
      const server = yield* etcdServer
      const logs = captureLogs()
      yield* withAdapters(server.endpoints, logs)(
        Effect.gen(function* () {
          yield* Effect.promise(() => server.ctlOk(["put", "comp/k0", record("10.9.0.0:80")]))
          const f = yield* follow("comp")
          yield* f.waitFor("initial", ["10.9.0.0:80"])
          // Block this process's event loop (so the watch stream is not read,
          // etcd's send buffer for it fills and etcd takes the watcher off its
          // synced list) while a child process writes a thousand large
          // revisions with the library's own client and deletes a key, and
          // etcdctl compacts everything (the client has no Compact RPC).
          const script = `
            import * as Effect from "effect/Effect"
            import * as Etcd from ${JSON.stringify(pathToFileURL(path.resolve("src/adapters/etcd/Etcd.ts")).href)}
            const pad = "x".repeat(2000)
            const program = Effect.scoped(Effect.gen(function* () {
              const etcd = yield* Etcd.make({ hosts: ${JSON.stringify(server.endpoints)}, autoSync: false })
              for (let round = 1; round <= 200; round++)
                for (let k = 0; k < 5; k++)
                  yield* etcd.put("put comp/k" + k, { key: "comp/k" + k, value: JSON.stringify({ Op: 0, Addr: "10.9." + round + "." + k + ":80", Metadata: pad }) })
              yield* etcd.deleteRange("delete comp/k4", { key: "comp/k4" })
              const { header } = yield* etcd.range("get comp/k0", { key: "comp/k0" })
              return header.revision
            }))
            Effect.runPromise(program).then(
              (revision) => process.stdout.write(String(revision)),
              (error) => { console.error(error); process.exit(1) }
            )`
          const revision = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
            cwd: process.cwd(),
            timeout: 60_000,
            encoding: "utf8",
            stdio: ["ignore", "pipe", "inherit"]
          }).trim()
          expect(revision).toMatch(/^\d+$/)
          expect(BigInt(revision)).toBeGreaterThan(1000n)
          execFileSync("etcdctl", [`--endpoints=${server.endpoints.join(",")}`, "compact", revision, "--physical"], {
            env: { ...process.env, ETCDCTL_API: "3" },
            timeout: 30_000,
            stdio: ["ignore", "ignore", "inherit"]
          })
          yield* f.waitFor("final state", ["10.9.200.0:80", "10.9.200.1:80", "10.9.200.2:80", "10.9.200.3:80"], {
            timeout: "20 seconds"
          })
          expect(logs.lines.some((l) => l.message.includes("relisting comp/") && l.message.includes("Compacted"))).toBe(true)
        })
      )
    })
  )

  it.live("3-member cluster: kill the member the client is attached to; registration and discovery go on", () =>
    Effect.gen(function* () {
      const cluster = yield* etcdCluster(3)
      yield* withAdapters(cluster.endpoints)(
        Effect.gen(function* () {
          const registrar = yield* Registrar.make({ service: "clustered", address: "127.0.0.1:6200", ttl: 2 })
          yield* registered(registrar)
          const f = yield* follow("clustered")
          yield* f.waitFor("initial", ["127.0.0.1:6200"])

          const ports = connectedPorts()
          const counts = cluster.members.map((m) => ports.filter((p) => p === m.spec.clientPort).length)
          const victim = counts.indexOf(Math.max(...counts))
          expect(counts[victim]).toBeGreaterThan(0)
          yield* Effect.promise(() => cluster.kill(victim))

          yield* Effect.promise(() => cluster.ctlOk(["put", "clustered/new", record("127.0.0.1:6201")]))
          yield* f.waitFor("a put after the kill", ["127.0.0.1:6200", "127.0.0.1:6201"], { timeout: "25 seconds" })
          // Twice the TTL later the record is still there: keep-alives moved to a live member.
          yield* Effect.sleep("4500 millis")
          expect(yield* leaseOf(cluster.ctl, registrar.key)).toBeDefined()
          yield* waitUntil("registered", registrar.status.pipe(Effect.map((s) => s._tag === "Registered")), {
            timeout: "20 seconds"
          })
          yield* Effect.promise(() => cluster.restart(victim))
          yield* Effect.promise(() => cluster.ctlOk(["del", "clustered/new"]))
          yield* f.waitFor("after the member is back", ["127.0.0.1:6200"], { timeout: "20 seconds" })
        })
      )
    })
  )

  it.live("etcd down at start: the registrar keeps trying and registers when etcd comes", () =>
    Effect.gen(function* () {
      const server = yield* etcdServer
      yield* Effect.promise(() => server.kill())
      yield* withAdapters(server.endpoints)(
        Effect.gen(function* () {
          const registrar = yield* Registrar.make({ service: "late", address: "127.0.0.1:6300", ttl: 3 })
          const f = yield* follow("late")
          yield* waitUntil(
            "reconnecting",
            registrar.status.pipe(Effect.map((s) => s._tag === "Reconnecting"))
          )
          expect(yield* f.latest).toBeUndefined()
          yield* Effect.promise(() => server.start())
          yield* registered(registrar)
          yield* f.waitFor("registered and discovered", ["127.0.0.1:6300"], { timeout: "20 seconds" })
        })
      )
    })
  )

  it.live("closing with etcd unreachable is bounded", () =>
    Effect.gen(function* () {
      const server = yield* etcdServer
      const scope = yield* Scope.make()
      const registrar = yield* withAdapters(server.endpoints)(
        Effect.gen(function* () {
          const registrar = yield* Registrar.make({
            service: "unreachable",
            address: "127.0.0.1:6400",
            revokeTimeout: "1 second"
          })
          yield* registered(registrar)
          const f = yield* follow("unreachable")
          yield* f.waitFor("initial", ["127.0.0.1:6400"])
          return registrar
        })
      ).pipe(Scope.provide(scope))
      yield* Effect.promise(() => server.kill())
      // The bound: a close still running after 4 s fails the test (revokeTimeout is 1 s).
      yield* Scope.close(scope, Exit.void).pipe(
        Effect.timeoutOrElse({ duration: "4 seconds", orElse: () => Effect.fail(new Error("closing took more than 4 s with etcd unreachable")) })
      )
      expect((yield* registrar.status)._tag).toBe("Closed")
    })
  )
})
