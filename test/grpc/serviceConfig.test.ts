/**
 * The service config the resolvers report, decided from the user's
 * `grpc.service_config` (decoded with effect/Schema): a config naming a
 * policy wins (null: grpc-js keeps the user's), one that does not gets
 * anchor_round_robin added with its method configs kept and their timeout
 * strings converted to grpc-js durations.
 */
import * as grpc from "@grpc/grpc-js"
import { describe, expect, it } from "@effect/vitest"
import { serviceConfigFor } from "../../src/adapters/grpc/internal/serviceConfig.js"

const ANCHOR = [{ anchor_round_robin: {} }]

const reported = (config: unknown) => {
  const options: grpc.ChannelOptions = config === undefined ? {} : { "grpc.service_config": JSON.stringify(config) }
  const result = serviceConfigFor(options)
  if (result === null) return null
  if (!result.ok) throw new Error(`unexpected error status: ${result.error.details}`)
  return result.value
}

describe("serviceConfigFor", () => {
  it.each([
    { name: "a loadBalancingConfig", config: { loadBalancingConfig: [{ round_robin: {} }] } },
    { name: "a loadBalancingPolicy", config: { loadBalancingPolicy: "round_robin" } },
    {
      name: "a policy and method configs",
      config: { loadBalancingConfig: [{ pick_first: {} }], methodConfig: [{ name: [{ service: "a.B" }], timeout: "1s" }] }
    }
  ])("lets the user's config win when it names $name", ({ config }) => {
    expect(reported(config)).toBeNull()
  })

  it("selects anchor_round_robin alone when the user gave no config", () => {
    expect(reported(undefined)).toEqual({ loadBalancingConfig: ANCHOR, methodConfig: [] })
  })

  it.each([
    { name: "an empty config", config: {}, expected: { loadBalancingConfig: ANCHOR, methodConfig: [] } },
    { name: "an empty loadBalancingConfig", config: { loadBalancingConfig: [] }, expected: { loadBalancingConfig: ANCHOR, methodConfig: [] } },
    {
      name: "method configs with timeouts",
      config: {
        methodConfig: [
          { name: [{ service: "grpc_anchor.demo.Echo" }], timeout: "1.5s", waitForReady: true },
          { name: [{ service: "a.B", method: "C" }], timeout: "20s" },
          { name: [{ service: "a.D" }], retryPolicy: { maxAttempts: 3, initialBackoff: "0.1s", maxBackoff: "1s", backoffMultiplier: 2, retryableStatusCodes: ["UNAVAILABLE"] } }
        ]
      },
      expected: {
        loadBalancingConfig: ANCHOR,
        methodConfig: [
          { name: [{ service: "grpc_anchor.demo.Echo" }], timeout: { seconds: 1, nanos: 500_000_000 }, waitForReady: true },
          { name: [{ service: "a.B", method: "C" }], timeout: { seconds: 20, nanos: 0 } },
          { name: [{ service: "a.D" }], retryPolicy: { maxAttempts: 3, initialBackoff: "0.1s", maxBackoff: "1s", backoffMultiplier: 2, retryableStatusCodes: ["UNAVAILABLE"] } }
        ]
      }
    },
    {
      name: "other top-level fields",
      config: { retryThrottling: { maxTokens: 10, tokenRatio: 0.1 }, healthCheckConfig: { serviceName: "x" } },
      expected: {
        loadBalancingConfig: ANCHOR,
        methodConfig: [],
        retryThrottling: { maxTokens: 10, tokenRatio: 0.1 },
        healthCheckConfig: { serviceName: "x" }
      }
    }
  ])("adds anchor_round_robin to $name, keeping the rest", ({ config, expected }) => {
    expect(reported(config)).toEqual(expected)
  })
})
