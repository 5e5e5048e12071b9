/**
 * The `least_request` pick mode against real servers: with one backend 10x
 * slower than the other two it gets fewer calls than its round-robin share
 * (round robin gives it exactly its share, on the same servers); with equal
 * backends the shares follow the `#N` counts.
 */
import * as grpc from "@grpc/grpc-js"
import { describe, expect, it } from "@effect/vitest"
import { EchoService } from "../../packages/cli/src/echo/echo.js"
import { register } from "../../src/main/index.js"
import { callMany, cleanupAfterEach, makeClient, ready, tally } from "../support/grpc.js"

register()

const defer = cleanupAfterEach()

/** A real echo server on loopback that answers every call after `delayMs`, whatever the request asks. */
const startServer = async (name: string, delayMs: number): Promise<string> => {
  const server = new grpc.Server()
  const timers = new Set<NodeJS.Timeout>()
  server.addService(EchoService, {
    echo: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const timer = setTimeout(() => {
        timers.delete(timer)
        callback(null, Buffer.from(name))
      }, delayMs)
      timers.add(timer)
    }
  })
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port)))
  )
  defer(() => {
    for (const timer of timers) clearTimeout(timer)
    server.forceShutdown()
  })
  return `127.0.0.1:${port}`
}

const shares = async (target: string, calls: number, concurrency: number, options: Record<string, number> = {}) => {
  const client = makeClient(target, { "grpc.use_local_subchannel_pool": 1, ...options })
  defer(() => client.close())
  await ready(client)
  return tally(await callMany(client, calls, concurrency, { deadlineMs: 60_000 }))
}

describe("least_request", () => {
  it("sends a 10x slower backend fewer calls than its round-robin share", async () => {
    const [fast1, fast2, slow] = await Promise.all([startServer("fast1", 3), startServer("fast2", 3), startServer("slow", 30)])
    const list = `${fast1},${fast2},${slow}`
    const calls = 1_500
    // The hung rule off for the exact round-robin share: on a loaded machine a 30 ms call can wait
    // past its 1 s floor while the others answer, and the rule then rightly skips the slow backend.
    const roundRobin = await shares(`pass:///${list}`, calls, 30, { "grpc_anchor.hung_after_ms": 0 })
    const leastRequest = await shares(`pass:///${list}?pick=least_request`, calls, 30)
    // Round robin over 3 equal connections: exactly a third each.
    expect(roundRobin["slow"]).toBe(calls / 3)
    expect(leastRequest["slow"] ?? 0).toBeLessThan(calls / 3)
    expect((leastRequest["fast1"] ?? 0) + (leastRequest["fast2"] ?? 0)).toBeGreaterThan((2 * calls) / 3)
  }, 60_000)

  it("gives equal backends shares that follow the counts", async () => {
    const [a, b] = await Promise.all([startServer("a", 2), startServer("b", 2)])
    const calls = 2_000
    const counts = await shares(`pass:///${a}#3,${b}#1?pick=least_request`, calls, 8)
    // 3 of 4 equal connections: 1,500 expected. 5 standard deviations of independent uniform draws
    // is ±97; the rest of the ±160 allows for a loaded machine's uneven service times.
    expect(Math.abs((counts["a"] ?? 0) - 1_500)).toBeLessThan(160)
  }, 60_000)
})
