/**
 * `--metrics PORT` from the build: the Prometheus text scraped over HTTP on
 * 127.0.0.1 while the command runs, as Prometheus (or a person with curl)
 * would: the demo's pool losing and regaining its third server's READY
 * connection, `watch`'s etcd service, `register` serving, a taken port.
 */
import * as net from "node:net"
import { afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import { freePort } from "../../../test/support/etcd.js"
import { etcdForFile } from "../../../test/support/etcdForFile.js"
import { sample } from "../../../test/metrics/support.js"
import { eventually } from "../../../test/support/eventually.js"
import { killAll, requireBuild, run, start } from "./run.js"

beforeAll(requireBuild)
const etcd = etcdForFile()
afterEach(killAll)

const scrape = async (port: number): Promise<string | undefined> => {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2_000) })
    return response.ok ? await response.text() : undefined
  } catch {
    return undefined
  }
}

/** Every address of the scrape with its wanted and READY counts. */
const pool = (text: string): Map<string, { wanted: number; ready: number }> => {
  const out = new Map<string, { wanted: number; ready: number }>()
  for (const m of text.matchAll(/^grpc_anchor_connections_wanted\{[^}]*grpc_anchor_address="([^"]+)"[^}]*\} (\S+)$/gm)) {
    const ready = sample(text, "grpc_anchor_connections", { grpc_anchor_address: m[1]!, grpc_anchor_state: "READY" }) ?? Number.NaN
    out.set(m[1]!, { wanted: Number(m[2]), ready })
  }
  return out
}

describe("--metrics PORT", () => {
  it("demo: the scrape shows #3/#2/#1 served, the killed server's READY at 0, then back", async () => {
    const port = await freePort()
    const demo = start(["demo", "--json", "--duration", "4", "--metrics", String(port)])
    const seen = { served: false, down: false, back: false }
    const started = Date.now()
    let exited = false
    void demo.exited(60_000).then(() => (exited = true), () => (exited = true))
    while (!exited && Date.now() - started < 60_000) {
      const text = await scrape(port)
      if (text !== undefined) {
        const addresses = pool(text)
        const third = [...addresses.values()].find((a) => a.wanted === 1)
        const wanted = [...addresses.values()].map((a) => a.wanted).sort()
        if (wanted.join() === "1,2,3" && [...addresses.values()].every((a) => a.ready === a.wanted)) {
          if (!seen.served) seen.served = true
          else if (seen.down) seen.back = true
        }
        if (seen.served && third !== undefined && third.ready === 0) seen.down = true
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const done = await demo.exited(5_000)
    expect(done.code, done.stderr).toBe(0)
    expect(seen).toEqual({ served: true, down: true, back: true })
    // The server is closed with the command.
    expect(await scrape(port)).toBeUndefined()
  })

  it("watch: the service's endpoints and the time since etcd answered; register: its lease's re-grants and keep-alive", async () => {
    const host = etcd.endpoints[0]!
    await etcd.ctlOk(["put", "m-svc/127.0.0.1:7101", '{"Op":0,"Addr":"127.0.0.1:7101","Metadata":null}'])
    const watchPort = await freePort()
    const watch = start(["watch", "--json", `etcd://${host}/m-svc`, "--metrics", String(watchPort)])
    await watch.waitForLine("the first snapshot", (l) => l.includes('"snapshot"'))
    const text = (await scrape(watchPort)) ?? ""
    expect(sample(text, "grpc_anchor_etcd_endpoints", { grpc_anchor_service: "m-svc" })).toBe(1)
    expect(sample(text, "grpc_anchor_etcd_contact_age", { grpc_anchor_service: "m-svc" })).toBeLessThan(2)
    expect(sample(text, "grpc_anchor_etcd_watch_restarts_total", { grpc_anchor_service: "m-svc", grpc_anchor_reason: "compacted" })).toBe(0)

    const registerPort = await freePort()
    const register = start(["register", "--etcd", host, "--service", "m-svc", "--address", "127.0.0.1:7102", "--metrics", String(registerPort)])
    await register.waitForLine("registered", (l) => l.startsWith("registered "))
    const registered = { grpc_anchor_service: "m-svc", grpc_anchor_address: "127.0.0.1:7102" }
    let registerText = ""
    await eventually("the first keep-alive", async () => {
      registerText = (await scrape(registerPort)) ?? ""
      return sample(registerText, "grpc_anchor_registration_keepalive_age", registered) !== undefined
    })
    expect(sample(registerText, "grpc_anchor_registration_lease_regrants_total", registered)).toBe(0)
    await watch.waitForLine("the added event", (l) => l.includes('"added"'))
    expect(sample((await scrape(watchPort)) ?? "", "grpc_anchor_etcd_endpoints", { grpc_anchor_service: "m-svc" })).toBe(2)
    register.signal("SIGTERM")
    watch.signal("SIGINT")
    expect((await register.exited(10_000)).code).toBe(0)
    expect((await watch.exited(10_000)).code).toBe(0)
    expect(await scrape(watchPort)).toBeUndefined()
  })

  it("a port already taken: exit 1 naming it; a bad port: usage error", async () => {
    const taken = net.createServer()
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve))
    const port = (taken.address() as net.AddressInfo).port
    try {
      const result = await run(["watch", `etcd://${etcd.endpoints[0]}/m-svc`, "--metrics", String(port)], { timeoutMs: 30_000 })
      expect(result.code).toBe(1)
      expect(result.stderr).toContain(`--metrics: cannot serve on 127.0.0.1:${port}`)
    } finally {
      taken.close()
    }
    const bad = await run(["watch", `etcd://${etcd.endpoints[0]}/m-svc`, "--metrics", "70000"], { timeoutMs: 30_000 })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain("--metrics must be a TCP port 1..65535, got 70000")
  })
})
