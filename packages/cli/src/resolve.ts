/**
 * `grpc-anchor resolve TARGET [--json]`: what a target means, without any
 * network. For `pass:///` the canonical target, the connection slots and one
 * period of the smooth weighted schedule; for `etcd://` the service, the
 * connections per endpoint and the etcd endpoints of the authority. A
 * malformed target prints the core's error with a caret under the offending
 * piece and exits 2.
 *
 * @example
 * ```sh
 * grpc-anchor resolve 'pass:///10.0.0.1:9080#2,10.0.0.2:9090'
 * grpc-anchor resolve 'etcd://127.0.0.1:2379/my-service#2' --json
 * ```
 */
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { Argument, Command, Flag } from "effect/cli"
import { Address, EtcdRecord, Expansion, Rotation, Target } from "grpc-anchor/core"
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
  readonly addresses: ReadonlyArray<{ readonly address: string; readonly count: number; readonly share: number }>
  readonly connections: number
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
  /** Connections to every discovered endpoint. */
  readonly count: number
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

/** Resolves a parsed target: pure, no network. */
const describeTarget = (input: string, target: Target.Target): PassResolution | EtcdResolution => {
  const canonical = Target.format(target)
  if (target._tag === "Etcd") {
    return {
      ok: true,
      input,
      target: canonical,
      kind: "etcd",
      service: target.service,
      prefix: EtcdRecord.prefix(target.service),
      count: target.count,
      etcd: target.etcd.map(Address.format)
    }
  }
  const weighted = Expansion.fromTarget(target)
  const slots = Expansion.expand(weighted)
  const total = slots.length
  const slotNumber = new Map(slots.map((slot, i) => [Expansion.key(slot), i]))
  const order = Rotation.slotOrder(weighted)
  const shown = order.length > JSON_PERIOD_CAP ? order.slice(0, JSON_PERIOD_CAP) : order
  return {
    ok: true,
    input,
    target: canonical,
    kind: "pass",
    addresses: weighted.map((w) => ({ address: w.address, count: w.count, share: w.count / total })),
    connections: total,
    slots: slots.map((slot, i) => ({ slot: i, address: slot.address, index: slot.index })),
    period: { length: order.length, order: shown.map((slot) => slotNumber.get(Expansion.key(slot))!), truncated: shown.length < order.length }
  }
}

/** The text form of a resolution. */
const renderText = (resolution: PassResolution | EtcdResolution): ReadonlyArray<string> => {
  const out: Array<string> = []
  const note = resolution.target === resolution.input ? "(canonical)" : `(canonical form of ${JSON.stringify(resolution.input)})`
  out.push(`target    ${resolution.target}  ${note}`)
  if (resolution.kind === "etcd") {
    out.push(`kind      etcd: backends discovered under the key prefix ${JSON.stringify(resolution.prefix)}`)
    out.push(`service   ${resolution.service}`)
    out.push(`count     ${plural(resolution.count, "connection")} to every endpoint registered in etcd`)
    out.push(
      resolution.etcd.length > 0
        ? `etcd      ${resolution.etcd.join(", ")}`
        : `etcd      (none in the target: the channel's Etcd layer, register({ etcd }) or ETCD_ENDPOINTS is used)`
    )
    out.push("")
    out.push(
      `With K endpoints registered the pool has K x ${resolution.count} connections and each endpoint gets 1/K of the calls; ` +
        `run \`grpc-anchor watch ${resolution.target.replace(/#\d+$/, "")}\` to see them.`
    )
    return out
  }
  out.push(`kind      pass: ${plural(resolution.addresses.length, "address", "addresses")}, ${plural(resolution.connections, "connection")}`)
  out.push("")
  const width = Math.max(7, ...resolution.addresses.map((a) => a.address.length))
  out.push(`address${" ".repeat(width - 7)}  conns  share`)
  for (const a of resolution.addresses) {
    out.push(`${a.address.padEnd(width)}  ${String(a.count).padStart(5)}  ${percent(a.share).padStart(6)}`)
  }
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

/** The `resolve` subcommand. */
export const command = Command.make("resolve", { target, json }, ({ json, target }) =>
  Effect.gen(function* () {
    if (json) {
      const parsed = Target.parse(target)
      if (Result.isFailure(parsed)) {
        const { input, message, piece, position, problem } = parsed.failure
        const failure: ResolutionFailure = { ok: false, error: { problem, position, piece, message, input } }
        yield* line(JSON.stringify(failure))
        return yield* new CommandError({ message: "", exitCode: EXIT_USAGE })
      }
      return yield* line(JSON.stringify(describeTarget(target, parsed.success)))
    }
    const parsed = yield* parseTarget(target)
    yield* line(renderText(describeTarget(target, parsed)).join("\n"))
  })
).pipe(Command.withDescription("Show what a target means: canonical form, connection slots, one period of the schedule (no network)."))
