/**
 * Load and churn on real servers: 10,000 calls in flight across a #8 pool,
 * and a backend process killed and restarted 50 times under steady traffic.
 */
import * as grpc from "@grpc/grpc-js"
import { describe, expect, it } from "@effect/vitest"
import { call, startEchoServer } from "../../packages/cli/src/echo/echo.js"
import { startEchoProcess, type EchoProcess } from "../../packages/cli/src/echo/echoProcess.js"
import { register } from "../../src/main/index.js"
import { STATS_KEY } from "../../src/adapters/grpc/internal/keys.js"
import { makeSink } from "../../src/adapters/grpc/internal/stats.js"
import { cleanupAfterEach, eventually, makeClient } from "../support/grpc.js"

register()

const defer = cleanupAfterEach()

describe("load", () => {
  it("completes 10,000 calls in flight across a #8 pool without error, 1,250 per connection", async () => {
    const server = await startEchoServer({ name: "big" })
    defer(() => server.close({ force: true }))
    const target = `pass:///127.0.0.1:${server.port}#8`
    const sink = makeSink(target)
    const client = makeClient(target, { [STATS_KEY]: sink })
    defer(() => client.close())
    await eventually("8 READY connections", () => {
      client.getChannel().getConnectivityState(true)
      const c = sink.read().connections
      return c.length === 8 && c.every((x) => x.state === "READY")
    })
    // Each call waits 200 ms on the server, so all 10,000 are in flight together.
    const results = await Promise.allSettled(Array.from({ length: 10_000 }, () => call(client, { delayMs: 200, deadlineMs: 60_000 })))
    const failed = results.filter((r) => r.status === "rejected")
    expect(failed.length).toBe(0)
    expect(server.observer.connections().map((c) => c.calls)).toEqual(Array(8).fill(1_250))
  }, 90_000)

  it("fails no call started while a backend was ready, through 50 kills and restarts of the other", async () => {
    const stable = await startEchoProcess({ name: "stable" })
    defer(() => stable.kill())
    let flapping: EchoProcess = await startEchoProcess({ name: "flapping" })
    defer(() => flapping.kill())
    const port = flapping.port
    // Calls cut off on the killed backend before any reply are retried by
    // grpc-js's retry policy (the user's service config keeps the pool).
    const client = makeClient(`pass:///127.0.0.1:${stable.port}#2,127.0.0.1:${port}#2`, {
      "grpc.initial_reconnect_backoff_ms": 50,
      "grpc.max_reconnect_backoff_ms": 200,
      "grpc.service_config": JSON.stringify({
        methodConfig: [{
          name: [{ service: "grpc_anchor.demo.Echo" }],
          retryPolicy: { maxAttempts: 5, initialBackoff: "0.01s", maxBackoff: "0.1s", backoffMultiplier: 2, retryableStatusCodes: ["UNAVAILABLE"] }
        }]
      })
    })
    defer(() => client.close())
    const calls: Array<{ readonly startedAt: number; readonly endedAt: number; readonly server?: string; readonly error?: string }> = []
    let running = true
    const traffic = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (running) {
          const startedAt = performance.now()
          await call(client, { delayMs: 2, deadlineMs: 10_000 }).then(
            (server) => calls.push({ startedAt, endedAt: performance.now(), server }),
            (error: grpc.ServiceError) => calls.push({ startedAt, endedAt: performance.now(), error: `${grpc.status[error.code]}: ${error.details}` })
          )
        }
      })
    )
    defer(async () => {
      running = false
      await traffic
    })
    const kills: Array<{ readonly from: number; readonly to: number }> = []
    for (let round = 0; round < 50; round++) {
      const before = calls.length
      await eventually(`round ${round}: flapping serving`, () => calls.slice(before).some((c) => c.server === "flapping"), {
        timeoutMs: 15_000,
        intervalMs: 10
      })
      const from = performance.now()
      await flapping.kill()
      kills.push({ from, to: performance.now() })
      flapping = await startEchoProcess({ name: "flapping", port })
    }
    running = false
    await traffic
    const failures = calls.filter((c) => c.error !== undefined)
    // A call can only fail if it was on the wire to the backend while it died
    // and had already received part of its reply (grpc-js cannot retry it then).
    const inFlightAtAKill = (c: (typeof calls)[number]) => kills.some((k) => c.startedAt <= k.to && c.endedAt >= k.from)
    expect(failures.filter((c) => !inFlightAtAKill(c))).toEqual([])
    expect(failures.every((c) => c.error!.startsWith("UNAVAILABLE"))).toBe(true)
    expect(calls.filter((c) => c.server === "flapping").length).toBeGreaterThanOrEqual(50)
    expect(calls.filter((c) => c.server === "stable").length).toBeGreaterThan(0)
  }, 180_000)
})
