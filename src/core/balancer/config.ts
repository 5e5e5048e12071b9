/**
 * The policy's settings, one entry each (`SETTINGS`: Schema and range,
 * channel option, default), the Schemas of the policy config and of the
 * channel options, and their one precedence (`decodeSettings`: policy
 * config, then channel option, then default).
 *
 * @since 0.2.0
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Target from "../Target.js"
import {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_STREAMS_PER_CONNECTION,
  DEFAULT_REMOVAL_GRACE_MS,
  DEFAULT_SHRINK_IDLE_MS,
  DEFAULT_START_WAIT_MS,
  MAX_CONNECTIONS_OPTION,
  MAX_STREAMS_PER_CONNECTION_OPTION,
  type Options,
  REMOVAL_GRACE_MS_OPTION,
  SHRINK_IDLE_MS_OPTION,
  START_WAIT_MS_OPTION,
  DEFAULT_HUNG_AFTER_MS,
  DEFAULT_EWMA_DECAY_MS,
  HUNG_AFTER_MS_OPTION,
  EWMA_DECAY_MS_OPTION
} from "./options.js"

const whole = (minimum: number, maximum: number) => ({
  schema: Schema.Int.check(Schema.isBetween({ minimum, maximum })),
  expected: `a whole number from ${minimum} to ${maximum}`
})

/**
 * The policy's settings, one entry each: the Schema of its value (with its
 * range), what a person should write (for error messages), the channel
 * option that also sets it (`undefined`: only the policy config does) and
 * its default. {@link PolicyConfigJson} and {@link decodeSettings} are built
 * from it, so a new setting is one entry here. Precedence, for every
 * setting: the policy config's field, then the channel option, then the
 * default.
 *
 * @example
 * ```ts
 * import { Balancer } from "grpc-anchor/core"
 * Balancer.SETTINGS.maxConnections.option // "grpc_anchor.max_connections"
 * Balancer.SETTINGS.maxConnections.default // 4096
 * ```
 *
 * @category settings
 * @since 0.3.0
 */
export const SETTINGS = {
  /** Connections per address the resolver gave no count for. */
  connectionsPerAddress: { ...whole(1, 256), option: undefined, default: 1 },
  /** Their adaptive maximum (`undefined`: the count is fixed); at least `connectionsPerAddress`. */
  maxConnectionsPerAddress: { ...whole(1, 256), option: undefined, default: undefined },
  /** The pick mode when the target names none. */
  pickMode: {
    schema: Schema.Literals(Target.PICK_MODES),
    expected: `one of ${Target.PICK_MODES.map((mode) => `"${mode}"`).join(", ")}`,
    option: undefined,
    default: "round_robin"
  },
  maxStreamsPerConnection: { ...whole(1, 1_000_000), option: MAX_STREAMS_PER_CONNECTION_OPTION, default: DEFAULT_MAX_STREAMS_PER_CONNECTION },
  shrinkIdleMs: { ...whole(1, 86_400_000), option: SHRINK_IDLE_MS_OPTION, default: DEFAULT_SHRINK_IDLE_MS },
  startWaitMs: { ...whole(0, 60_000), option: START_WAIT_MS_OPTION, default: DEFAULT_START_WAIT_MS },
  maxConnections: { ...whole(1, 1_000_000), option: MAX_CONNECTIONS_OPTION, default: DEFAULT_MAX_CONNECTIONS },
  removalGraceMs: { ...whole(0, 3_600_000), option: REMOVAL_GRACE_MS_OPTION, default: DEFAULT_REMOVAL_GRACE_MS },
  /** The hung rule's threshold floor and probe period (0 turns the rule off). */
  hungAfterMs: { ...whole(0, 3_600_000), option: HUNG_AFTER_MS_OPTION, default: DEFAULT_HUNG_AFTER_MS },
  /** The `ewma` pick mode's decay time constant. */
  ewmaDecayMs: { ...whole(1, 3_600_000), option: EWMA_DECAY_MS_OPTION, default: DEFAULT_EWMA_DECAY_MS }
} as const

