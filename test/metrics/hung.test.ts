/**
 * The hung rule's metrics read by the OpenTelemetry SDK while a real
 * backend process hangs (SIGSTOP: its connections stay open, nothing is
 * answered) and resumes: its connections show as hung, the avoidances
 * counter goes up, and both READY connections stay READY (a hung backend is
 * not a down one: the alert on READY does not fire, this gauge does).
 */
import { afterAll, describe, expect, it } from "vitest"
import { startEchoServer } from "../../packages/cli/src/echo/echo.js"
import { startEchoProcess } from "../../packages/cli/src/echo/echoProcess.js"
import { register } from "../../src/main/index.js"
import { cleanupAfterEach, eventually } from "../support/grpc.js"
import { echoClient, steadyLoad, warmUp } from "../support/stress.js"
import { sdk, valueOf } from "./support.js"

register()
const defer = cleanupAfterEach()
const otel = sdk()
afterAll(() => otel.close())

describe("hung rule metrics (OpenTelemetry SDK, a real backend process stopped)", () => {
  it("show the stopped backend's connections as hung and count the avoidances; clear after SIGCONT", async () => {
    const a = await startEchoServer({ name: "a" })
    defer(() => a.close({ force: true }))
    const b = await startEchoProcess({ name: "b" })
    const resume = () => {
      try {
        process.kill(b.child.pid!, "SIGCONT")
      } catch {
        // already gone
      }
    }
    defer(() => b.kill())
    defer(resume)
    const target = `pass:///127.0.0.1:${a.port}#2,127.0.0.1:${b.port}#2`
    const client = echoClient(target, { "grpc.use_local_subchannel_pool": 1 })
    defer(() => client.close())
    expect(await warmUp(client, ["a", "b"])).toEqual(["a", "b"])
    const at = { "grpc_anchor.target": target, "grpc_anchor.address": `127.0.0.1:${b.port}` }
    let points = await otel.read()
    expect(valueOf(points, "grpc_anchor.connections.hung", at)).toBe(0)

    process.kill(b.child.pid!, "SIGSTOP")
    await steadyLoad(client, { workers: 8, durationMs: 3_000, deadlineMs: 300, origin: Date.now() })
    points = await otel.read()
    expect(valueOf(points, "grpc_anchor.connections.hung", at)).toBe(2)
    expect(valueOf(points, "grpc_anchor.hung.avoidances", { "grpc_anchor.target": target })).toBeGreaterThanOrEqual(2)
    expect(valueOf(points, "grpc_anchor.connections", { ...at, "grpc_anchor.state": "READY" })).toBe(2)

    resume()
    // Calls keep flowing (a hung connection is cleared by an answer); all finish before the client closes.
    const loads: Array<Promise<unknown>> = []
    await eventually("b no longer hung", async () => {
      loads.push(steadyLoad(client, { workers: 2, durationMs: 200, deadlineMs: 1_000, origin: Date.now() }))
      return valueOf(await otel.read(), "grpc_anchor.connections.hung", at) === 0
    }, { timeoutMs: 10_000 })
    await Promise.all(loads)
  })
})
