/**
 * Steady failure (issue 10, finding 3): with every backend down, an
 * `anchor_round_robin` channel stays TRANSIENT_FAILURE, reconnecting in the
 * background with grpc-js backoff, until a connection is READY, exactly like
 * grpc-js's own `round_robin` on the same ports in the same test. Calls
 * without `waitForReady` fail at once with UNAVAILABLE naming the target and
 * the last error (no CONNECTING window in which they would queue).
 */
import * as grpc from "@grpc/grpc-js"
import { describe, expect, it } from "@effect/vitest"
import { startEchoServer } from "../../packages/cli/src/echo/echo.js"
import { register } from "../../src/main/index.js"
import { cleanupAfterEach } from "../support/grpc.js"
import { attempt, closedPorts, echoClient, traceStates } from "../support/stress.js"

register()

const defer = cleanupAfterEach()

/** Short grpc-js backoff, so a few seconds hold several reconnect cycles per connection. */
const FAST_BACKOFF: grpc.ChannelOptions = {
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 400
}

/** How long the channels are watched while everything is down (several backoff cycles). */
const WATCH_MS = 2_500

/**
 * A call's deadline: long. Without waitForReady a call is queued only while
 * the channel is CONNECTING (or IDLE), which the state trace rules out; the
 * printed times show it too.
 */
const DEADLINE_MS = 8_000

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

describe("steady failure", () => {
  it("stays TRANSIENT_FAILURE while every backend is down, like round_robin, fails calls at once, and recovers when one starts", async () => {
    const [p1, p2] = (await closedPorts(2)) as [number, number]
    const target = `pass:///127.0.0.1:${p1}#2,127.0.0.1:${p2}#1`
    const anchor = echoClient(target, FAST_BACKOFF)
    defer(() => anchor.close())
    const roundRobin = echoClient(`ipv4:127.0.0.1:${p1},127.0.0.1:${p2}`, {
      ...FAST_BACKOFF,
      "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] })
    })
    defer(() => roundRobin.close())

    const anchorTrace = traceStates(anchor.getChannel(), 30_000)
    const rrTrace = traceStates(roundRobin.getChannel(), 30_000)
    defer(() => anchorTrace.stop())
    defer(() => rrTrace.stop())

    // Calls spread over the whole window: each must fail at once, whatever
    // the phase of the background reconnects.
    const origin = Date.now()
    const outcomes = []
    for (let i = 0; i < 10; i++) {
      outcomes.push(await attempt(anchor, { deadlineMs: DEADLINE_MS, origin }))
      await sleep(WATCH_MS / 10)
    }
    const rrOutcome = await attempt(roundRobin, { deadlineMs: DEADLINE_MS, origin })

    const anchorStates = anchorTrace.after("TRANSIENT_FAILURE")
    const rrStates = rrTrace.after("TRANSIENT_FAILURE")
    console.log(`steady failure, anchor_round_robin: ${anchorTrace.text()}`)
    console.log(`steady failure, round_robin:        ${rrTrace.text()}`)
    console.log(
      `steady failure: calls without waitForReady ended in ${outcomes.map((o) => o.tookMs).join(", ")} ms (round_robin: ${rrOutcome.tookMs} ms); ` +
        `message: ${outcomes[0]!.details}`
    )

    // The reference: grpc-js's round_robin reached TRANSIENT_FAILURE and stayed.
    expect(rrTrace.entries().map((entry) => entry.state)).toContain("TRANSIENT_FAILURE")
    expect(rrStates, rrTrace.text()).toEqual([])
    expect(rrOutcome.code).toBe(grpc.status.UNAVAILABLE)

    // The pool: the same, no CONNECTING window after the first failure.
    expect(anchorTrace.entries().map((entry) => entry.state)).toContain("TRANSIENT_FAILURE")
    expect(anchorStates, anchorTrace.text()).toEqual([])
    for (const outcome of outcomes) {
      expect(outcome.code, JSON.stringify(outcome)).toBe(grpc.status.UNAVAILABLE)
      // The message names the target (canonical form) and the last connection error.
      expect(outcome.details).toContain(`pass:///127.0.0.1:${p1}#2,127.0.0.1:${p2}`)
      expect(outcome.details).toMatch(/ECONNREFUSED/)
    }

    // A server comes up on the second port: the channel becomes READY
    // (after at most one backoff) and calls succeed; the same for round_robin.
    const server = await startEchoServer({ name: "b", port: p2 })
    defer(() => server.close({ force: true }))
    const served = await attempt(anchor, { deadlineMs: 10_000, waitForReady: true })
    expect(served.answeredBy, JSON.stringify(served)).toBe("b")
    const rrServed = await attempt(roundRobin, { deadlineMs: 10_000, waitForReady: true })
    expect(rrServed.answeredBy, JSON.stringify(rrServed)).toBe("b")
    expect(anchorTrace.after("TRANSIENT_FAILURE")).toEqual(["READY"])
    expect(anchor.getChannel().getConnectivityState(false)).toBe(grpc.connectivityState.READY)
    // Calls without waitForReady are served too, by the one live backend.
    for (let i = 0; i < 6; i++) {
      const outcome = await attempt(anchor, { deadlineMs: 5_000 })
      expect(outcome.answeredBy, JSON.stringify(outcome)).toBe("b")
    }
  })

  it("goes back to TRANSIENT_FAILURE, without flapping, when its only backend dies", async () => {
    const [port] = (await closedPorts(1)) as [number]
    const server = await startEchoServer({ name: "a", port })
    let closed = false
    defer(() => (closed ? undefined : server.close({ force: true })))
    const target = `pass:///127.0.0.1:${port}#3`
    const client = echoClient(target, FAST_BACKOFF)
    defer(() => client.close())
    const served = await attempt(client, { deadlineMs: 10_000, waitForReady: true })
    expect(served.answeredBy).toBe("a")

    const trace = traceStates(client.getChannel(), 30_000)
    defer(() => trace.stop())
    await server.close({ force: true })
    closed = true
    // Bounded wait for the failure to be seen, then a watch over several backoff cycles.
    for (let i = 0; i < 100 && !trace.entries().some((entry) => entry.state === "TRANSIENT_FAILURE"); i++) await sleep(50)
    await sleep(WATCH_MS)
    const outcome = await attempt(client, { deadlineMs: DEADLINE_MS })
    console.log(`one backend killed, anchor_round_robin: ${trace.text()}; then a call: ${outcome.tookMs} ms, ${outcome.details}`)

    expect(trace.entries().map((entry) => entry.state)).toContain("TRANSIENT_FAILURE")
    expect(trace.after("TRANSIENT_FAILURE"), trace.text()).toEqual([])
    expect(outcome.code).toBe(grpc.status.UNAVAILABLE)
    expect(outcome.details).toContain(`pass:///127.0.0.1:${port}#3`)
  })
})
