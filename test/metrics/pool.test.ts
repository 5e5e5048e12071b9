/**
 * Pool metrics read by the OpenTelemetry SDK (in-memory exporter) and
 * scraped from the Prometheus exporter over HTTP, while real grpc-js
 * servers on loopback fail and return: connections by state, wanted and
 * open, picks, calls in flight, adaptive grow and shrink.
 */
import { afterAll, describe, expect, it } from "vitest"
import { startEchoServer } from "../../packages/cli/src/echo/echo.js"
import { AnchorRoundRobin, Metrics } from "../../src/main/index.js"
import { call } from "../../packages/cli/src/echo/echo.js"
import { callMany, cleanupAfterEach, echoServers, eventually } from "../support/grpc.js"
import { pooled } from "../support/pooled.js"
import { has, prometheus, sample, sdk, valueOf } from "./support.js"

const defer = cleanupAfterEach()
const servers = echoServers(defer)
const otel = sdk()
afterAll(() => otel.close())

const TARGET = "grpc_anchor.target"
const ADDRESS = "grpc_anchor.address"
const STATE = "grpc_anchor.state"

describe("pool metrics (OpenTelemetry SDK, real servers)", () => {
  it("report every backend's #N, picks and the READY connections a killed server loses and gets back", async () => {
    const [a, b] = await servers("a", "b")
    const target = `pass:///${a!.address}#2,${b!.address}` // canonical: as the pool reports it
    const channel = pooled(target)
    defer(channel.close)
    await channel.waitSlots(3)
    await callMany(channel.client, 30)
    const at = (server: { address: string }) => ({ [TARGET]: target, [ADDRESS]: server.address })

    let points = await otel.read()
    expect(valueOf(points, "grpc_anchor.connections", { ...at(a!), [STATE]: "READY" })).toBe(2)
    expect(valueOf(points, "grpc_anchor.connections", { ...at(b!), [STATE]: "READY" })).toBe(1)
    expect(valueOf(points, "grpc_anchor.connections.wanted", at(a!))).toBe(2)
    expect(valueOf(points, "grpc_anchor.connections.wanted", at(b!))).toBe(1)
    expect(valueOf(points, "grpc_anchor.connections.open", at(a!))).toBe(2)
    // Round robin over 3 connections: 20 and 10 of 30 calls.
    expect(valueOf(points, "grpc_anchor.picks", at(a!))).toBe(20)
    expect(valueOf(points, "grpc_anchor.picks", at(b!))).toBe(10)
    expect(valueOf(points, "grpc_anchor.calls.in_flight", at(a!))).toBe(0)
    expect(valueOf(points, "grpc_anchor.grace.addresses", { [TARGET]: target })).toBe(0)

    // b dies: its READY count goes to 0 while it still wants 1 (the "no READY connection" alert).
    const port = b!.port
    await b!.close({ force: true })
    await eventually("b has no READY connection", async () => {
      points = await otel.read()
      return valueOf(points, "grpc_anchor.connections", { ...at(b!), [STATE]: "READY" }) === 0
    })
    expect(valueOf(points, "grpc_anchor.connections.wanted", at(b!))).toBe(1)
    expect(valueOf(points, "grpc_anchor.connections", { ...at(a!), [STATE]: "READY" })).toBe(2)
    await callMany(channel.client, 10)
    points = await otel.read()
    expect(valueOf(points, "grpc_anchor.picks", at(a!))).toBe(30)
    expect(valueOf(points, "grpc_anchor.picks", at(b!))).toBe(10)

    // b returns on its port: READY again.
    const back = await startEchoServer({ name: "b", port })
    defer(() => back.close({ force: true }))
    await eventually("b READY again", async () => valueOf(await otel.read(), "grpc_anchor.connections", { ...at(b!), [STATE]: "READY" }) === 1, {
      timeoutMs: 20_000
    })

    // Closed: the pool is no longer collected (the SDK keeps the last cumulative values it read).
    channel.close()
    await eventually("the closed pool is gone", () => !Metrics.collect().some((p) => p.attributes[TARGET] === target))
  })

  it("report calls in flight, and an adaptive address growing under load and shrinking after it", async () => {
    const [c] = await servers("c")
    const target = `pass:///${c!.address}#1..3`
    const channel = pooled(target, {
      [AnchorRoundRobin.MAX_STREAMS_PER_CONNECTION_OPTION]: 1,
      [AnchorRoundRobin.SHRINK_IDLE_MS_OPTION]: 300
    })
    defer(channel.close)
    await channel.waitSlots(1)
    const at = { [TARGET]: target, [ADDRESS]: c!.address }
    const calls = Array.from({ length: 4 }, () => call(channel.client, { delayMs: 1_500 }))
    await eventually("calls in flight and growth", async () => {
      const points = await otel.read()
      return valueOf(points, "grpc_anchor.calls.in_flight", at) === 4 && valueOf(points, "grpc_anchor.adaptive.grows", at) >= 1
    })
    await Promise.all(calls)
    await eventually("shrunk back to 1", async () => {
      const points = await otel.read()
      return valueOf(points, "grpc_anchor.connections.wanted", at) === 1 && valueOf(points, "grpc_anchor.calls.in_flight", at) === 0
    }, { timeoutMs: 10_000 })
    const points = await otel.read()
    expect(valueOf(points, "grpc_anchor.adaptive.shrinks", at)).toBe(valueOf(points, "grpc_anchor.adaptive.grows", at))
  })
})

