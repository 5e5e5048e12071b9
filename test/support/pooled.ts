/**
 * A grpc-js echo client on a grpc-anchor target with a stats sink, so a test
 * can see the connection slots the policy holds (address, index, state).
 */
import type * as grpc from "@grpc/grpc-js"
import { STATS_KEY } from "../../src/adapters/grpc/internal/keys.js"
import { makeSink } from "../../src/adapters/grpc/internal/stats.js"
import type { ConnectionStats } from "../../src/adapters/grpc/Stats.js"
import { call, type Echo } from "../../packages/cli/src/echo/echo.js"
import { eventually, makeClient } from "./grpc.js"

export interface Pooled {
  readonly client: Echo
  /** The slots the policy holds now. */
  readonly slots: () => ReadonlyArray<ConnectionStats>
  /** READY slots per address. */
  readonly readyByAddress: () => Record<string, number>
  /** Waits (bounded) until there are exactly `slots` slots, all READY; connects the channel if idle. */
  readonly waitSlots: (slots: number, timeoutMs?: number) => Promise<void>
  readonly close: () => void
}

/** Opens `target` with a stats sink; `onChange` runs on every connectivity or address change. */
export const pooled = (target: string, options: grpc.ChannelOptions = {}, onChange?: () => void): Pooled => {
  const sink = makeSink(target, onChange)
  const client = makeClient(target, { ...options, [STATS_KEY]: sink })
  const slots = () => sink.read().connections
  const readyByAddress = () => {
    const out: Record<string, number> = {}
    for (const slot of slots()) if (slot.state === "READY") out[slot.address] = (out[slot.address] ?? 0) + 1
    return out
  }
  return {
    client,
    slots,
    readyByAddress,
    waitSlots: (count, timeoutMs = 15_000) =>
      eventually(
        `${count} READY connections`,
        () => {
          client.getChannel().getConnectivityState(true)
          const now = slots()
          return now.length === count && now.every((s) => s.state === "READY")
        },
        { timeoutMs }
      ).catch((error: Error) => {
        throw new Error(`${error.message}; slots: ${JSON.stringify(slots().map((s) => `${s.address}#${s.index} ${s.state}`))}`)
      }),
    close: () => client.close()
  }
}

/**
 * Opens `target`, makes one call without waiting for the channel to be ready
 * (so a resolver's error fails it at once) and closes the channel: the
 * call's error, or undefined when it was answered. `deadlineMs` bounds the
 * call; a call still waiting then fails with DEADLINE_EXCEEDED.
 */
export const firstCallError = async (
  target: string,
  options: { readonly deadlineMs: number; readonly channelOptions?: grpc.ChannelOptions }
): Promise<grpc.ServiceError | undefined> => {
  const channel = pooled(target, options.channelOptions)
  try {
    return await call(channel.client, { deadlineMs: options.deadlineMs }).then(
      () => undefined,
      (error: grpc.ServiceError) => error
    )
  } finally {
    channel.close()
  }
}

/**
 * `pooled` whose channel is closed by `defer` after the test, as
 * `echoServers(defer)` does for servers: `const pooled = pooledClosedBy(defer)`.
 */
export const pooledClosedBy =
  (defer: (cleanup: () => unknown) => void) =>
  (target: string, options: grpc.ChannelOptions = {}): Pooled => {
    const opened = pooled(target, options)
    defer(opened.close)
    return opened
  }
