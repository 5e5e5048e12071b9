/**
 * One client variant of the peer benchmark, alone in its process, so its CPU
 * time (process.cpuUsage) and its profile are its own. Forked by peers.ts:
 *
 *   client.ts '<VariantSpec JSON>' '<LoadSpec JSON>'
 *
 * Loads its modules and sends `{ type: "loaded" }`; on `{ type: "start" }`
 * builds the variant, warms it up (connects, JIT) under the scenario's load,
 * sends `{ type: "ready" }`, then answers each `{ type: "run", id, durationMs }`
 * with one measured window of closed-loop load; `{ type: "stop" }` closes the
 * clients and exits normally (so `--cpu-prof` writes its profile). Exits when
 * the parent goes away. Only the grpc-anchor variant loads grpc-anchor.
 */
import * as grpc from "@grpc/grpc-js"
import grpcGcpSetup from "grpc-gcp"
import { EchoClient, type Echo } from "../../../packages/cli/src/echo/echo.js"
import { runLoad } from "../load.js"
import type { ClientMessage, ClientRequest, ClientRun, LoadSpec, Policy, VariantSpec } from "./spec.js"

const spec = JSON.parse(process.argv[2] ?? "null") as VariantSpec
const load = JSON.parse(process.argv[3] ?? "null") as LoadSpec
if (spec === null || load === null) {
  process.stderr.write("usage: client.ts '<VariantSpec JSON>' '<LoadSpec JSON>'\n")
  process.exit(2)
}

const insecure = grpc.credentials.createInsecure()
const ipv4 = (ports: ReadonlyArray<number>) => `ipv4:${ports.map((p) => `127.0.0.1:${p}`).join(",")}`
const policyOptions = (policy: Policy): grpc.ChannelOptions =>
  policy === "round_robin" ? { "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) } : {}

// Loaded before "loaded" is sent: the parent starts every client at once and
// then connects them one at a time, so module loading is off the clock.
const library = spec.kind === "anchor" ? await import("../../../src/main/index.js") : undefined
const otel = spec.kind === "anchor" && spec.metrics === true ? await import("@opentelemetry/sdk-metrics") : undefined

const build = async (): Promise<{ readonly pick: () => Echo; readonly close: () => void }> => {
  switch (spec.kind) {
    case "grpc-js": {
      const client = new EchoClient(ipv4(spec.ports), insecure, policyOptions(spec.policy)) as unknown as Echo
      return { pick: () => client, close: () => client.close() }
    }
    case "grpc-gcp": {
      const gcp = grpcGcpSetup(grpc as never)
      const apiConfig = gcp.createGcpApiConfig({
        channelPool: { maxSize: spec.maxSize, maxConcurrentStreamsLowWatermark: spec.lowWatermark }
      })
      const client = new EchoClient(ipv4(spec.ports), insecure, {
        ...policyOptions(spec.policy),
        channelFactoryOverride: gcp.gcpChannelFactoryOverride,
        callInvocationTransformer: gcp.gcpCallInvocationTransformer,
        gcpApiConfig: apiConfig
      }) as unknown as Echo
      return { pick: () => client, close: () => client.close() }
    }
    case "pool": {
      const clients = spec.clients.map(
        (ports, index) =>
          new EchoClient(ipv4(ports), insecure, {
            ...policyOptions(spec.policy),
            // A distinct option per client: grpc-js shares subchannels between
            // channels with equal options, and then the pool would be one connection.
            "bench.pool_index": index
          }) as unknown as Echo
      )
      let next = 0
      return {
        pick: () => {
          const client = clients[next]!
          next = next + 1 === clients.length ? 0 : next + 1
          return client
        },
        close: () => clients.forEach((c) => c.close())
      }
    }
    case "anchor": {
      library!.register()
      const client = new EchoClient(
        `pass:///${spec.ports.map((p) => `127.0.0.1:${p}#${spec.count}`).join(",")}`,
        insecure
      ) as unknown as Echo
      if (otel === undefined) return { pick: () => client, close: () => client.close() }
      // Metrics on: the instruments on an SDK provider collected every second
      // (15 times as often as a default Prometheus scrape), exported nowhere.
      const exporter = new otel.InMemoryMetricExporter(otel.AggregationTemporality.CUMULATIVE)
      const reader = new otel.PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 1_000 })
      const provider = new otel.MeterProvider({ readers: [reader] })
      const registration = library!.Metrics.register(provider)
      setInterval(() => exporter.reset(), 10_000).unref()
      return {
        pick: () => client,
        close: () => {
          registration.unregister()
          void provider.shutdown()
          client.close()
        }
      }
    }
  }
}

const nowUs = () => Number(process.hrtime.bigint() / 1_000n)

const measure = async (durationMs: number): Promise<ClientRun> => {
  const start = nowUs()
  const cpu = process.cpuUsage()
  const result = await runLoad({ pick: variant.pick, inFlight: load.inFlight, durationMs, delayMs: load.delayMs })
  const used = process.cpuUsage(cpu)
  return {
    ...result,
    cpuUsPerCall: result.calls === 0 ? Number.NaN : (used.user + used.system) / result.calls,
    windowUs: [start, nowUs()]
  }
}

process.once("disconnect", () => process.exit(0))
// Told to start (the parent counts the connections the servers accept meanwhile).
await new Promise<void>((resolve) => {
  const onStart = (message: ClientRequest) => {
    if (message.type !== "start") return
    process.off("message", onStart)
    resolve()
  }
  process.on("message", onStart)
  process.send?.({ type: "loaded" } satisfies ClientMessage)
})
const variant = await build()
await measure(load.warmupMs)

// One window at a time: the parent waits for each answer.
process.on("message", async (message: ClientRequest) => {
  if (message.type === "stop") {
    variant.close()
    process.exit(0)
  }
  if (message.type === "run") {
    const result = await measure(Math.min(Math.max(message.durationMs, 100), 120_000))
    process.send?.({ type: "run", id: message.id, result } satisfies ClientMessage)
  }
})
process.send?.({ type: "ready", pid: process.pid } satisfies ClientMessage)
