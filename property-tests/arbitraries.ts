/**
 * Generators for the property tests (fast-check's, and effect's for
 * `it.prop`): addresses written the many ways a user
 * may write them (`raw`), with the canonical host and port the parser should
 * produce, computed independently of the parser (IPv6 through WHATWG URL
 * serialisation, which compresses like RFC 5952).
 */
import * as Arbitrary from "effect/Arbitrary"
import * as Schema from "effect/Schema"
import fc from "fast-check"

export interface GeneratedAddress {
  /** How the address is written in the target text. */
  readonly raw: string
  /** The canonical host (IPv6 without brackets) and port. */
  readonly host: string
  readonly port: number
  /** The canonical text, `Address.format` of the parsed address. */
  readonly canonical: string
}

const port = fc.integer({ min: 1, max: 65535 })

/** Upper-cases the letters of `text` whose bit is set in `mask`. */
const recase = (text: string, mask: number): string =>
  [...text].map((c, i) => ((mask >>> (i % 31)) & 1 ? c.toUpperCase() : c)).join("")

const portText = (value: number, zeros: number) => `${"0".repeat(zeros)}${value}`

const ipv4 = fc
  .record({
    octets: fc.array(fc.nat(255), { minLength: 4, maxLength: 4 }),
    pad: fc.boolean(),
    port,
    zeros: fc.nat(2)
  })
  .map(({ octets, pad, port, zeros }): GeneratedAddress => {
    const host = octets.join(".")
    const raw = `${octets.map((o) => (pad ? String(o).padStart(3, "0") : String(o))).join(".")}:${portText(port, zeros)}`
    return { raw, host, port, canonical: `${host}:${port}` }
  })

const labelChar = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789_-")
const label = fc
  .tuple(
    fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz_"),
    fc.string({ unit: labelChar, maxLength: 8 }),
    fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789")
  )
  .map(([first, middle, last]) => `${first}${middle}${last}`)

const hostname = fc
  .record({ labels: fc.array(label, { minLength: 1, maxLength: 4 }), mask: fc.integer(), port })
  .map(({ labels, mask, port }): GeneratedAddress => {
    const host = labels.join(".")
    return { raw: `${recase(host, mask)}:${port}`, host, port, canonical: `${host}:${port}` }
  })

const localhost = fc
  .record({ form: fc.constantFrom("", "localhost", "LocalHost"), port })
  .map(({ form, port }): GeneratedAddress => ({
    raw: `${form}:${port}`,
    host: "localhost",
    port,
    canonical: `localhost:${port}`
  }))

const group = fc.oneof(fc.constant(0), fc.constant(0), fc.nat(0xffff))
const ipv6 = fc
  .record({
    groups: fc.array(group, { minLength: 8, maxLength: 8 }),
    form: fc.constantFrom("full", "padded", "canonical"),
    mask: fc.integer(),
    port
  })
  .map(({ groups, form, mask, port }): GeneratedAddress => {
    const full = groups.map((g) => g.toString(16)).join(":")
    const host = new URL(`http://[${full}]/`).hostname.slice(1, -1)
    const raw =
      form === "full"
        ? full
        : form === "padded"
          ? groups.map((g) => g.toString(16).padStart(4, "0")).join(":")
          : host
    return { raw: `[${recase(raw, mask)}]:${port}`, host, port, canonical: `[${host}]:${port}` }
  })

/** Any backend address, raw and canonical. */
export const address: fc.Arbitrary<GeneratedAddress> = fc.oneof(ipv4, hostname, localhost, ipv6)

/**
 * A count or count range and a way of writing it: `#1` may be left out,
 * leading zeros allowed, a fixed count sometimes written as the range
 * `#N..N`, and (with `ranges`) a range `#MIN..MAX` with MIN < MAX <= `max`.
 */
export const count = (
  max: number,
  ranges = true
): fc.Arbitrary<{ readonly value: number; readonly maxValue: number; readonly text: string }> =>
  fc
    .record({
      value: fc.integer({ min: 1, max }),
      extra: ranges ? fc.oneof(fc.constant(0), fc.nat(max)) : fc.constant(0),
      zeros: fc.nat(2),
      omit: fc.boolean(),
      asRange: fc.boolean()
    })
    .map(({ asRange, extra, omit, value, zeros }) => {
      const maxValue = Math.min(max, value + extra)
      const pad = (n: number) => `${"0".repeat(zeros)}${n}`
      const text =
        maxValue > value
          ? `#${pad(value)}..${pad(maxValue)}`
          : value === 1 && omit
            ? ""
            : asRange && ranges
              ? `#${pad(value)}..${pad(value)}`
              : `#${pad(value)}`
      return { value, maxValue, text }
    })

/** Target options (`?subset=..&pick=..`), each present or not, written in either order. */
export const options: fc.Arbitrary<{
  readonly value: { readonly subset?: number; readonly pick?: "round_robin" | "least_request" }
  readonly text: string
}> = fc
  .record({
    subset: fc.option(fc.integer({ min: 1, max: 10_000 }), { nil: undefined }),
    pick: fc.option(fc.constantFrom("round_robin" as const, "least_request" as const), { nil: undefined }),
    zeros: fc.nat(2),
    swap: fc.boolean()
  })
  .map(({ pick, subset, swap, zeros }) => {
    const parts = [
      ...(subset === undefined ? [] : [`subset=${"0".repeat(zeros)}${subset}`]),
      ...(pick === undefined ? [] : [`pick=${pick}`])
    ]
    if (swap) parts.reverse()
    return {
      value: { ...(subset === undefined ? {} : { subset }), ...(pick === undefined ? {} : { pick }) },
      text: parts.length === 0 ? "" : `?${parts.join("&")}`
    }
  })

const serviceUnit = fc.oneof(
  fc.constantFrom(..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%~+=*!$&'()[];"),
  fc.constantFrom("é", "ß", "日", "Ω", "😀")
)

/** A valid etcd service: a non-empty key prefix, may contain "/" (never "?", which starts the options). */
export const service: fc.Arbitrary<string> = fc.string({ unit: serviceUnit, minLength: 1, maxLength: 24 })

/**
 * The options every `it.prop` passes: the replay token in `PROP_REPLAY`
 * (see fast-check.setup.ts), and the largest generation size (`size`,
 * default effect's own), which collections need to reach their maximum
 * length in a thousand runs.
 */
export const propOptions = (size?: number): { readonly arbitrary: Arbitrary.CheckOptions } => ({
  arbitrary: {
    ...(process.env.PROP_REPLAY !== undefined ? { replay: process.env.PROP_REPLAY } : {}),
    ...(size !== undefined ? { size } : {})
  }
})

/** An `effect/Arbitrary` of whole numbers from `minimum` to `maximum`. */
export const int = (minimum: number, maximum: number): Arbitrary.Arbitrary<number> =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))
