/**
 * Why a channel in TRANSIENT_FAILURE fails its calls, in the words a plain
 * grpc-js call gets: grpc-js keeps the reason only in the channel's picker
 * (its public API exposes the state, not the message), so one call without
 * `waitForReady` is started and its status read. In TRANSIENT_FAILURE the
 * pick fails at once, before any connection is used: the call never leaves
 * the process. Internal: AnchoredChannel's `waitForReady` uses it.
 */
import * as grpc from "@grpc/grpc-js"

/** The method of the probe call; it never reaches a server while the channel is in TRANSIENT_FAILURE. */
const PROBE_METHOD = "/grpc_anchor.Probe/WhyNotReady"

/**
 * The status details a call started now would fail with, when the channel is
 * in TRANSIENT_FAILURE and its picker fails calls with UNAVAILABLE (e.g.
 * `anchor_round_robin: no addresses for etcd:///billing#2 (service "billing"
 * has no endpoints registered in etcd)`); `undefined` in any other state, or
 * when no such answer comes within `timeoutMs`.
 */
export const failureOf = (channel: grpc.Channel, timeoutMs = 1_000): Promise<string | undefined> =>
  new Promise((resolve) => {
    if (channel.getConnectivityState(false) !== grpc.connectivityState.TRANSIENT_FAILURE) return resolve(undefined)
    let call: ReturnType<grpc.Channel["createCall"]> | undefined
    const timer = setTimeout(() => {
      call?.cancelWithStatus(grpc.status.CANCELLED, "probe timed out")
      resolve(undefined)
    }, timeoutMs)
    try {
      call = channel.createCall(PROBE_METHOD, Date.now() + timeoutMs, null, null, null)
      call.start(new grpc.Metadata(), {
        onReceiveMetadata: () => {},
        onReceiveMessage: () => {},
        onReceiveStatus: (status) => {
          clearTimeout(timer)
          resolve(status.code === grpc.status.UNAVAILABLE && status.details !== "" ? status.details : undefined)
        }
      })
      // Picked after all (the channel just turned READY): do not let it reach a server.
      if (channel.getConnectivityState(false) === grpc.connectivityState.READY) call.cancelWithStatus(grpc.status.CANCELLED, "probe")
    } catch {
      clearTimeout(timer)
      resolve(undefined)
    }
  })
