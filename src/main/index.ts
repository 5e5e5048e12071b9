/**
 * grpc-anchor: a connection pool with weighted round robin for
 * @grpc/grpc-js clients, and etcd service discovery.
 *
 * Importing this module registers grpc-anchor's resolvers (`pass`, `etcd`)
 * and its `anchor_round_robin` policy into the app's @grpc/grpc-js: a
 * client made after any import from `grpc-anchor` takes `pass:///` and
 * `etcd:///` targets. (The package declares this module in `sideEffects`,
 * so bundlers keep it.) `grpc-anchor/core` registers nothing.
 *
 * Plain grpc-js: {@link register} (for etcd settings), {@link createChannel},
 * {@link registerEndpoint}, `ConnectionObserver`. Effect 4: the
 * `AnchoredChannel`, `Etcd`, `Registrar` and `Discovery` layers. `Target`
 * (the grammar every entry point here takes; {@link createChannel} throws
 * its `TargetError`). The rest of the pure core (`Rotation`, `Balancer`,
 * `EtcdRecord`, ...) is `grpc-anchor/core`.
 *
 * @example
 * ```ts
 * import * as grpc from "@grpc/grpc-js"
 * import "grpc-anchor" // or any import from it
 * const client = new EchoClient("pass:///10.0.0.1:9080#2,10.0.0.2:9090#1", grpc.credentials.createInsecure())
 * ```
 *
 * @since 0.1.0
 */
import * as grpc from "@grpc/grpc-js"
import { setDefaultEtcd, type EtcdSource } from "../adapters/grpc/EtcdResolver.js"
import { registerAll } from "../adapters/grpc/register.js"

// Only the core module the public API needs: the rest is grpc-anchor/core's
// (0.2 re-exported the whole core here).
export * as Target from "../core/Target.js"
export * as AnchorRoundRobin from "../adapters/grpc/AnchorRoundRobin.js"
export * as PassResolver from "../adapters/grpc/PassResolver.js"
export * as EtcdResolver from "../adapters/grpc/EtcdResolver.js"
export { ConnectionObserver } from "../adapters/grpc/ConnectionObserver.js"
export type { ObservedConnection, RemoteSummary } from "../adapters/grpc/ConnectionObserver.js"
export * as Stats from "../adapters/grpc/Stats.js"
export * as AnchoredChannel from "../adapters/grpc/AnchoredChannel.js"
export * as Etcd from "../adapters/etcd/Etcd.js"
export * as Registrar from "../adapters/etcd/Registrar.js"
export * as Discovery from "../adapters/etcd/Discovery.js"
export * as Metrics from "../adapters/metrics/Metrics.js"
export { registerEndpoint } from "./promise/registerEndpoint.js"
export type { EndpointRegistration, EtcdConnectionOptions, RegisterEndpointOptions } from "./promise/registerEndpoint.js"

// The first mistake a newcomer would make is a client made without
// `register()`: grpc-js then falls back to DNS and fails every call with
// "Name resolution failed for target dns:pass:///...", naming neither
// grpc-anchor nor the fix. So importing grpc-anchor registers it.
registerAll()

/**
 * Registers grpc-anchor's resolvers (`pass`, `etcd`) and its
 * `anchor_round_robin` policy into the app's own @grpc/grpc-js. Idempotent,
 * and already done by importing `grpc-anchor`: call it to give plain
 * channels their etcd settings, or to make the registration explicit.
 *
 * `etcd` sets the etcd client options (one member or a cluster) used by
 * plain grpc-js channels on `etcd:///SERVICE` targets that name no
 * endpoints; a later call replaces it. Without it such channels use
 * `ETCD_ENDPOINTS`. (`AnchoredChannel` takes its client from the `Etcd`
 * layer instead.)
 *
 * @example
 * ```ts
 * import * as grpc from "@grpc/grpc-js"
 * import { register } from "grpc-anchor"
 * register({ etcd: { hosts: "127.0.0.1:2379" } })
 * const client = new EchoClient("etcd:///billing#2", grpc.credentials.createInsecure())
 * ```
 *
 * @since 0.1.0
 */
export const register = (options: { readonly etcd?: EtcdSource } = {}): void => {
  registerAll()
  if (options.etcd !== undefined) setDefaultEtcd(options.etcd)
}

/**
 * A grpc-js `Channel` for a grpc-anchor target, for applications that do not
 * use Effect. Pass it to a client with `{ channelOverride: channel }`; close
 * it with `channel.close()`. A malformed target throws the core's
 * `TargetError`. Registers grpc-anchor (as {@link register} does) first.
 *
 * @example
 * ```ts
 * import * as grpc from "@grpc/grpc-js"
 * import { createChannel } from "grpc-anchor"
 * const channel = createChannel("pass:///10.0.0.1:9080#2", grpc.credentials.createInsecure())
 * const client = new EchoClient("pass:///10.0.0.1:9080#2", grpc.credentials.createInsecure(), { channelOverride: channel })
 * channel.close()
 * ```
 *
 * @since 0.1.0
 */
export const createChannel = (
  target: string,
  credentials: grpc.ChannelCredentials,
  options: grpc.ChannelOptions = {}
): grpc.Channel => {
  registerAll()
  return new grpc.Channel(target, credentials, options)
}
