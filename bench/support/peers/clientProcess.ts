/**
 * Starts one client variant (client.ts) in its own process and asks it for
 * measured windows. Two steps, so that several clients can load their
 * modules at once and still connect one at a time: `launchClient` resolves
 * once the process has loaded, `start` once it has connected and warmed up.
 */
import { startChild } from "./children.js"
import { variantName, type ClientMessage, type ClientRun, type LoadSpec, type VariantSpec } from "./spec.js"

export interface ClientProcess {
  readonly name: string
  readonly spec: VariantSpec
  /** Builds the variant (connections open) and warms it up under the scenario's load. */
  readonly start: () => Promise<void>
  /** One window of closed-loop load, `durationMs` long. */
  readonly run: (durationMs: number) => Promise<ClientRun>
  /** Closes the clients and lets the process exit normally (a --cpu-prof profile is written). */
  readonly stop: () => Promise<void>
}

/** Forks the client and resolves once its modules are loaded. `nodeArgs`: e.g. `--cpu-prof`. */
export const launchClient = async (
  spec: VariantSpec,
  load: LoadSpec,
  nodeArgs: ReadonlyArray<string> = []
): Promise<ClientProcess> => {
  const name = variantName(spec)
  const { child } = await startChild<Extract<ClientMessage, { type: "loaded" }>>({
    name: `client ${name}`,
    file: new URL("./client.ts", import.meta.url),
    args: [JSON.stringify(spec), JSON.stringify(load)],
    nodeArgs,
    readyType: "loaded",
    readyTimeoutMs: 120_000
  })
  return {
    name,
    spec,
    start: async () => {
      const ready = child.expect<Extract<ClientMessage, { type: "ready" }>>("ready", 60_000 + load.warmupMs)
      child.send({ type: "start" })
      await ready
    },
    run: async (durationMs) =>
      (await child.ask<Extract<ClientMessage, { type: "run" }>>({ type: "run", durationMs }, durationMs + 60_000)).result,
    stop: () => child.stop(10_000)
  }
}

/** Forks, loads, connects and warms up one client. */
export const startClient = async (spec: VariantSpec, load: LoadSpec, nodeArgs: ReadonlyArray<string> = []): Promise<ClientProcess> => {
  const client = await launchClient(spec, load, nodeArgs)
  await client.start()
  return client
}
