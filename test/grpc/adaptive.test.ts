/**
 * Adaptive connection counts (`#MIN..MAX`, gRFC A105-like) against a real
 * grpc-js server that allows 4 streams per connection: 200 calls in flight
 * grow the pool past one connection (never past MAX), a client doing one
 * call at a time keeps one connection, and the extra connections close
 * after a quiet period. The server's ConnectionObserver is the judge.
 */
import { describe, expect, it } from "@effect/vitest"
import { call, startEchoServer } from "../../packages/cli/src/echo/echo.js"
import { MAX_STREAMS_PER_CONNECTION_OPTION, SHRINK_IDLE_MS_OPTION } from "../../src/adapters/grpc/AnchorRoundRobin.js"
import { STATS_KEY } from "../../src/adapters/grpc/internal/keys.js"
import { makeSink } from "../../src/adapters/grpc/internal/stats.js"
import { register } from "../../src/main/index.js"
import { callMany, cleanupAfterEach, eventually, makeClient, ready } from "../support/grpc.js"

register()

const defer = cleanupAfterEach()

/** A server allowing 4 streams per connection, and a `#1..8` client told that limit. */
const setup = async (options: Record<string, number> = {}) => {
  const server = await startEchoServer({ name: "limited", maxConcurrentStreams: 4 })
  defer(() => server.close({ force: true }))
  const target = `pass:///127.0.0.1:${server.port}#1..8`
  const sink = makeSink(target)
  const client = makeClient(target, { [MAX_STREAMS_PER_CONNECTION_OPTION]: 4, [STATS_KEY]: sink, ...options })
  defer(() => client.close())
  await ready(client)
  return { server, client, slots: () => sink.read().connections.length }
}

describe("adaptive connection counts", () => {
  it("grows past one connection, and never past the maximum, under 200 calls in flight", async () => {
    const { server, client, slots } = await setup()
    expect(server.observer.connections()).toHaveLength(1)
    // 1,000 calls of 20 ms, 200 at a time: one connection carries 4 of them at once.
    const answers = await callMany(client, 1_000, 200, { delayMs: 20, deadlineMs: 60_000 })
    expect(answers.every((a) => a === "limited")).toBe(true)
    const opened = server.observer.connections({ includeClosed: true }).length
    expect(opened).toBeGreaterThan(1)
    expect(opened).toBeLessThanOrEqual(8)
    expect(slots()).toBeGreaterThan(1)
    expect(slots()).toBeLessThanOrEqual(8)
  }, 60_000)

  it("keeps one connection for a client doing one call at a time", async () => {
    const { server, client, slots } = await setup()
    await callMany(client, 300, 1, { delayMs: 1 })
    expect(server.observer.connections({ includeClosed: true })).toHaveLength(1)
    expect(slots()).toBe(1)
  }, 60_000)

  it("closes the extra connections after a quiet period", async () => {
    const { server, client, slots } = await setup({ [SHRINK_IDLE_MS_OPTION]: 200 })
    await callMany(client, 600, 200, { delayMs: 20, deadlineMs: 60_000 })
    expect(slots()).toBeGreaterThan(1)
    // One connection closes per quiet period of 200 ms (at most 7): the pool is back to 1.
    await eventually("the pool back at one connection", () => slots() === 1, { timeoutMs: 10_000 })
    // grpc-js closes a released connection when its subchannel pool sweeps (every 10 s).
    await eventually("the server down to one connection", () => server.observer.connections().length === 1, { timeoutMs: 25_000, intervalMs: 100 })
    expect(await call(client)).toBe("limited")
  }, 60_000)
})
