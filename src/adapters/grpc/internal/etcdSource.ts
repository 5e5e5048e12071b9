/**
 * Where an `etcd:` channel's etcd client comes from (the order is in
 * `EtcdResolver`'s module doc): the target's authority, the AnchoredChannel's
 * `Etcd` service, `register({ etcd })`, or `ETCD_ENDPOINTS`. Internal.
 */
import type { ChannelOptions } from "@grpc/grpc-js"
import * as Config from "effect/Config"
import type * as ConfigProvider from "effect/ConfigProvider"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Address from "../../../core/Address.js"
import * as Target from "../../../core/Target.js"
import * as Etcd from "../../etcd/Etcd.js"
import { CONTEXT_KEY, ETCD_CLIENT_KEY } from "./keys.js"

type EtcdService = Context.Service.Shape<typeof Etcd.Etcd>

/** A channel's etcd client, as a layer (it may fail: bad settings, or etcd refuses). */
export type EtcdLayer = Layer.Layer<Etcd.Etcd, Etcd.EtcdError | Config.ConfigError>

/** The given hosts, with TLS and credentials read through Config. */
const forHosts = (hosts: ReadonlyArray<string>): EtcdLayer => Etcd.layerForHosts(hosts)

/** What went wrong with a channel's etcd client, for the channel's error. */
export const describeError = (error: Etcd.EtcdError | Config.ConfigError): string =>
  error instanceof Etcd.EtcdError ? error.message : `etcd settings: ${error.message}`

/**
 * The client of a plain grpc-js channel when `ETCD_ENDPOINTS` is set (read
 * once, through `Etcd.hostsConfig`, the one reader of that variable): its
 * hosts, or, when it is malformed, a layer failing with that error (the
 * channel reports it as UNAVAILABLE). `undefined` when it is not set.
 */
const fromEnvironment = (env: ConfigProvider.ConfigProvider): EtcdLayer | undefined => {
  const hosts = Effect.runSync(Effect.result(Config.option(Etcd.hostsConfig).parse(env)))
  if (Result.isFailure(hosts)) return Layer.effect(Etcd.Etcd, Effect.fail(hosts.failure))
  return Option.isSome(hosts.success) ? forHosts(hosts.success.value) : undefined
}

/**
 * Where this channel's etcd client comes from: `defaultSource` is what
 * `register({ etcd })` gave, `environment` where `ETCD_ENDPOINTS` is read.
 * Throws, saying how to give one, when nothing gives one.
 */
export const etcdLayer = (
  target: Target.EtcdTarget,
  options: ChannelOptions,
  environment: ConfigProvider.ConfigProvider,
  defaultSource: Etcd.EtcdOptions | undefined
): EtcdLayer => {
  if (target.etcd.length > 0) return forHosts(target.etcd.map(Address.format))
  const provided = options[ETCD_CLIENT_KEY] as EtcdService | undefined
  if (provided !== undefined) return Layer.succeed(Etcd.Etcd, provided)
  // Made by AnchoredChannel: its layer's type required Etcd, so this is a
  // hand-made channel option; never fall back to process-wide settings.
  if (options[CONTEXT_KEY] !== undefined) {
    throw new Error(`${Target.format(target)}: the AnchoredChannel was given no Etcd service`)
  }
  if (defaultSource !== undefined) {
    return Etcd.layer(defaultSource)
  }
  const env = fromEnvironment(environment)
  if (env !== undefined) return env
  throw new Error(
    `${Target.format(target)} names no etcd endpoints: write them in the target ` +
      `(etcd://127.0.0.1:2379/${target.service}#${Target.formatCount(target)}), pass a client to register({ etcd }), ` +
      `use AnchoredChannel with an Etcd layer, or set ETCD_ENDPOINTS`
  )
}
