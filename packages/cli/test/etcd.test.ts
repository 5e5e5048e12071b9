/**
 * `grpc-anchor register` and `grpc-anchor watch` from the build against a
 * real etcd (test/support/etcd.ts starts it): watch sees the registration
 * and the removal when register gets SIGTERM; register exits 0 with its
 * lease revoked. Also `demo --etcd`, and etcd with authentication.
 */
import { afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import { etcdForFile } from "../../../test/support/etcdForFile.js"
import { hasStackTrace, killAll, requireBuild, run, start } from "./run.js"

beforeAll(requireBuild)
const etcd = etcdForFile()
afterEach(killAll)

interface WatchLine {
  event: "snapshot" | "added" | "removed" | "updated"
  service: string
  revision: string
  endpoints: unknown
  address?: string
  metadata?: unknown
}
const parse = (line: string) => JSON.parse(line) as WatchLine

describe("register and watch (real etcd)", () => {
  it("watch sees a registration and its removal on SIGTERM; register exits 0 with the lease revoked", async () => {
    const host = etcd.endpoints[0]!
    const watch = start(["watch", "--json", `etcd://${host}/cli-svc`])
    const snapshot = parse(await watch.waitForLine("the first snapshot", (l) => l.includes('"snapshot"')))
    expect(snapshot).toMatchObject({ event: "snapshot", service: "cli-svc", endpoints: [] })

    const register = start([
      "register", "--etcd", host, "--service", "cli-svc", "--address", "127.0.0.1:7001", "--ttl", "30", "--metadata", '{"zone":"a"}'
    ])
    const registered = await register.waitForLine("the registered line", (l) => l.startsWith("registered "))
    const lease = /lease ([0-9a-f]+)/.exec(registered)?.[1]
    expect(lease).toBeDefined()
    expect(registered).toContain("cli-svc/127.0.0.1:7001")

    const added = parse(await watch.waitForLine("the added event", (l) => l.includes('"added"')))
    expect(added).toMatchObject({ event: "added", address: "127.0.0.1:7001", metadata: { zone: "a" }, endpoints: 1 })
    expect(await etcd.ctlOk(["get", "cli-svc/127.0.0.1:7001", "--print-value-only"])).toContain('"Addr":"127.0.0.1:7001"')
    expect(await etcd.ctlOk(["lease", "list"])).toContain(lease!)

    register.signal("SIGTERM")
    const done = await register.exited(10_000)
    expect(done.code).toBe(0)
    expect(done.stderr).toBe("")
    expect(done.stdout).toContain("deregistered 127.0.0.1:7001: lease revoked, cli-svc/127.0.0.1:7001 removed")

    // Gone from etcd at once (the TTL of 30 s has not run out): the lease was revoked.
    expect((await etcd.ctlOk(["get", "--prefix", "cli-svc/"])).trim()).toBe("")
    expect(await etcd.ctlOk(["lease", "list"])).not.toContain(lease!)
    const removed = parse(await watch.waitForLine("the removed event", (l) => l.includes('"removed"')))
    expect(removed).toMatchObject({ event: "removed", address: "127.0.0.1:7001", endpoints: 0 })

    watch.signal("SIGINT")
    const watched = await watch.exited(10_000)
    expect(watched.code).toBe(0)
    expect(watched.stderr).toBe("")
  })

  it("watch prints the current set first and each change in text; SIGTERM ends it with 0", async () => {
    const host = etcd.endpoints[0]!
    await etcd.ctlOk(["put", "text-svc/10.0.0.1:80", '{"Op":0,"Addr":"10.0.0.1:80","Metadata":null}'])
    const watch = start(["watch", `etcd://${host}/text-svc`])
    await watch.waitForLine("the endpoint list", (l) => l === "  10.0.0.1:80")
    expect(watch.stdout()).toMatch(/text-svc: 1 endpoint \(revision \d+\)/)
    await etcd.ctlOk(["put", "text-svc/10.0.0.2:80", '{"Op":0,"Addr":"10.0.0.2:80","Metadata":null}'])
    await watch.waitForLine("the added line", (l) => / \+ 10\.0\.0\.2:80 {2}\(revision \d+; 2 endpoints\)$/.test(l))
    await etcd.ctlOk(["del", "text-svc/10.0.0.1:80"])
    await watch.waitForLine("the removed line", (l) => / - 10\.0\.0\.1:80 {2}\(revision \d+; 1 endpoint\)$/.test(l))
    watch.signal("SIGTERM")
    expect((await watch.exited(10_000)).code).toBe(0)
  })

  // GNU `timeout` (and an impatient operator) sends a second signal while the
  // command shuts down: it must still revoke the lease, confirm, and exit 0.
  // The repeats (every 5 ms until it exits, at most 400) also land after the
  // runtime's own handlers are gone, just before the process exits.
  it.each([
    ["SIGTERM", "SIGTERM"],
    ["SIGINT", "SIGINT"],
    ["SIGTERM", "SIGINT"]
  ] as const)("register: %s then repeated %s still deregisters: the record is gone right after exit, exit 0", async (first, second) => {
    const host = etcd.endpoints[0]!
    const service = `twice-${first}-${second}`.toLowerCase()
    const register = start(["register", "--etcd", host, "--service", service, "--address", "127.0.0.1:7004", "--ttl", "60"])
    const registered = await register.waitForLine("the registered line", (l) => l.startsWith("registered "))
    const lease = /lease ([0-9a-f]+)/.exec(registered)?.[1]
    expect(lease).toBeDefined()
    register.signal(first)
    register.signal(second)
    let repeats = 0
    const again = setInterval(() => {
      if (++repeats > 400 || register.child.exitCode !== null || register.child.signalCode !== null) return clearInterval(again)
      register.signal(second)
    }, 5)
    const done = await register.exited(15_000).finally(() => clearInterval(again))
    expect(done.signal, done.stderr).toBeNull()
    expect(done.code, done.stderr).toBe(0)
    expect(done.stderr).toBe("")
    expect(done.stdout).toContain(`deregistered 127.0.0.1:7004: lease revoked, ${service}/127.0.0.1:7004 removed`)
    // Gone at once (the TTL of 60 s has not run out): the lease was revoked.
    expect((await etcd.ctlOk(["get", "--prefix", `${service}/`])).trim()).toBe("")
    expect(await etcd.ctlOk(["lease", "list"])).not.toContain(lease!)
  })

  it("a warning of the library is printed once, as one line of the command's logger", async () => {
    const host = etcd.endpoints[0]!
    await etcd.ctlOk(["put", "warn-svc/10.0.0.1:80", '{"Op":0,"Addr":"10.0.0.1:80","Metadata":null}'])
    await etcd.ctlOk(["put", "warn-svc/bad", "not json"])
    const watch = start(["watch", "--json", `etcd://${host}/warn-svc`])
    const snapshot = parse(await watch.waitForLine("the first snapshot", (l) => l.includes('"snapshot"')))
    expect(snapshot.endpoints).toEqual([{ address: "10.0.0.1:80", metadata: null }])
    watch.signal("SIGTERM")
    const done = await watch.exited(10_000)
    expect(done.code).toBe(0)
    // Only the command's logger prints it (Effect's default logger would print it again, on stdout).
    expect(done.stdout).not.toContain("skipping")
    for (const line of done.stdout.trimEnd().split("\n")) expect(() => JSON.parse(line), line).not.toThrow()
    const lines = done.stderr.trimEnd().split("\n")
    expect(lines, done.stderr).toHaveLength(1)
    expect(lines[0]).toMatch(/^grpc-anchor: warn: skipping a bad endpoint record: .*\(.*key=warn-svc\/bad.*\)$/)
  })

  it("register writes the canonical address, and SIGINT deregisters too", async () => {
    const host = etcd.endpoints[0]!
    const register = start(["register", "--etcd", host, "--service", "int-svc", "--address", "LOCALHOST:7002"])
    await register.waitForLine("the registered line", (l) => l.startsWith("registered localhost:7002 as int-svc/localhost:7002"))
    expect(await etcd.ctlOk(["get", "--prefix", "int-svc/", "--keys-only"])).toContain("int-svc/localhost:7002")
    register.signal("SIGINT")
    expect((await register.exited(10_000)).code).toBe(0)
    expect((await etcd.ctlOk(["get", "--prefix", "int-svc/"])).trim()).toBe("")
  })
})

describe("demo --etcd (real etcd)", () => {
  it("registers the servers, dials etcd://HOST:PORT/demo#2, and passes: 2/2/2 connections, equal shares", async () => {
    const host = etcd.endpoints[0]!
    const result = await run(["demo", "--etcd", host, "--service", "cli-demo", "--json", "--duration", "5", "--ttl", "2"], {
      timeoutMs: 60_000
    })
    expect(result.stderr).toBe("")
    expect(result.code).toBe(0)
    const summary = JSON.parse(result.stdout) as {
      ok: boolean
      mode: string
      target: string
      servers: Array<{ name: string; connections: number | null }>
      phases: Array<{ name: string; judged: boolean; shares: Array<{ share: number; expected: number | null }> }>
      checks: Array<{ name: string; ok: boolean }>
    }
    expect(summary.checks.filter((c) => !c.ok)).toEqual([])
    expect(summary.mode).toBe("etcd")
    expect(summary.target).toBe(`etcd://${host}/cli-demo#2`)
    expect(summary.servers.map((s) => s.connections)).toEqual([2, 2, 2])
    expect(summary.checks.map((c) => c.name)).toContain("the killed server's record expired")
    const third = summary.phases.find((p) => p.name === "third down")!
    expect(third.shares.map((s) => s.expected)).toEqual([0.5, 0.5, 0])
    // Equal shares measured, not only expected: every judged phase within 0.02 of what it expects.
    const judged = summary.phases.filter((p) => p.judged)
    expect(judged.map((p) => p.name)).toEqual(["all up", "third down", "rejoined"])
    for (const phase of judged) {
      expect(phase.shares).toHaveLength(3)
      for (const s of phase.shares) {
        expect(s.expected, phase.name).not.toBeNull()
        expect(Math.abs(s.share - s.expected!), `${phase.name}: ${JSON.stringify(phase.shares)}`).toBeLessThanOrEqual(0.02)
      }
    }
    // The servers deregistered when the demo ended.
    expect((await etcd.ctlOk(["get", "--prefix", "cli-demo/"])).trim()).toBe("")
  }, 90_000)

  it("refuses to run when the service already has records", async () => {
    const host = etcd.endpoints[0]!
    await etcd.ctlOk(["put", "busy-demo/10.0.0.9:80", '{"Op":0,"Addr":"10.0.0.9:80","Metadata":null}'])
    const result = await run(["demo", "--etcd", host, "--service", "busy-demo", "--duration", "1"])
    expect(result.code).toBe(1)
    expect(result.stderr.trimEnd().split("\n")).toEqual([
      "grpc-anchor: service busy-demo already has 1 record(s) in etcd (busy-demo/10.0.0.9:80); stop those servers or pick another --service"
    ])
  })
})

describe("etcd with authentication", () => {
  const PASSWORD = "cli-Secret-4711"
  const secured = etcdForFile()
  beforeAll(async () => {
    await secured.ctlOk(["user", "add", `root:${PASSWORD}`])
    await secured.ctlOk(["auth", "enable"])
  })

  it("a wrong password: exit 1, one line, no password; the right one from the environment works", async () => {
    const host = secured.endpoints[0]!
    const wrong = "wrong-Secret-0815"
    const bad = await run(["watch", `etcd://${host}/auth-svc`, "--verbose"], { env: { ETCD_USERNAME: "root", ETCD_PASSWORD: wrong } })
    expect(bad.code).toBe(1)
    expect(bad.stderr.split("\n")[0]).toMatch(/^grpc-anchor: etcd at .* refused: .*Unauthenticated/)
    expect(bad.stdout + bad.stderr).not.toContain(wrong)
    const plain = await run(["watch", `etcd://${host}/auth-svc`], { env: { ETCD_USERNAME: "root", ETCD_PASSWORD: wrong } })
    expect(plain.stderr.trimEnd().split("\n")).toHaveLength(1)
    expect(hasStackTrace(plain.stderr)).toBe(false)

    const register = start(["register", "--etcd", host, "--service", "auth-svc", "--address", "127.0.0.1:7003", "--verbose"], {
      env: { ETCD_USERNAME: "root", ETCD_PASSWORD: PASSWORD }
    })
    await register.waitForLine("the registered line", (l) => l.startsWith("registered "))
    register.signal("SIGTERM")
    const done = await register.exited(10_000)
    expect(done.code).toBe(0)
    expect(done.stdout + done.stderr).not.toContain(PASSWORD)
  })

  it("demo --etcd: the servers and the channel take the credentials from the environment", async () => {
    const host = secured.endpoints[0]!
    const result = await run(["demo", "--etcd", host, "--service", "auth-demo", "--json", "--duration", "4"], {
      timeoutMs: 60_000,
      env: { ETCD_USERNAME: "root", ETCD_PASSWORD: PASSWORD }
    })
    expect(result.stderr).toBe("")
    expect(result.code).toBe(0)
    expect(result.stdout).not.toContain(PASSWORD)
    const summary = JSON.parse(result.stdout) as { ok: boolean; servers: Array<{ connections: number | null }> }
    expect(summary.ok).toBe(true)
    expect(summary.servers.map((s) => s.connections)).toEqual([2, 2, 2])
  }, 90_000)
})

describe("register --connections (real etcd)", () => {
  it("writes the count into the record's Metadata, Go's format byte for byte, beside --metadata", async () => {
    const host = etcd.endpoints[0]!
    const register = start([
      "register", "--etcd", host, "--service", "counted", "--address", "127.0.0.1:7101", "--ttl", "30", "--connections", "3"
    ])
    await register.waitForLine("the registered line", (l) => l.startsWith("registered "))
    expect((await etcd.ctlOk(["get", "counted/127.0.0.1:7101", "--print-value-only"])).trimEnd()).toBe(
      `{"Op":0,"Addr":"127.0.0.1:7101","Metadata":{"grpc_anchor.connections":3}}`
    )
    const ranged = start([
      "register", "--etcd", host, "--service", "counted", "--address", "127.0.0.1:7102", "--connections", "2..8", "--metadata", '{"zone":"a"}'
    ])
    await ranged.waitForLine("the registered line", (l) => l.startsWith("registered "))
    expect((await etcd.ctlOk(["get", "counted/127.0.0.1:7102", "--print-value-only"])).trimEnd()).toBe(
      `{"Op":0,"Addr":"127.0.0.1:7102","Metadata":{"grpc_anchor.connections":"2..8","zone":"a"}}`
    )
    for (const process of [register, ranged]) {
      process.signal("SIGTERM")
      const done = await process.exited(10_000)
      expect(done.code).toBe(0)
      expect(done.stderr).toBe("")
    }
    expect((await etcd.ctlOk(["get", "--prefix", "counted/"])).trim()).toBe("")
  })

  it.each([
    ["a count of 0", ["--connections", "0"], /^grpc-anchor: --connections: the count is 0; expected a whole number 1\.\.256/],
    ["a reversed range", ["--connections", "8..2"], /^grpc-anchor: --connections: the count range starts above its end/],
    ["not a count", ["--connections", "many"], /^grpc-anchor: --connections: the count is not a number/],
    ["metadata that is not an object", ["--connections", "2", "--metadata", '"zone-a"'], /^grpc-anchor: --connections with --metadata: .*the metadata is a string, not a JSON object or null/]
  ])("%s: exit 2 with one line, nothing written", async (_name, flags, message) => {
    const host = etcd.endpoints[0]!
    const result = await run(["register", "--etcd", host, "--service", "refused", "--address", "127.0.0.1:7109", ...flags])
    expect(result.code).toBe(2)
    expect(result.stdout).toBe("")
    const lines = result.stderr.trimEnd().split("\n")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(message)
    expect(hasStackTrace(result.stderr)).toBe(false)
    expect((await etcd.ctlOk(["get", "--prefix", "refused/"])).trim()).toBe("")
  })
})