describe("pool metrics (Prometheus exporter, scraped over HTTP)", () => {
  it("serves grpc_anchor_connections by state, picks and wanted counts as Prometheus reads them", async () => {
    const scraper = await prometheus()
    defer(scraper.close)
    const [a, b] = await servers("a", "b")
    const target = `pass:///${a!.address}#2,${b!.address}` // canonical: as the pool reports it
    const channel = pooled(target)
    defer(channel.close)
    await channel.waitSlots(3)
    await callMany(channel.client, 9)
    const labels = (server: { address: string }, extra: Record<string, string> = {}) => ({
      grpc_anchor_target: target,
      grpc_anchor_address: server.address,
      ...extra
    })
    let text = await scraper.scrape()
    expect(sample(text, "grpc_anchor_connections", labels(a!, { grpc_anchor_state: "READY" }))).toBe(2)
    expect(sample(text, "grpc_anchor_connections_wanted", labels(b!))).toBe(1)
    expect(sample(text, "grpc_anchor_picks_total", labels(a!))).toBe(6)
    expect(text).toContain("# HELP grpc_anchor_connections ")
    await b!.close({ force: true })
    await eventually("b: 0 READY in the scrape", async () => {
      text = await scraper.scrape()
      return sample(text, "grpc_anchor_connections", labels(b!, { grpc_anchor_state: "READY" })) === 0
    })
    // The README's alert, evaluated by hand on the scrape: wanted > 0 and READY == 0.
    expect(sample(text, "grpc_anchor_connections_wanted", labels(b!))).toBe(1)
  })

  it("lists every definition once, and reports nothing after unregister", async () => {
    const names = Metrics.definitions.map((d) => d.name)
    expect(new Set(names).size).toBe(names.length)
    for (const d of Metrics.definitions) expect(d.name).toMatch(/^grpc_anchor\.[a-z_.]+$/)
    const [a] = await servers("a")
    const channel = pooled(`pass:///${a!.address}`)
    defer(channel.close)
    await channel.waitSlots(1)
    const own = sdk()
    expect(has(await own.read(), "grpc_anchor.connections")).toBe(true)
    await own.close()
    // A cumulative SDK keeps what it read: a provider that never collected shows that unregister stops the reads.
    const silent = sdk()
    silent.registration.unregister()
    expect(has(await silent.read(), "grpc_anchor.connections")).toBe(false)
    await silent.close()
  })

  it("refuses what is not a MeterProvider, saying what to pass", () => {
    for (const bad of [undefined, null, {}, { getMeter: 1 }]) {
      expect(() => Metrics.register(bad as never)).toThrow(/Metrics\.register needs an OpenTelemetry MeterProvider/)
    }
  })
})