type Table = typeof SETTINGS
type Name = keyof Table

const NAMES = Object.keys(SETTINGS) as ReadonlyArray<Name>

const optionalFields = <T extends Record<string, { readonly schema: Schema.Top }>>(
  table: T
): { readonly [K in keyof T]: Schema.optionalKey<T[K]["schema"]> } =>
  Object.fromEntries(Object.entries(table).map(([name, entry]) => [name, Schema.optionalKey(entry.schema)])) as never

/**
 * The JSON form of the `anchor_round_robin` policy config, every field
 * optional (one per {@link SETTINGS} entry): `{ "connectionsPerAddress": 2,
 * "maxConnectionsPerAddress": 8, "pickMode": "least_request",
 * "maxStreamsPerConnection": 100, "shrinkIdleMs": 30000, "startWaitMs": 250,
 * "maxConnections": 4096, "removalGraceMs": 30000, "hungAfterMs": 1000,
 * "ewmaDecayMs": 10000 }` (`pickMode` may also be `"ewma"`).
 * `maxConnectionsPerAddress` (>= `connectionsPerAddress`) makes the count
 * of addresses the resolver gave no count for adaptive.
 *
 * @category schemas
 * @since 0.2.0
 */
export const PolicyConfigJson = Schema.Struct(optionalFields(SETTINGS))

/**
 * A decoded policy config.
 *
 * @category models
 * @since 0.2.0
 */
export type PolicyConfig = typeof PolicyConfigJson.Type

/**
 * A policy config that does not decode: `reason` says which field and what
 * was expected.
 *
 * @category errors
 * @since 0.2.0
 */
export class PolicyConfigError extends Data.TaggedError("PolicyConfigError")<{
  readonly input: unknown
  readonly reason: string
}> {
  override get message(): string {
    return `anchor_round_robin config ${safeJson(this.input)} is not valid: ${this.reason}`
  }
}

export const safeJson = (u: unknown): string => {
  try {
    return JSON.stringify(u) ?? String(u)
  } catch {
    return String(u)
  }
}

export const decodeConfigJson = Schema.decodeUnknownResult(PolicyConfigJson)

/**
 * Decodes an `anchor_round_robin` config (`undefined`/`null` is `{}`).
 *
 * @example
 * ```ts
 * import { Balancer } from "grpc-anchor/core"
 * Balancer.decodeConfig({ connectionsPerAddress: 2 }) // Success({ connectionsPerAddress: 2 })
 * Balancer.decodeConfig({ connectionsPerAddress: 0 }) // Failure(PolicyConfigError)
 * ```
 *
 * @category decoding
 * @since 0.2.0
 */
export const decodeConfig = (input: unknown): Result.Result<PolicyConfig, PolicyConfigError> => {
  const decoded = decodeConfigJson(input === undefined || input === null ? {} : input)
  if (Result.isFailure(decoded)) return Result.fail(new PolicyConfigError({ input, reason: decoded.failure.message }))
  const config = decoded.success
  if (config.maxConnectionsPerAddress !== undefined && config.maxConnectionsPerAddress < (config.connectionsPerAddress ?? 1)) {
    return Result.fail(
      new PolicyConfigError({
        input,
        reason: `maxConnectionsPerAddress (${config.maxConnectionsPerAddress}) is below connectionsPerAddress (${config.connectionsPerAddress ?? 1}); expected a range min..max with min <= max`
      })
    )
  }
  return Result.succeed(config)
}

/**
 * {@link decodeConfig}, throwing its error.
 *
 * @category decoding
 * @since 0.3.0
 */
export const decodeConfigUnsafe = (input: unknown): PolicyConfig =>
  Result.getOrThrowWith(decodeConfig(input), (error) => error)

