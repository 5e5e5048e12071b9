/**
 * Reading grpc-anchor's metrics as an operator's tools do: the
 * OpenTelemetry SDK with its in-memory exporter, and the Prometheus
 * exporter scraped over HTTP on loopback.
 */
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus"
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader
} from "@opentelemetry/sdk-metrics"
import { Metrics } from "../../src/main/index.js"
import { freePort } from "../support/etcd.js"

/** One data point as read: metric name, attributes, value. */
export interface Read {
  readonly name: string
  readonly attributes: Readonly<Record<string, unknown>>
  readonly value: number
}

/** The sum of the points of `name` whose attributes include `match`. */
export const valueOf = (points: ReadonlyArray<Read>, name: string, match: Readonly<Record<string, string>> = {}): number =>
  points
    .filter((p) => p.name === name && Object.entries(match).every(([k, v]) => p.attributes[k] === v))
    .reduce((sum, p) => sum + p.value, 0)

/** Whether some point of `name` matches. */
export const has = (points: ReadonlyArray<Read>, name: string, match: Readonly<Record<string, string>> = {}): boolean =>
  points.some((p) => p.name === name && Object.entries(match).every(([k, v]) => p.attributes[k] === v))

/** The SDK with the in-memory exporter (cumulative), grpc-anchor's instruments registered on it. */
export const sdk = () => {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  // Exports only when flushed: the test decides when metrics are collected.
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
  const provider = new MeterProvider({ readers: [reader] })
  const registration = Metrics.register(provider)
  return {
    registration,
    /** Collects now and returns grpc-anchor's points. */
    read: async (): Promise<ReadonlyArray<Read>> => {
      exporter.reset()
      await reader.forceFlush()
      const out: Array<Read> = []
      for (const resource of exporter.getMetrics()) {
        for (const scope of resource.scopeMetrics) {
          if (scope.scope.name !== "grpc-anchor") continue
          for (const metric of scope.metrics) {
            for (const point of metric.dataPoints) {
              out.push({ name: metric.descriptor.name, attributes: point.attributes, value: point.value as number })
            }
          }
        }
      }
      return out
    },
    close: async () => {
      registration.unregister()
      await provider.shutdown()
    }
  }
}

/** A Prometheus exporter on 127.0.0.1 with grpc-anchor's instruments; `scrape` GETs /metrics as Prometheus does. */
export const prometheus = async () => {
  const port = await freePort()
  const exporter = new PrometheusExporter({ host: "127.0.0.1", port })
  const provider = new MeterProvider({ readers: [exporter] })
  const registration = Metrics.register(provider)
  await exporter.startServer()
  return {
    port,
    scrape: async (): Promise<string> => {
      const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) })
      if (!response.ok) throw new Error(`scrape: HTTP ${response.status}`)
      return response.text()
    },
    close: async () => {
      registration.unregister()
      await provider.shutdown()
    }
  }
}

/** The value of the sample line `name{...}` whose labels include `labels` (Prometheus text format); undefined: absent. */
export const sample = (text: string, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined => {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/.exec(line)
    if (m === null || m[1] !== name) continue
    const found: Record<string, string> = {}
    for (const l of (m[3] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found[l[1]!] = l[2]!
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(m[4])
  }
  return undefined
}
