/**
 * The pure core of grpc-anchor, usable on its own: the target grammar, the
 * expansion of addresses into connection slots, the smooth weighted
 * rotation, the picker, the codec of etcd's endpoint records and the
 * endpoint set they make. Nothing
 * here does I/O.
 *
 * @example
 * ```ts
 * import { Target } from "grpc-anchor/core"
 * Target.unsafeParse("pass:///10.0.0.1:9080#2,10.0.0.2:9090")
 * ```
 *
 * @since 0.1.0
 */
export * as Address from "../core/Address.js"
export * as Target from "../core/Target.js"
export * as Expansion from "../core/Expansion.js"
export * as Rotation from "../core/Rotation.js"
export * as Picker from "../core/Picker.js"
export * as EtcdRecord from "../core/EtcdRecord.js"
export * as EndpointSet from "../core/EndpointSet.js"
