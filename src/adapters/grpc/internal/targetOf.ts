/**
 * The target grpc-js hands a resolver, parsed by the core. A malformed target
 * throws the core's `TargetError`, so the channel constructor fails at once
 * with its message.
 */
import { experimental } from "@grpc/grpc-js"
import * as Either from "effect/Either"
import * as Target from "../../../core/Target.js"

export const targetOf = <Tag extends Target.Target["_tag"]>(
  uri: experimental.GrpcUri,
  tag: Tag
): Extract<Target.Target, { readonly _tag: Tag }> => {
  const text = experimental.uriToString(uri)
  const parsed = Target.parse(text)
  if (Either.isLeft(parsed)) throw parsed.left
  // Unreachable: grpc-js hands a resolver only URIs of its own scheme.
  if (parsed.right._tag !== tag) throw new Error(`the ${tag} resolver received another scheme's target: ${text}`)
  return parsed.right as Extract<Target.Target, { readonly _tag: Tag }>
}