/**
 * Every setting at its default (the {@link SETTINGS} entries' `default`).
 *
 * @example
 * ```ts
 * import { Balancer } from "grpc-anchor/core"
 * Balancer.defaultSettings.maxConnections // 4096
 * Balancer.defaultSettings.maxConnectionsPerAddress // undefined: fixed counts
 * ```
 *
 * @category settings
 * @since 0.3.0
 */
export const defaultSettings: Settings = Object.fromEntries(NAMES.map((name) => [name, SETTINGS[name].default])) as Settings

const channelFields = Object.fromEntries(
  NAMES.flatMap((name) => {
    const option: string | undefined = SETTINGS[name].option
    return option === undefined ? [] : [[option, Schema.optionalKey(SETTINGS[name].schema)]]
  })
) as Record<string, Schema.optionalKey<Schema.Codec<unknown>>>

/**
 * What {@link decodeSettings} decodes, in one Schema: the policy config
 * (`config`, {@link PolicyConfigJson}) and the channel options that set a
 * setting (`channel`, keyed by {@link SETTINGS}' `option` names; other
 * channel options are not read), each with its setting's range.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Balancer } from "grpc-anchor/core"
 * Schema.decodeUnknownSync(Balancer.SettingsInput)({ config: { startWaitMs: 5 }, channel: { "grpc_anchor.max_connections": 64 } })
 * ```
 *
 * @category schemas
 * @since 0.3.0
 */
export const SettingsInput = Schema.Struct({ config: PolicyConfigJson, channel: Schema.Struct(channelFields) })

const decodeSettingsInput = Schema.decodeUnknownResult(SettingsInput)

/**
 * Every setting in force for one channel, after the precedence (policy
 * config, then channel option, then default).
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import { Balancer } from "grpc-anchor/core"
 * const settings: Balancer.Settings = Result.getOrThrow(Balancer.decodeSettings({ startWaitMs: 0 }))
 * settings.startWaitMs // 0
 * ```
 *
 * @category settings
 * @since 0.3.0
 */
export type Settings = {
  readonly [K in Name]-?: K extends "maxConnectionsPerAddress" ? number | undefined : Exclude<PolicyConfig[K], undefined>
}

/**
 * A setting given a value it does not take: which setting, where it was
 * given (the policy config's field or a channel option), the value and what
 * was expected.
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import { Balancer } from "grpc-anchor/core"
 * const result = Balancer.decodeSettings({ removalGraceMs: -1 })
 * if (Result.isFailure(result) && result.failure._tag === "SettingError") result.failure.setting // "removalGraceMs"
 * ```
 *
 * @category errors
 * @since 0.3.0
 */
export class SettingError extends Data.TaggedError("SettingError")<{
  readonly setting: Name
  readonly source: "policy config" | "channel option"
  /** The field or option name as written. */
  readonly key: string
  readonly value: unknown
  readonly expected: string
}> {
  override get message(): string {
    if (this.source === "channel option") {
      return `channel option ${this.key} must be ${this.expected}, got ${safeJson(this.value)} (the policy config's ${this.setting}, when set, wins over it)`
    }
    return `policy config field ${this.key} must be ${this.expected}, got ${safeJson(this.value)}`
  }
}

/** The first setting whose value does not decode, config fields first. */
const badSetting = (config: Readonly<Record<string, unknown>>, channel: Readonly<Record<string, unknown>>): SettingError | undefined => {
  const bad = (setting: Name, source: SettingError["source"], key: string, value: unknown) =>
    value !== undefined && Result.isFailure(Schema.decodeUnknownResult(SETTINGS[setting].schema as Schema.Codec<unknown>)(value))
      ? new SettingError({ setting, source, key, value, expected: SETTINGS[setting].expected })
      : undefined
  for (const name of NAMES) {
    const error = bad(name, "policy config", name, config[name])
    if (error !== undefined) return error
  }
  for (const name of NAMES) {
    const option: string | undefined = SETTINGS[name].option
    const error = option === undefined ? undefined : bad(name, "channel option", option, channel[option])
    if (error !== undefined) return error
  }
  return undefined
}

