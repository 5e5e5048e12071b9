/**
 * The service config a grpc-anchor resolver reports: the user's own when it
 * names a load-balancing policy, otherwise the user's with
 * `anchor_round_robin` added (or just that, when the user gave none).
 *
 * The user's `grpc.service_config` is outside input: it is decoded with
 * `effect/Schema` (only the fields this decision reads are typed; every
 * other field is kept as it is).
 */
import { experimental, type ChannelOptions, type ServiceConfig } from "@grpc/grpc-js"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaTransformation from "effect/SchemaTransformation"
import { POLICY_NAME as TYPE_NAME } from "./keys.js"

type MethodConfig = ServiceConfig["methodConfig"][number]
type GrpcDuration = experimental.Duration

/** Any further fields, kept unchanged. */
const Rest = [Schema.Record(Schema.String, Schema.Unknown)] as const

/**
 * A method config's `timeout`: grpc-js's own validation turns a timeout
 * string ("1.5s") into a Duration when it reads a channel's config, but a
 * config handed over by a resolver skips that step, so the decoder does it.
 * A string grpc-js cannot read stays as it is (grpc-js reports it).
 */
const Timeout = Schema.String.pipe(
  Schema.decodeTo(
    Schema.Unknown,
    SchemaTransformation.transform<unknown, string>({
      decode: (text): GrpcDuration | string => experimental.parseDuration(text) ?? text,
      encode: (timeout) => {
        if (typeof timeout === "string") return timeout
        const { nanos, seconds } = timeout as GrpcDuration
        return `${seconds + nanos / 1e9}s`
      }
    })
  )
)

const MethodConfigSchema = Schema.StructWithRest(
  Schema.Struct({ timeout: Schema.optionalKey(Schema.Union([Timeout, Schema.Unknown])) }),
  Rest
)

/** The fields of a user's service config that decide whether the anchor policy is added. */
const UserServiceConfig = Schema.fromJsonString(
  Schema.StructWithRest(
    Schema.Struct({
      loadBalancingConfig: Schema.optionalKey(Schema.Array(Schema.Unknown)),
      loadBalancingPolicy: Schema.optionalKey(Schema.Unknown),
      methodConfig: Schema.optionalKey(Schema.Array(MethodConfigSchema))
    }),
    Rest
  )
)

const decodeUserServiceConfig = Schema.decodeUnknownResult(UserServiceConfig)

const ANCHOR_ONLY: ServiceConfig = { loadBalancingConfig: [{ [TYPE_NAME]: {} }], methodConfig: [] }

/**
 * The service config in the form a resolver hands to its listener, computed
 * once per resolver. `null` tells grpc-js to use the channel's default
 * service config (the user's `grpc.service_config`) unchanged.
 */
export const serviceConfigFor = (options: ChannelOptions): experimental.StatusOr<ServiceConfig> | null => {
  const config = withAnchorPolicy(options["grpc.service_config"])
  return config === null ? null : experimental.statusOrFromValue(config)
}

const withAnchorPolicy = (raw: unknown): ServiceConfig | null => {
  if (typeof raw !== "string") return ANCHOR_ONLY
  const decoded = decodeUserServiceConfig(raw)
  // grpc-js validated this JSON when it built the channel, so this does not
  // happen; if it did, grpc-js's own reading of the user's config applies.
  if (Result.isFailure(decoded)) return null
  const user = decoded.success
  const namesPolicy = (user.loadBalancingConfig !== undefined && user.loadBalancingConfig.length > 0) ||
    typeof user.loadBalancingPolicy === "string"
  if (namesPolicy) return null
  return {
    ...(user as unknown as Partial<ServiceConfig>),
    loadBalancingConfig: [{ [TYPE_NAME]: {} }],
    methodConfig: (user.methodConfig ?? []) as unknown as Array<MethodConfig>
  }
}
