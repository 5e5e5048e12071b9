/**
 * `grpc-anchor resolve TARGET [--json] [--client-id ID]`: what a target
 * means, without any network. For `pass:///` the canonical target, the
 * connection slots and one period of the smooth weighted schedule; for
 * `etcd://` the service, the connections per endpoint and the etcd endpoints
 * of the authority. Both show the count ranges (`#2..8`: adaptive counts,
 * the slots are the starting ones) and the options (`?pick=`, `?subset=K`);
 * with `?subset=K` and `--client-id`, a `pass:///` target's slots and
 * schedule are those of that client's subset. A malformed target prints the
 * core's error with a caret under the offending piece and exits 2.
 *
 * @example
 * ```sh
 * grpc-anchor resolve 'pass:///10.0.0.1:9080#2,10.0.0.2:9090'
 * grpc-anchor resolve 'etcd://127.0.0.1:2379/my-service#2..8?pick=least_request' --json
 * grpc-anchor resolve 'pass:///a:1,b:1,c:1,d:1?subset=2' --client-id 3
 * ```
 */
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { Argument, CliError, Command, Flag } from "effect/cli"
import * as Option from "effect/Option"
import { Address, EtcdRecord, Expansion, Rotation, Subset, Target } from "grpc-anchor/core"
import { CommandError, EXIT_USAGE, line, parseTarget, percent, plural } from "./internal/common.js"

/** Rows of slots and picks of the schedule printed as text (JSON caps the schedule at {@link JSON_PERIOD_CAP}). */
const TEXT_CAP = 1_000
const JSON_PERIOD_CAP = 100_000

/** The facts `resolve` prints about a `pass:///` target. */
export interface PassResolution {
  readonly ok: true
  readonly input: string
  readonly target: string
  readonly kind: "pass"
  /** `maxCount` only for an adaptive count (`#2..8`); `count` and `share` are the starting ones. */
  readonly addresses: ReadonlyArray<{ readonly address: string; readonly count: number; readonly maxCount?: number; readonly share: number }>
  readonly connections: number
  /** The most connections the adaptive counts may grow to; only when the target has a range. */
  readonly maxConnections?: number
  /** The target's options; only when it has some. */
  readonly options?: Target.Options
  /**
   * With `?subset=K` and `--client-id`: the client id and the addresses of
   * its subset (the addresses, slots and schedule above are then that subset's).
   */
  readonly subset?: { readonly clientId: string; readonly of: number; readonly addresses: ReadonlyArray<string> }
  readonly slots: ReadonlyArray<{ readonly slot: number; readonly address: string; readonly index: number }>
  /** One period of the schedule, as slot numbers; every client walks it from its own random start. */
  readonly period: { readonly length: number; readonly order: ReadonlyArray<number>; readonly truncated: boolean }
}

/** The facts `resolve` prints about an `etcd://` target. */
export interface EtcdResolution {
  readonly ok: true
  readonly input: string
  readonly target: string
  readonly kind: "etcd"
  readonly service: string
  /** The etcd key prefix the records live under. */
  readonly prefix: string
  /** Connections to every discovered endpoint (the starting count of a range), unless its record sets its own. */
  readonly count: number
  /** The most an adaptive count (`#2..8`) may grow to; only when the target has a range. */
  readonly maxCount?: number
  /** The target's options; only when it has some. */
  readonly options?: Target.Options
  /** From the authority; empty when the channel's configured etcd applies. */
  readonly etcd: ReadonlyArray<string>
}

/** What `resolve --json` prints for a target that does not parse. */
export interface ResolutionFailure {
  readonly ok: false
  readonly error: {
    readonly problem: Target.TargetProblem
    readonly position: number
    readonly piece: string
    readonly message: string
    readonly input: string
  }
}

const hasOptions = (options: Target.Options): boolean => options.subset !== undefined || options.pick !== undefined