/**
 * The settings in force for a channel: each {@link SETTINGS} entry from the
 * policy config (`config`: its JSON form or a decoded {@link PolicyConfig};
 * `undefined`/`null` is `{}`), else from its channel option in
 * `channelOptions` (a grpc-js `ChannelOptions`; other keys are ignored),
 * else its default. A value out of its range fails with a
 * {@link SettingError} naming the setting and where it was given; a config
 * that is not an object fails with a {@link PolicyConfigError}.
 *
 * @example
 * ```ts
 * import { Balancer } from "grpc-anchor/core"
 * Balancer.decodeSettings({ maxConnections: 64 }, { "grpc_anchor.max_connections": 8, "grpc_anchor.start_wait_ms": 100 })
 * // Success({ maxConnections: 64 (the config wins), startWaitMs: 100 (the option), removalGraceMs: 30000 (the default), ... })
 * Balancer.decodeSettings({}, { "grpc_anchor.max_connections": 0 })
 * // Failure(SettingError: channel option grpc_anchor.max_connections must be a whole number from 1 to 1000000, got 0 ...)
 * ```
 *
 * @category decoding
 * @since 0.3.0
 */
export const decodeSettings = (
  config: unknown,
  channelOptions: Readonly<Record<string, unknown>> = {}
): Result.Result<Settings, SettingError | PolicyConfigError> => {
  const given = config === undefined || config === null ? {} : config
  const channel: Record<string, unknown> = {}
  for (const name of NAMES) {
    const option: string | undefined = SETTINGS[name].option
    if (option !== undefined && channelOptions[option] !== undefined) channel[option] = channelOptions[option]
  }
  const decoded = decodeSettingsInput({ config: given, channel })
  if (Result.isFailure(decoded)) {
    // A config that is not an object has no field to blame: it is a PolicyConfigError.
    const located = badSetting(given as Readonly<Record<string, unknown>>, channel)
    return Result.fail(located ?? new PolicyConfigError({ input: config, reason: decoded.failure.message }))
  }
  const fields: Record<string, unknown> = decoded.success.config
  const settings: Record<string, unknown> = {}
  for (const name of NAMES) {
    const option: string | undefined = SETTINGS[name].option
    settings[name] = fields[name] ?? (option === undefined ? undefined : decoded.success.channel[option]) ?? SETTINGS[name].default
  }
  const result = settings as Settings
  if (result.maxConnectionsPerAddress !== undefined && result.maxConnectionsPerAddress < result.connectionsPerAddress) {
    return Result.fail(
      new SettingError({
        setting: "maxConnectionsPerAddress",
        source: "policy config",
        key: "maxConnectionsPerAddress",
        value: result.maxConnectionsPerAddress,
        expected: `at least connectionsPerAddress (${result.connectionsPerAddress}): a range min..max has min <= max`
      })
    )
  }
  return Result.succeed(result)
}

/**
 * The {@link Options} that {@link Settings} set, for `Balancer.make`.
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import { Balancer } from "grpc-anchor/core"
 * const settings = Result.getOrThrow(Balancer.decodeSettings({ pickMode: "least_request" }))
 * const balancer = Balancer.make(Balancer.optionsOf(settings)) // picks least_request
 * ```
 *
 * @category settings
 * @since 0.3.0
 */
export const optionsOf = (settings: Settings): Partial<Options> => ({
  startWaitMs: settings.startWaitMs,
  maxConnections: settings.maxConnections,
  removalGraceMs: settings.removalGraceMs,
  maxStreamsPerConnection: settings.maxStreamsPerConnection,
  shrinkIdleMs: settings.shrinkIdleMs,
  pickMode: settings.pickMode,
  hungAfterMs: settings.hungAfterMs,
  ewmaDecayMs: settings.ewmaDecayMs
})
