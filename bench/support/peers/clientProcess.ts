/**
 * Starts one client variant (client.ts) in its own process and asks it for
 * measured windows.
 */
import { startChild } from "./children.js"
import { variantName, type ClientMessage, type ClientRun, type LoadSpec, type VariantSpec } from "./spec.js"

export interface ClientProcess {
  readonly name: string
  readonly spec: VariantSpec
  readonly pid: number
  /** One window of closed-loop load, `durationMs` long. */
  readonly run: (durationMs: number) => Promise<ClientRun>
  /** Closes the clients and lets the process exit normally (a --cpu-prof profile is written). */
  readonly stop: () => Promise<void>
}

/** Resolves once the client is built and warmed up. `nodeArgs`: e.g. `--cpu-prof`. */
export const startClient = async (
  spec: VariantSpec,
  load: LoadSpec,
  nodeArgs: ReadonlyArray<string> = []
): Promise<ClientProcess> => {
  const name = variantName(spec)
  const { child, ready } = await startChild<Extract<ClientMessage, { type: "ready" }>>({
    name: `client ${name}`,
    file: new URL("./client.ts", import.meta.url),
    args: [JSON.stringify(spec), JSON.stringify(load)],
    nodeArgs,
    readyTimeoutMs: 60_000 + load.warmupMs
  })
  return {
    name,
    spec,
    pid: ready.pid,
    run: async (durationMs) =>
      (await child.ask<Extract<ClientMessage, { type: "run" }>>({ type: "run", durationMs }, durationMs + 60_000)).result,
    stop: () => child.stop(10_000)
  }
}