/** Resolves a parsed target: pure, no network. */
const describeTarget = (input: string, target: Target.Target, clientId: Subset.ClientId | undefined): PassResolution | EtcdResolution => {
  const canonical = Target.format(target)
  const options = hasOptions(target.options) ? { options: target.options } : {}
  if (target._tag === "Etcd") {
    return {
      ok: true,
      input,
      target: canonical,
      kind: "etcd",
      service: target.service,
      prefix: EtcdRecord.prefix(target.service),
      count: target.count,
      ...(target.maxCount > target.count ? { maxCount: target.maxCount } : {}),
      etcd: target.etcd.map(Address.format),
      ...options
    }
  }
  const all = Expansion.fromTarget(target)
  const size = target.options.subset
  const chosen = size !== undefined && clientId !== undefined ? new Set(Subset.select(all.map((w) => w.address), size, clientId)) : undefined
  const weighted = chosen === undefined ? all : all.filter((w) => chosen.has(w.address))
  const slots = Expansion.expand(weighted)
  const total = slots.length
  const maxTotal = weighted.reduce((n, w) => n + (w.maxCount ?? w.count), 0)
  const slotNumber = new Map(slots.map((slot, i) => [Expansion.key(slot), i]))
  const order = Rotation.slotOrder(weighted)
  const shown = order.length > JSON_PERIOD_CAP ? order.slice(0, JSON_PERIOD_CAP) : order
  return {
    ok: true,
    input,
    target: canonical,
    kind: "pass",
    addresses: weighted.map((w) => ({
      address: w.address,
      count: w.count,
      ...(w.maxCount !== undefined ? { maxCount: w.maxCount } : {}),
      share: w.count / total
    })),
    connections: total,
    ...(maxTotal > total ? { maxConnections: maxTotal } : {}),
    ...options,
    ...(chosen === undefined ? {} : { subset: { clientId: String(clientId), of: all.length, addresses: weighted.map((w) => w.address) } }),
    slots: slots.map((slot, i) => ({ slot: i, address: slot.address, index: slot.index })),
    period: { length: order.length, order: shown.map((slot) => slotNumber.get(Expansion.key(slot))!), truncated: shown.length < order.length }
  }
}

const PICK_TEXT: Record<Target.PickMode, string> = {
  round_robin: "round_robin: the smooth weighted round robin over ready connections (the default)",
  least_request: "least_request: of two ready connections drawn at random, the one with fewer calls in flight",
  ewma: "ewma: of two ready connections drawn at random, the one with the lower peak-EWMA latency x (calls in flight + 1)"
}

/** The lines about a target's options, for both kinds. */
const optionLines = (options: Target.Options | undefined, subset: PassResolution["subset"], addresses: number | undefined): Array<string> => {
  const out: Array<string> = []
  if (options?.pick !== undefined) out.push(`pick      ${PICK_TEXT[options.pick]}`)
  if (options?.subset !== undefined) {
    const among = addresses === undefined ? "the endpoints" : `the ${plural(addresses, "address", "addresses")}`
    out.push(
      subset === undefined
        ? `subset    each client connects to ${options.subset} of ${among}, chosen by its client id (channel option grpc_anchor.client_id, ` +
            `default hostname/pid)${addresses === undefined ? "" : "; --client-id ID shows one client's subset"}`
        : `subset    client ${subset.clientId} connects to ${plural(subset.addresses.length, "address", "addresses")} of the ${subset.of}: ${subset.addresses.join(", ")}`
    )
  }
  return out
}

