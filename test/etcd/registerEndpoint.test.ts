/**
 * The Promise API over the Registrar, against a real etcd.
 */
import { describe, expect, it } from "vitest"
import { Etcd3 } from "etcd3"
import { registerEndpoint } from "../../src/main/promise/registerEndpoint.js"
import type * as Registrar from "../../src/adapters/etcd/Registrar.js"
import { eventually } from "../support/etcd.js"
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

  it("uses a client it is given and leaves it open", async () => {
    const client = new Etcd3({ hosts: [...server.endpoints] })
    try {
      const registration = await registerEndpoint({ etcd: client, service: "owned", address: "127.0.0.1:7001", ttl: 3 })
      expect(await value("owned/127.0.0.1:7001")).toBe('{"Op":0,"Addr":"127.0.0.1:7001","Metadata":null}')
      await registration.close()
      expect(await value("owned/127.0.0.1:7001")).toBe("")
      expect(await client.get("owned/127.0.0.1:7001").string()).toBeNull()
    } finally {
      client.close()
    }
  })

  it("rejects invalid options with a RegistrarError", async () => {
    await expect(
      registerEndpoint({ etcd: { hosts: server.endpoints }, service: "bad", address: "no-port" })
    ).rejects.toMatchObject({ _tag: "RegistrarError", reason: "InvalidAddress" })
  })
})
