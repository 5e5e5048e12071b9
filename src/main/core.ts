/**
 * The pure core of grpc-anchor, usable on its own: the target grammar
 * (`Target`, `Address`), the expansion of addresses into connection slots
 * (`Expansion`), the smooth weighted rotation over them (`Rotation`, called
 * `Schedule` before 0.2.0), the pool state machine (`Balancer`), the codec of etcd's
 * endpoint records (`EtcdRecord`), the endpoint set they make
 * (`EndpointSet`) and deterministic subsetting for large fleets (`Subset`).
 * Nothing here does I/O or runs Effects; fallible functions
 * return a `Result` and have a twin suffixed `Unsafe` (Effect 4's naming) that throws the same error.
 *
 * @example
 * ```ts
 * import { Expansion, Rotation, Target } from "grpc-anchor/core"
 * const target = Target.parseUnsafe("pass:///10.0.0.1:9080#2,10.0.0.2:9090")
 * const slots = Rotation.slotOrder(Expansion.fromTarget(target as Target.PassTarget))
 * // slots[0]: { address: "10.0.0.1:9080", index: 0 }: the ring `Balancer` picks from
 * ```
 *
 * @since 0.1.0
 */
export * as Address from "../core/Address.js"
export * as Target from "../core/Target.js"
export * as Expansion from "../core/Expansion.js"
export * as Rotation from "../core/Rotation.js"
export * as EtcdRecord from "../core/EtcdRecord.js"
export * as EndpointSet from "../core/EndpointSet.js"
export * as Subset from "../core/Subset.js"
export * as Balancer from "../core/Balancer.js"
export * as EtcdMembers from "../core/EtcdMembers.js"
