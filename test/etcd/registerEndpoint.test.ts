/**
 * The Promise API over the Registrar, against a real etcd.
 */
import { describe, expect, it } from "vitest"
import { registerEndpoint } from "../../src/main/promise/registerEndpoint.js"
import type * as Registrar from "../../src/adapters/etcd/Registrar.js"
import { connectedPorts, eventually } from "../support/etcd.js"
import { etcdForFile } from "../support/etcdForFile.js"

const server = etcdForFile({ checkHandles: true })

const value = async (key: string) => (await server.ctlOk(["get", key, "--print-value-only"])).replace(/\n$/, "")

describe("registerEndpoint (real etcd)", () => {
  it("registers with connection options, reports status, and close() removes the record at once", async () => {
    const registration = await registerEndpoint({
      etcd: { hosts: server.endpoints },
      service: "promise",
      address: "127.0.0.1:7000",
      metadata: { version: "1.2.3" }
    })
    try {
      expect(registration.key).toBe("promise/127.0.0.1:7000")
      expect(await value("promise/127.0.0.1:7000")).toBe('{"Op":0,"Addr":"127.0.0.1:7000","Metadata":{"version":"1.2.3"}}')
      expect(registration.status()._tag).toBe("Registered")
      const seen: Array<Registrar.Status["_tag"]> = []
      const stop = registration.onStatus((s) => seen.push(s._tag))
      const leaseId = (registration.status() as { leaseId: string }).leaseId
      await server.ctlOk(["lease", "revoke", leaseId])
      await eventually(
        "a new lease",
        () => {
          const status = registration.status()
          return status._tag === "Registered" && status.leaseId !== leaseId
        },
        { timeoutMs: 15_000, intervalMs: 50 }
      )
      expect(seen).toContain("Reconnecting")
      stop()
    } finally {
      await registration.close()
    }
    expect(await value("promise/127.0.0.1:7000")).toBe("")
    expect(registration.status()._tag).toBe("Closed")
    await registration.close() // twice is fine
  })

  it("builds its own client from options (hosts as a list, a ttl) and closes it with close()", async () => {
    // No client can be passed in any more: registerEndpoint owns the one it builds.
    const port = server.member.spec.clientPort
    const toEtcd = () => connectedPorts().filter((p) => p === port).length
    const before = toEtcd()
    const registration = await registerEndpoint({ etcd: { hosts: [...server.endpoints] }, service: "owned", address: "127.0.0.1:7001", ttl: 3 })
    try {
      expect(await value("owned/127.0.0.1:7001")).toBe('{"Op":0,"Addr":"127.0.0.1:7001","Metadata":null}')
      const leaseId = (registration.status() as { leaseId: string }).leaseId
      const ttl = await server.ctlOk(["lease", "timetolive", leaseId])
      expect(ttl).toMatch(/granted with TTL\(3s\)/)
      expect(toEtcd()).toBeGreaterThan(before)
    } finally {
      await registration.close()
    }
    expect(await value("owned/127.0.0.1:7001")).toBe("")
    await eventually("its connections to etcd closed", () => toEtcd() === before, { timeoutMs: 5_000, intervalMs: 50 })
  })

  it("rejects invalid options with a RegistrarError", async () => {
    await expect(
      registerEndpoint({ etcd: { hosts: server.endpoints }, service: "bad", address: "no-port" })
    ).rejects.toMatchObject({ _tag: "RegistrarError", reason: "InvalidAddress" })
  })

  it("takes the one etcd options shape (plain password, durations as text or ms) and logs to stderr only, never stdout", async () => {
    const stdout: Array<string> = []
    const stderr: Array<string> = []
    const saved = { log: console.log, info: console.info, debug: console.debug, warn: console.warn, error: console.error, write: process.stdout.write }
    console.log = console.info = console.debug = (...args: Array<unknown>) => void stdout.push(args.map(String).join(" "))
    console.warn = console.error = (...args: Array<unknown>) => void stderr.push(args.map(String).join(" "))
    process.stdout.write = ((chunk: unknown) => {
      stdout.push(String(chunk))
      return true
    }) as typeof process.stdout.write
    try {
      const registration = await registerEndpoint({
        etcd: { hosts: server.endpoints.join(","), callTimeout: 3_000, dialTimeout: "3 seconds" },
        service: "stderr",
        address: "127.0.0.1:7002",
        ttl: 5,
        revokeTimeout: "1 second",
        logLevel: "Debug"
      })
      try {
        const leaseId = (registration.status() as { leaseId: string }).leaseId
        await server.ctlOk(["lease", "revoke", leaseId])
        await eventually(
          "a new lease",
          () => {
            const status = registration.status()
            return status._tag === "Registered" && status.leaseId !== leaseId
          },
          { timeoutMs: 15_000, intervalMs: 50 }
        )
      } finally {
        await registration.close()
      }
    } finally {
      Object.assign(console, { log: saved.log, info: saved.info, debug: saved.debug, warn: saved.warn, error: saved.error })
      process.stdout.write = saved.write
    }
    expect(stdout).toEqual([])
    expect(stderr.some((line) => line.includes("registration of 127.0.0.1:7002 interrupted"))).toBe(true)
  })
})
