/**
 * The target grpc-js hands a resolver, parsed by the core. A malformed target
 * throws the core's `TargetError`, so the channel constructor fails at once
 * with its message.
 */
import { experimental } from "@grpc/grpc-js"
import * as Result from "effect/Result"
import * as Target from "../../../core/Target.js"

export const targetOf = <Tag extends Target.Target["_tag"]>(
  uri: experimental.GrpcUri,
  tag: Tag
): Extract<Target.Target, { readonly _tag: Tag }> => {
  const text = experimental.uriToString(uri)
  const parsed = Target.parse(text)
  if (Result.isFailure(parsed)) throw parsed.failure
  // Unreachable: grpc-js hands a resolver only URIs of its own scheme.
  if (parsed.success._tag !== tag) throw new Error(`the ${tag} resolver received another scheme's target: ${text}`)
  return parsed.success as Extract<Target.Target, { readonly _tag: Tag }>
}
