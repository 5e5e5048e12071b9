/**
 * Starts the peer benchmark's backend (server.ts) as a child process and
 * reads its counters.
 */
import { startChild } from "./children.js"
import type { ServerMessage, WorkerStats } from "./server.js"

/** How one backend behaves: see server.ts for each knob. */
export interface ServerSpec {
  readonly name: string
  readonly maxStreams?: number
  readonly delayMs?: number
  readonly busyUs?: number
  readonly workers?: number
}

export interface ServerProcess {
  readonly spec: ServerSpec
  readonly port: number
  /** Connections accepted and calls served so far, per worker. */
  readonly stats: () => Promise<ReadonlyArray<WorkerStats>>
  readonly stop: () => Promise<void>
}

/** One line saying what a backend does per call. */
export const describeServer = (spec: ServerSpec): string =>
  [
    spec.workers !== undefined && spec.workers > 1 ? `${spec.workers} cluster workers on one port` : "1 process",
    spec.maxStreams !== undefined ? `max ${spec.maxStreams} streams per connection` : "no stream cap",
    spec.busyUs ? `${spec.busyUs / 1000} ms CPU per call` : undefined,
    spec.delayMs ? `${spec.delayMs} ms per call` : undefined
  ]
    .filter(Boolean)
    .join(", ")

export const startServer = async (spec: ServerSpec): Promise<ServerProcess> => {
  const args = ["--name", spec.name]
  if (spec.maxStreams !== undefined) args.push("--max-streams", String(spec.maxStreams))
  if (spec.delayMs !== undefined) args.push("--delay-ms", String(spec.delayMs))
  if (spec.busyUs !== undefined) args.push("--busy-us", String(spec.busyUs))
  if (spec.workers !== undefined) args.push("--workers", String(spec.workers))
  const { child, ready } = await startChild<Extract<ServerMessage, { type: "ready" }>>({
    name: `server ${spec.name}`,
    file: new URL("./server.ts", import.meta.url),
    args
  })
  return {
    spec,
    port: ready.port,
    stats: async () => (await child.ask<Extract<ServerMessage, { type: "stats" }>>({ type: "stats" }, 10_000)).workers,
    stop: () => child.stop(3_000)
  }
}
