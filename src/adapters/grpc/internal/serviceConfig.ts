/**
 * The service config a grpc-anchor resolver reports: the user's own when it
 * names a load-balancing policy, otherwise the user's with
 * `anchor_round_robin` added (or just that, when the user gave none).
 */
import { experimental, type ChannelOptions, type ServiceConfig } from "@grpc/grpc-js"
import { TYPE_NAME } from "../AnchorRoundRobin.js"

type MethodConfig = ServiceConfig["methodConfig"][number]

/**
 * The service config in the form a resolver hands to its listener, computed
 * once per resolver. `null` tells grpc-js to use the channel's default
 * service config (the user's `grpc.service_config`) unchanged.
 */
export const serviceConfigFor = (options: ChannelOptions): experimental.StatusOr<ServiceConfig> | null => {
  const config = withAnchorPolicy(options)
  return config === null ? null : experimental.statusOrFromValue(config)
}

const withAnchorPolicy = (options: ChannelOptions): ServiceConfig | null => {
  const raw = options["grpc.service_config"]
  if (typeof raw !== "string") {
    return { loadBalancingConfig: [{ [TYPE_NAME]: {} }], methodConfig: [] }
  }
  // grpc-js has already validated this JSON when it built the channel.
  const user = JSON.parse(raw) as Record<string, unknown>
  const names = Array.isArray(user["loadBalancingConfig"]) && user["loadBalancingConfig"].length > 0
  if (names || typeof user["loadBalancingPolicy"] === "string") return null
  const methodConfig = Array.isArray(user["methodConfig"]) ? user["methodConfig"].map(normalizeMethodConfig) : []
  return {
    ...(user as Partial<ServiceConfig>),
    loadBalancingConfig: [{ [TYPE_NAME]: {} }],
    methodConfig
  }
}

/**
 * grpc-js's own validation turns a timeout string ("1.5s") into a Duration;
 * configs returned by a resolver skip that step, so do it here.
 */
const normalizeMethodConfig = (config: Record<string, unknown>): MethodConfig => {
  const timeout = config["timeout"]
  if (typeof timeout === "string") {
    const duration = experimental.parseDuration(timeout)
    if (duration !== null) return { ...config, timeout: duration } as unknown as MethodConfig
  }
  return config as unknown as MethodConfig
}
