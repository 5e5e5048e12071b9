/**
 * The `anchor_round_robin` policy config class that grpc-js parses service
 * configs with; public as `AnchorRoundRobin.AnchorRoundRobinConfig` (its
 * documentation is there). Here so that the load balancer can recognise its
 * config without importing the public module that registers it.
 */
import type { experimental } from "@grpc/grpc-js"
import * as Balancer from "../../../core/Balancer.js"
import { POLICY_NAME } from "./keys.js"

/** See `AnchorRoundRobin.AnchorRoundRobinConfig`. */
export class AnchorRoundRobinConfig implements experimental.TypedLoadBalancingConfig {
  constructor(
    readonly connectionsPerAddress: number = 1,
    readonly tuning: Omit<Balancer.PolicyConfig, "connectionsPerAddress"> = {}
  ) {}

  /**
   * The config as the core reads it (`Balancer.decodeSettings`). A field
   * given as `undefined` (a config built in code from optional values) is
   * unset, as in 0.2: its channel option or default applies.
   */
  get config(): Balancer.PolicyConfig {
    const given = Object.entries(this.tuning).filter(([, value]) => value !== undefined)
    return { connectionsPerAddress: this.connectionsPerAddress, ...Object.fromEntries(given) }
  }

  getLoadBalancerName(): string {
    return POLICY_NAME
  }

  toJsonObject(): object {
    return { [POLICY_NAME]: this.config }
  }

  /** @throws Error with the decoding problem (grpc-js reports it as a bad service config). */
  static createFromJson(obj: unknown): AnchorRoundRobinConfig {
    const { connectionsPerAddress, ...tuning } = Balancer.decodeConfigUnsafe(obj)
    return new AnchorRoundRobinConfig(connectionsPerAddress ?? Balancer.SETTINGS.connectionsPerAddress.default, tuning)
  }
}
