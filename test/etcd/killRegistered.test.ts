/**
 * A registered backend process killed with SIGKILL: nobody revokes its
 * lease, so its record must expire within the TTL (+1 s), and the channel
 * must move its traffic to the others without failing calls that started
 * after the kill.
 */
import * as grpc from "@grpc/grpc-js"
import { expect, it } from "vitest"
import { call } from "../../packages/cli/src/echo/echo.js"
import { startEchoProcess, type EchoProcess } from "../../packages/cli/src/echo/echoProcess.js"
import { register } from "../../src/main/index.js"
import { etcdForFile } from "../support/etcdForFile.js"
import { cleanupAfterEach, eventually } from "../support/grpc.js"
import { pooled } from "../support/pooled.js"

register()

const etcd = etcdForFile()
const defer = cleanupAfterEach()

it("drops a SIGKILLed backend's record within TTL + 1 s and keeps every call started after the kill succeeding", async () => {
  const service = "killed/echo"
  const ttl = 2
  const start = async (name: string): Promise<EchoProcess> => {
    const p = await startEchoProcess({ name, etcd: { hosts: etcd.endpoints.join(","), service, ttl } })
    defer(() => p.kill())
    return p
  }
  const [a, b] = [await start("a"), await start("b")]
  const keyOf = (p: EchoProcess) => `${service}/127.0.0.1:${p.port}`
  expect((await etcd.ctlOk(["get", "--prefix", `${service}/`, "--keys-only"])).split("\n").filter(Boolean).sort()).toEqual(
    [keyOf(a), keyOf(b)].sort()
  )

  const { client, slots } = pooled(`etcd://${etcd.endpoints[0]}/${service}#2`)
  defer(() => client.close())
  const calls: Array<{ readonly startedAt: number; readonly server?: string; readonly error?: string }> = []
  let running = true
  const traffic = Promise.all(
    Array.from({ length: 8 }, async () => {
      while (running) {
        const startedAt = performance.now()
        await call(client, { deadlineMs: 5_000, waitForReady: true }).then(
          (server) => calls.push({ startedAt, server }),
          (error: grpc.ServiceError) => calls.push({ startedAt, error: error.details })
        )
      }
    })
  )
  defer(async () => {
    running = false
    await traffic
  })
  await eventually("both serving", () => calls.some((c) => c.server === "a") && calls.some((c) => c.server === "b"))

  await b.kill()
  // After the kill: the process is gone and the client has read the close of its connections.
  await eventually(
    "the client to see b's connections drop",
    () => slots().every((s) => s.address !== `127.0.0.1:${b.port}` || s.state !== "READY"),
    { timeoutMs: 5_000, intervalMs: 1 }
  )
  const killedAt = performance.now()
  // The bound of this wait is the test's "within TTL + 1 s".
  await eventually(
    "b's record to expire",
    async () => (await etcd.ctlOk(["get", keyOf(b), "--keys-only"])).trim() === "",
    { timeoutMs: (ttl + 1) * 1_000, intervalMs: 100 }
  )
  const expiredAfter = performance.now() - killedAt
  await eventually("200 calls after the expiry", () => calls.filter((c) => c.startedAt > killedAt + expiredAfter).length >= 200)
  running = false
  await traffic

  const afterKill = calls.filter((c) => c.startedAt > killedAt)
  expect(afterKill.filter((c) => c.error !== undefined)).toEqual([])
  expect(afterKill.every((c) => c.server === "a")).toBe(true)
  expect(afterKill.length).toBeGreaterThan(200)
}, 60_000)
