/**
 * The `pass` resolver: `pass:///10.0.0.1:9080#2,10.0.0.2:9090#1` resolves to
 * the listed addresses, each with its connection count, and selects the
 * `anchor_round_robin` policy.
 *
 * A malformed target makes the channel constructor throw the core's
 * `TargetError` (offending piece and position), so `new Client(...)` fails at
 * once instead of failing every call later; so does a target asking for more
 * connections than the channel's cap (`grpc_anchor.max_connections`, default
 * 4,096), with the core's `ConnectionCapError`.
 *
 * The channel's default authority (its `:authority` header, and the TLS name
 * when no per-connection name applies) is the first address, e.g.
 * `10.0.0.1:9080`.
 *
 * Target options and ranges reach the policy with the addresses:
 * - `#MIN..MAX` (adaptive count): the policy starts with MIN connections and
 *   grows to at most MAX while they are saturated; the cap check counts MIN.
 * - `?pick=round_robin|least_request`: the pick mode; it wins over the
 *   policy config's `pickMode` (as `#N` wins over `connectionsPerAddress`),
 *   which applies when the target names none. When the user's service config
 *   names another policy, that policy alone decides.
 * - `?subset=K`: the channel connects to K of the addresses, chosen by
 *   `Subset.select` from the canonical address list and the channel's client
 *   id ({@link CLIENT_ID_OPTION}); the cap check counts only those.
 *
 * @example
 * ```ts
 * import * as grpc from "@grpc/grpc-js"
 * import { register } from "grpc-anchor"
 * register() // registers this resolver (and the others)
 * const client = new EchoClient("pass:///10.0.0.1:9080#2,10.0.0.2:9090", grpc.credentials.createInsecure())
 * ```
 *
 * @since 0.1.0
 */
import { experimental, type ChannelOptions } from "@grpc/grpc-js"
import * as Result from "effect/Result"
import * as Address from "../../core/Address.js"
import * as Balancer from "../../core/Balancer.js"
import * as Expansion from "../../core/Expansion.js"
import * as Target from "../../core/Target.js"
import { RESOLUTION_KEY } from "./internal/keys.js"
import { CLIENT_ID_OPTION as CLIENT_ID, clientIdOf, resolutionOf, subsetOf } from "./internal/resolution.js"
import { serviceConfigFor } from "./internal/serviceConfig.js"
import { targetOf } from "./internal/targetOf.js"

/**
 * The URI scheme this resolver handles.
 *
 * @example
 * ```ts
 * `${PassResolver.SCHEME}:///10.0.0.1:9080#2` // "pass:///10.0.0.1:9080#2"
 * ```
 *
 * @category constants
 * @since 0.1.0
 */
export const SCHEME = "pass"

/**
 * Channel option naming this client for deterministic subsetting
 * (`?subset=K` targets, `pass:` and `etcd:` alike): a client index, a whole
 * number 0..4294967295 (or its decimal text), or any other non-empty text,
 * a client name. Default: `${os.hostname()}/${process.pid}`, a name.
 *
 * Indices give the best balance: give the M clients of a service the
 * distinct indices 0..M-1 (a StatefulSet ordinal, a task number) and every
 * backend gets within a client or so of the mean M·K/N. Names need no
 * coordination, and a backend joining or leaving moves the fewest clients,
 * but then a backend's number of clients varies as with random choices
 * (Binomial(M, K/N)). See `Subset` in grpc-anchor/core. A malformed value
 * makes the channel constructor throw.
 *
 * @example
 * ```ts
 * new EchoClient("etcd:///billing#2?subset=20", insecure, { [PassResolver.CLIENT_ID_OPTION]: Number(process.env.ORDINAL) })
 * ```
 *
 * @category settings
 * @since 0.2.0
 */
export const CLIENT_ID_OPTION = CLIENT_ID

const parsePass = (uri: experimental.GrpcUri): Target.PassTarget => targetOf(uri, "Pass")

/**
 * The connection cap this channel's policy will apply, when the resolver can
 * know it: the core's settings from the channel options (the option, or the
 * default). (When the user's service config names a policy, that config may
 * set its own cap or pick another policy: then the policy alone decides.)
 */
const capOf = (options: ChannelOptions): number | undefined => {
  // Only the cap's option: another malformed setting must not skip the check.
  const option = Balancer.SETTINGS.maxConnections.option
  const settings = Balancer.decodeSettings(undefined, { [option]: options[option] })
  // A malformed cap is the policy's to report.
  return Result.isSuccess(settings) ? settings.success.maxConnections : undefined
}

/**
 * The grpc-js resolver class for `pass:` targets (registered by
 * {@link setup}; grpc-js constructs it, not you).
 *
 * @example
 * ```ts
 * import { experimental } from "@grpc/grpc-js"
 * experimental.registerResolver(PassResolver.SCHEME, PassResolver.PassResolver) // what setup() does
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export class PassResolver implements experimental.Resolver {
  private readonly endpoints: Array<experimental.Endpoint>
  private readonly attributes: Record<string, unknown>
  private readonly serviceConfig: ReturnType<typeof serviceConfigFor>
  private pending = false
  private destroyed = false

  constructor(
    uri: experimental.GrpcUri,
    private readonly listener: experimental.ResolverListener,
    options: ChannelOptions
  ) {
    const target = parsePass(uri)
    this.serviceConfig = serviceConfigFor(options)
    const clientId = clientIdOf(options)
    const weighted = subsetOf(Expansion.fromTarget(target), target.options.subset, clientId)
    const max = this.serviceConfig === null ? undefined : capOf(options)
    if (max !== undefined) {
      const checked = Balancer.checkCap(weighted, max)
      if (Result.isFailure(checked)) throw checked.failure
    }
    const chosen = new Set(weighted.map((w) => w.address))
    this.endpoints = target.endpoints
      .filter(({ address }) => chosen.has(Address.format(address)))
      .map(({ address }) => ({ addresses: [{ host: address.host, port: address.port }] }))
    this.attributes = {
      [RESOLUTION_KEY]: resolutionOf(
        Target.format(target),
        weighted,
        target.options,
        "fail",
        undefined,
        target.options.subset === undefined ? undefined : { size: weighted.length, moves: 0 }
      )
    }
  }

  updateResolution(): void {
    // Never call the listener synchronously: grpc-js may be inside the
    // channel constructor or the policy's re-resolution request.
    if (this.pending || this.destroyed) return
    this.pending = true
    process.nextTick(() => {
      this.pending = false
      if (this.destroyed) return
      this.listener(
        experimental.statusOrFromValue(this.endpoints),
        this.attributes,
        this.serviceConfig,
        ""
      )
    })
  }

  destroy(): void {
    this.destroyed = true
  }

  static getDefaultAuthority(uri: experimental.GrpcUri): string {
    const first = parsePass(uri).endpoints[0]
    // The grammar rejects an empty list, so there is always a first address.
    return first === undefined ? "localhost" : Address.format(first.address)
  }
}

/**
 * Registers the `pass` scheme with the app's @grpc/grpc-js (`register()`
 * calls it, with the other resolver and the policy).
 *
 * @example
 * ```ts
 * PassResolver.setup()
 * ```
 *
 * @category registration
 * @since 0.1.0
 */
export const setup = (): void => {
  experimental.registerResolver(SCHEME, PassResolver)
}
