/**
 * The echo server as a child process (what the demo, the tests and the
 * benchmarks kill and restart): ready and stats over fork's IPC channel,
 * real calls, why it failed quoted from its stderr, and the child ending
 * when the parent goes away.
 */
import * as grpc from "@grpc/grpc-js"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { call, EchoClient, type Echo } from "../src/echo/echo.js"
import { EchoProcessError, startEchoProcess, type EchoProcess } from "../src/echo/echoProcess.js"

const started: Array<EchoProcess> = []
const clients: Array<grpc.Client> = []
afterEach(async () => {
  for (const client of clients.splice(0)) client.close()
  await Promise.all(started.splice(0).map((p) => p.kill()))
})

const start = async (options: Parameters<typeof startEchoProcess>[0]) => {
  const p = await startEchoProcess({ timeoutMs: 45_000, ...options })
  started.push(p)
  return p
}

const exited = (p: EchoProcess) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (p.child.exitCode !== null || p.child.signalCode !== null) return resolve({ code: p.child.exitCode, signal: p.child.signalCode })
    p.child.once("exit", (code, signal) => resolve({ code, signal }))
  })

describe("echo process", () => {
  it("serves calls, reports its connections and calls over IPC, and a second one on its port fails with the child's reason", async () => {
    const p = await start({ name: "e1" })
    expect(p.port).toBeGreaterThan(0)
    const client = new EchoClient(`127.0.0.1:${p.port}`, grpc.credentials.createInsecure()) as unknown as Echo
    clients.push(client)
    expect(await call(client)).toBe("e1")
    expect(await call(client)).toBe("e1")
    const stats = await p.stats()
    expect(stats.calls).toBe(2)
    expect(stats.connections.filter((c) => c.open)).toHaveLength(1)

    const taken = await startEchoProcess({ name: "e2", port: p.port, timeoutMs: 45_000 }).then(
      () => undefined,
      (error: unknown) => error
    )
    expect(taken).toBeInstanceOf(EchoProcessError)
    expect((taken as EchoProcessError).server).toBe("e2")
    expect((taken as EchoProcessError).detail).toMatch(/EADDRINUSE|address already in use|No address added/i)

    await p.stop()
    expect((await exited(p)).code).toBe(0)
  }, 120_000)

  it("rejects bad arguments with the reason, and ends when the parent closes the IPC channel", async () => {
    const bad = await startEchoProcess({ name: "e3", maxStreams: 0, timeoutMs: 45_000 }).then(
      () => undefined,
      (error: unknown) => error
    )
    expect(bad).toBeInstanceOf(EchoProcessError)
    expect((bad as EchoProcessError).message).toMatch(/^echo e3: echo server arguments: .*max-streams/)

    const p = await start({ name: "e4" })
    p.child.disconnect()
    expect(await exited(p)).toEqual({ code: 0, signal: null })
  }, 120_000)
})
