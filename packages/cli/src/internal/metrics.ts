/**
 * `--metrics PORT` of `demo`, `watch` and `register`: grpc-anchor's metrics
 * (`Metrics.register`) served as Prometheus text on
 * `http://127.0.0.1:PORT/metrics` for as long as the command runs, so a
 * person (or a Prometheus) can curl them while things happen. The
 * OpenTelemetry SDK and the Prometheus exporter are loaded only when the
 * flag is given.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { Flag } from "effect/cli"
import { Metrics } from "grpc-anchor"
import { type CommandError, failure, inRange, oneLine } from "./common.js"

/** The flag: a TCP port on 127.0.0.1. */
export const metricsFlag = Flag.Int("metrics").pipe(
  Flag.withMetavar("PORT"),
  Flag.mapEffect(inRange("--metrics", 1, 65_535, "a TCP port 1..65535")),
  Flag.optional,
  Flag.withDescription("Serve grpc-anchor's metrics as Prometheus text on http://127.0.0.1:PORT/metrics while the command runs.")
)

/**
 * Serves the metrics on 127.0.0.1:`port` (nothing when `None`) until the
 * scope closes; a port already taken fails the command before it starts.
 */
export const serveMetrics = (port: Option.Option<number>): Effect.Effect<void, CommandError, Scope.Scope> =>
  Option.match(port, {
    onNone: () => Effect.void,
    onSome: (port) =>
      Effect.acquireRelease(
        Effect.tryPromise({
          try: async () => {
            const [{ PrometheusExporter }, { MeterProvider }] = await Promise.all([
              import("@opentelemetry/exporter-prometheus"),
              import("@opentelemetry/sdk-metrics")
            ])
            // Started by hand: the constructor's server would report a taken port only to a callback.
            const exporter = new PrometheusExporter({ host: "127.0.0.1", port, preventServerStart: true })
            const provider = new MeterProvider({ readers: [exporter] })
            const registration = Metrics.register(provider)
            try {
              await exporter.startServer()
            } catch (error) {
              registration.unregister()
              await provider.shutdown().catch(() => {})
              throw error
            }
            return { registration, provider }
          },
          catch: (error) => failure(`--metrics: cannot serve on 127.0.0.1:${port}: ${oneLine(error instanceof Error ? error.message : String(error))}`, error)
        }),
        ({ provider, registration }) =>
          Effect.promise(async () => {
            registration.unregister()
            // Stops the HTTP server too; bounded, so a stuck scrape cannot hold the exit.
            await Promise.race([provider.shutdown().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 2_000).unref())])
          })
      ).pipe(Effect.asVoid)
  })
