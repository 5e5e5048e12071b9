/**
 * Checking {@link EtcdOptions} as a Promise or JavaScript caller may get
 * them wrong: the shape, the password type, the durations. Internal to the
 * etcd adapters.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type { EtcdOptions } from "../Etcd.js"
import { EtcdError } from "./error.js"

/** An options error: `InvalidArgument`, for the connect step. */
export const invalid = (detail: string) => new EtcdError({ reason: "InvalidArgument", operation: "connect", cause: undefined, detail })

/**
 * The shape of {@link EtcdOptions} as a Promise or JavaScript caller may get
 * it wrong. The password is checked apart, so that a bad one is never
 * echoed in the message; the durations by {@link durationOption}.
 */
const OptionsShape = Schema.Struct({
  hosts: Schema.Union([Schema.String, Schema.Array(Schema.String)]),
  auth: Schema.optional(Schema.Struct({ username: Schema.String, password: Schema.Unknown })),
  tls: Schema.optional(
    Schema.Struct({
      caFile: Schema.optional(Schema.String),
      certFile: Schema.optional(Schema.String),
      keyFile: Schema.optional(Schema.String)
    })
  )
})

/** Fails with `InvalidArgument` naming what is wrong; a bad password is never echoed. */
export const checkShape = (options: EtcdOptions): Effect.Effect<void, EtcdError> =>
  Effect.suspend(() => {
    const shape = Schema.decodeUnknownResult(OptionsShape)(options)
    if (Result.isFailure(shape)) return Effect.fail(invalid(`invalid etcd options: ${shape.failure.message.replace(/\s*\n\s*/g, " ")}`))
    const password = options.auth?.password
    if (options.auth !== undefined && typeof password !== "string" && !Redacted.isRedacted(password)) {
      return Effect.fail(invalid("invalid etcd options: auth.password must be a string or a Redacted string"))
    }
    return Effect.void
  })

/** A positive, finite duration option, or `fallback` when it is absent. */
export const durationOption = (name: string, input: Duration.Input | undefined, fallback: Duration.Duration) =>
  Effect.suspend(() => {
    if (input === undefined) return Effect.succeed(fallback)
    const decoded = Duration.fromInput(input)
    return Option.isSome(decoded) && Duration.isFinite(decoded.value) && Duration.isPositive(decoded.value)
      ? Effect.succeed(decoded.value)
      : Effect.fail(invalid(`${name} must be a positive duration ("5 seconds", or a number of milliseconds), got ${JSON.stringify(input)}`))
  })
