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
import { MAX_CONNECTIONS_OPTION } from "./AnchorRoundRobin.js"
import { RESOLUTION_KEY, type Resolution } from "./internal/keys.js"
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
 * @since 0.1.0
 */
export const SCHEME = "pass"

const parsePass = (uri: experimental.GrpcUri): Target.PassTarget => targetOf(uri, "Pass")

/**
 * The connection cap this channel's policy will apply, when the resolver can
 * know it: the channel option, or the default. (When the user's service
 * config names a policy, that config may set its own cap or pick another
 * policy: then the policy alone decides.)
 */
const capOf = (options: ChannelOptions): number | undefined => {
  const max = options[MAX_CONNECTIONS_OPTION]
  if (max === undefined) return Balancer.DEFAULT_MAX_CONNECTIONS
  // A malformed value is the policy's to report.
  return typeof max === "number" && Number.isInteger(max) && max >= 1 ? max : undefined
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
    const max = this.serviceConfig === null ? undefined : capOf(options)
    if (max !== undefined) {
      const checked = Balancer.checkCap(Expansion.fromTarget(target), max)
      if (Result.isFailure(checked)) throw checked.failure
    }
    this.endpoints = target.endpoints.map(({ address }) => ({ addresses: [{ host: address.host, port: address.port }] }))
    const resolution: Resolution = {
      target: Target.format(target),
      counts: new Map(target.endpoints.map(({ address, count }) => [Address.format(address), count])),
      serverNames: new Map()
    }
    this.attributes = { [RESOLUTION_KEY]: resolution }
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
 * @since 0.1.0
 */
export const setup = (): void => {
  experimental.registerResolver(SCHEME, PassResolver)
}
