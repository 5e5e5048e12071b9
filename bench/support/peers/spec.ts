/**
 * What the peer benchmark compares: each variant is one way a grpc-js user
 * spreads calls over connections, described as plain data so the parent can
 * hand it to a client process (client.ts builds it there).
 */

/** How a grpc-js channel balances over its addresses (`round_robin` via service config). */
export type Policy = "pick_first" | "round_robin"

export type VariantSpec =
  /** One grpc-js channel: its default `pick_first`, or `round_robin` over several addresses. */
  | { readonly kind: "grpc-js"; readonly ports: ReadonlyArray<number>; readonly policy: Policy }
  /** grpc-gcp's channel pool: least-busy channel, a new one (up to `maxSize`) when every channel has `lowWatermark` calls in flight. */
  | {
      readonly kind: "grpc-gcp"
      readonly ports: ReadonlyArray<number>
      readonly policy: Policy
      readonly maxSize: number
      readonly lowWatermark: number
    }
  /** N grpc-js clients (a distinct channel option each, so each has its own connection), rotated by the caller. */
  | { readonly kind: "pool"; readonly clients: ReadonlyArray<ReadonlyArray<number>>; readonly policy: Policy }
  /**
   * grpc-anchor: `pass:///127.0.0.1:PORT#count,...`; with `metrics`, its
   * OpenTelemetry instruments registered on an SDK MeterProvider that
   * collects every second.
   */
  | { readonly kind: "anchor"; readonly ports: ReadonlyArray<number>; readonly count: number; readonly metrics?: boolean }

/** The name a variant has in the tables. */
export const variantName = (spec: VariantSpec): string => {
  switch (spec.kind) {
    case "grpc-js":
      return `grpc-js ${spec.policy}`
    case "grpc-gcp":
      return `grpc-gcp pool (max ${spec.maxSize})`
    case "pool":
      return `${spec.clients.length} grpc-js clients rotated`
    case "anchor":
      return `grpc-anchor #${spec.count}${spec.metrics === true ? " + metrics" : ""}`
  }
}

/** What a client process measured over one window. */
export interface ClientRun {
  readonly calls: number
  readonly failed: number
  readonly seconds: number
  readonly callsPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** User + system CPU of the client process over the window (process.cpuUsage), per successful call. */
  readonly cpuUsPerCall: number
  /** The window on the monotonic clock (µs, process.hrtime), to cut a CPU profile to it. */
  readonly windowUs: readonly [number, number]
}

/** Parent -> client. */
export type ClientRequest =
  | { readonly type: "start" }
  | { readonly type: "run"; readonly id: number; readonly durationMs: number }
  | { readonly type: "stop" }

/** Client -> parent. */
export type ClientMessage =
  | { readonly type: "loaded" }
  | { readonly type: "ready"; readonly pid: number }
  | { readonly type: "run"; readonly id: number; readonly result: ClientRun }

/** The load a client keeps up, fixed for its life. */
export interface LoadSpec {
  readonly inFlight: number
  /** Delay asked of the server per call (0: the server's own setting). */
  readonly delayMs: number
  readonly warmupMs: number
}