/** The text form of a resolution. */
const renderText = (resolution: PassResolution | EtcdResolution): ReadonlyArray<string> => {
  const out: Array<string> = []
  const note = resolution.target === resolution.input ? "(canonical)" : `(canonical form of ${JSON.stringify(resolution.input)})`
  out.push(`target    ${resolution.target}  ${note}`)
  if (resolution.kind === "etcd") {
    const range = { count: resolution.count, maxCount: resolution.maxCount ?? resolution.count }
    out.push(`kind      etcd: backends discovered under the key prefix ${JSON.stringify(resolution.prefix)}`)
    out.push(`service   ${resolution.service}`)
    out.push(
      resolution.maxCount === undefined
        ? `count     ${plural(resolution.count, "connection")} to every endpoint registered in etcd, unless its record sets its own`
        : `count     ${Target.formatCount(range)} connections to every endpoint registered in etcd, unless its record sets its own ` +
            `(start with ${resolution.count}, grow to at most ${resolution.maxCount} while they are saturated)`
    )
    out.push(
      resolution.etcd.length > 0
        ? `etcd      ${resolution.etcd.join(", ")}`
        : `etcd      (none in the target: the channel's Etcd layer, register({ etcd }) or ETCD_ENDPOINTS is used)`
    )
    out.push(...optionLines(resolution.options, undefined, undefined))
    out.push("")
    const watched = `etcd://${resolution.etcd.join(",")}/${resolution.service}`
    const subset = resolution.options?.subset
    out.push(
      (subset === undefined
        ? `With K endpoints registered the pool has K x ${Target.formatCount(range)} connections and each endpoint gets 1/K of the calls `
        : `With K endpoints registered the pool has min(K, ${subset}) x ${Target.formatCount(range)} connections, spread evenly over its subset `) +
        `(a record's own count, Metadata ${JSON.stringify(EtcdRecord.CONNECTIONS_KEY)}, changes its share); ` +
        `run \`grpc-anchor watch ${watched}\` to see them.`
    )
    return out
  }
  const kind = `kind      pass: ${plural(resolution.addresses.length, "address", "addresses")}, ${plural(resolution.connections, "connection")}`
  out.push(resolution.maxConnections === undefined ? kind : `${kind} to start with, at most ${resolution.maxConnections} (adaptive counts grow while saturated)`)
  out.push(...optionLines(resolution.options, resolution.subset, resolution.subset?.of ?? resolution.addresses.length))
  out.push("")
  const counts = resolution.addresses.map((a) => Target.formatCount({ count: a.count, maxCount: a.maxCount ?? a.count }))
  const width = Math.max(7, ...resolution.addresses.map((a) => a.address.length))
  const countWidth = Math.max(5, ...counts.map((c) => c.length))
  out.push(`address${" ".repeat(width - 7)}  ${"conns".padStart(countWidth)}  share`)
  resolution.addresses.forEach((a, i) => {
    out.push(`${a.address.padEnd(width)}  ${counts[i]!.padStart(countWidth)}  ${percent(a.share).padStart(6)}`)
  })
  out.push("")
  const slotWidth = Math.max(4, String(resolution.connections - 1).length)
  out.push(`${"slot".padStart(slotWidth)}  connection`)
  for (const slot of resolution.slots.slice(0, TEXT_CAP)) {
    out.push(`${String(slot.slot).padStart(slotWidth)}  ${slot.address}#${slot.index}`)
  }
  if (resolution.slots.length > TEXT_CAP) out.push(`${"".padStart(slotWidth)}  ... ${resolution.slots.length - TEXT_CAP} more`)
  out.push("")
  out.push(`schedule  one period of ${resolution.period.length} picks, as slot numbers (each channel starts at a random point and repeats it):`)
  const picks = resolution.period.order.slice(0, TEXT_CAP).map(String)
  const pickWidth = String(resolution.connections - 1).length
  const perLine = Math.max(1, Math.floor(76 / (pickWidth + 1)))
  for (let i = 0; i < picks.length; i += perLine) {
    out.push(`  ${picks.slice(i, i + perLine).map((p) => p.padStart(pickWidth)).join(" ")}`)
  }
  if (resolution.period.length > picks.length) out.push(`  ... ${resolution.period.length - picks.length} more`)
  return out
}

const target = Argument.String("TARGET").pipe(
  Argument.withDescription("A grpc-anchor target: pass:///host:port[#n],... or etcd://[host:port,...]/service[#n] (quote it in the shell).")
)
const json = Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("Print the result (or the error) as JSON."))
const clientId = Flag.String("client-id").pipe(
  Flag.withMetavar("ID"),
  Flag.mapEffect((text) =>
    text.length === 0
      ? Effect.fail(new CliError.ValidationError({ message: "--client-id must not be empty" }))
      : Effect.succeed<Subset.ClientId>(text)
  ),
  Flag.optional,
  Flag.withDescription(
    "With a pass target's ?subset=K: the client id (an index such as 3, or a name) whose subset to show, as the channel option grpc_anchor.client_id gives it."
  )
)

/** The `resolve` subcommand. */
export const command = Command.make("resolve", { target, json, clientId: clientId }, ({ clientId, json, target }) =>
  Effect.gen(function* () {
    const id = Option.getOrUndefined(clientId)
    if (json) {
      const parsed = Target.parse(target)
      if (Result.isFailure(parsed)) {
        const { input, message, piece, position, problem } = parsed.failure
        const failure: ResolutionFailure = { ok: false, error: { problem, position, piece, message, input } }
        yield* line(JSON.stringify(failure))
        return yield* new CommandError({ message: "", exitCode: EXIT_USAGE })
      }
      return yield* line(JSON.stringify(describeTarget(target, parsed.success, id)))
    }
    const parsed = yield* parseTarget(target)
    yield* line(renderText(describeTarget(target, parsed, id)).join("\n"))
  })
).pipe(
  Command.withDescription(
    "Show what a target means: canonical form, connection slots, one period of the schedule, count ranges and options (no network)."
  )
)
