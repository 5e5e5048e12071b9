import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import fc from "fast-check"
import * as Target from "../src/core/Target.js"
import * as arb from "./arbitraries.js"

interface Entry {
  readonly address: arb.GeneratedAddress
  readonly count: { readonly value: number; readonly text: string }
}

const entry = (max: number): fc.Arbitrary<Entry> => fc.record({ address: arb.address, count: arb.count(max) })

const passText = (entries: ReadonlyArray<Entry>): string =>
  `pass:///${entries.map((e) => `${e.address.raw}${e.count.text}`).join(",")}`

/**
 * What parsing `passText(entries)` must give: duplicates merged in
 * first-appearance order, or the entry whose count pushes a merged address
 * over 256.
 */
const passModel = (entries: ReadonlyArray<Entry>) => {
  const merged = new Map<string, { address: { host: string; port: number }; count: number }>()
  let at = "pass:///".length
  for (const e of entries) {
    const piece = `${e.address.raw}${e.count.text}`
    const before = merged.get(e.address.canonical)
    const total = (before?.count ?? 0) + e.count.value
    if (total > Target.MAX_COUNT) return { _tag: "Over" as const, position: at, piece }
    merged.set(e.address.canonical, { address: { host: e.address.host, port: e.address.port }, count: total })
    at += piece.length + 1
  }
  return { _tag: "Ok" as const, target: { _tag: "Pass" as const, endpoints: [...merged.values()] } }
}

const etcdInput = fc.record({
  endpoints: fc.array(arb.address, { maxLength: 5, size: "max" }),
  service: arb.service,
  count: arb.count(Target.MAX_COUNT)
})

interface EtcdInput {
  readonly endpoints: ReadonlyArray<arb.GeneratedAddress>
  readonly service: string
  readonly count: { readonly value: number; readonly text: string }
}

const etcdText = (input: EtcdInput) =>
  `etcd://${input.endpoints.map((e) => e.raw).join(",")}/${input.service}${input.count.text}`

/** Any target the parser accepts, as a parsed value. */
const target: fc.Arbitrary<Target.Target> = fc.oneof(
  fc
    .array(entry(16), { minLength: 1, maxLength: 12 })
    .map((entries) => Target.unsafeParse(passText(entries))),
  etcdInput.map((input) => Target.unsafeParse(etcdText(input)))
)

/** Strings made of the grammar's own pieces, so that the parser is driven deep, plus noise. */
const grammarish = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        "pass://", "etcd://", "pass:", "etcd:", "dns://", "/", "//", ":", "::", "#", ",", "[", "]", "[::1]", ".",
        "-", " ", "\n", "0", "1", "2", "9", "256", "257", "65535", "65536", "99999999999", "a", "A", "z", "_",
        "localhost", "\u212A", "\ud800", "\udc00", "é", "😀", "\u200b", "1.5", "-1", "e2"
      ),
      fc.string({ maxLength: 3 })
    ),
    { maxLength: 24, size: "max" }
  )
  .map((pieces) => pieces.join(""))

const anyText = fc.oneof(
  grammarish,
  grammarish.map((t) => `pass:///${t}`),
  grammarish.map((t) => `etcd://${t}`),
  fc.string({ unit: "binary", maxLength: 64 }),
  fc.string({ unit: "grapheme", maxLength: 64 })
)

describe("Target properties", () => {
  it("parse(format(t)) equals t", () => {
    fc.assert(
      fc.property(target, (t) => {
        expect(Target.parse(Target.format(t))).toEqual(Either.right(t))
      })
    )
  })

  it("format is idempotent on canonical text", () => {
    fc.assert(
      fc.property(target, (t) => {
        const canonical = Target.format(t)
        expect(Target.format(Target.unsafeParse(canonical))).toBe(canonical)
      })
    )
  })

  it("parses any way of writing addresses and counts to the canonical values", () => {
    fc.assert(
      fc.property(fc.array(entry(16), { minLength: 1, maxLength: 12, size: "max" }), (entries) => {
        const model = passModel(entries)
        expect(model._tag).toBe("Ok") // counts <= 16 x 12 entries never exceed 256
        if (model._tag === "Ok") expect(Target.parse(passText(entries))).toEqual(Either.right(model.target))
      })
    )
  })

  it("merges duplicate addresses, adding counts, and rejects a merged count over 256 at the entry that passes it", () => {
    // A small pool so that most lists hold the same address several times, written differently.
    const pool = fc.array(arb.address, { minLength: 1, maxLength: 4 })
    const input = pool.chain((addresses) =>
      fc.array(
        fc.record({
          address: fc.constantFrom(...addresses).chain((a) =>
            // The same address, re-cased (hosts are case-insensitive).
            fc.boolean().map((upper) => (upper && !a.raw.startsWith(":") ? { ...a, raw: a.raw.toUpperCase() } : a))
          ),
          count: arb.count(Target.MAX_COUNT)
        }),
        { minLength: 1, maxLength: 10, size: "max" }
      )
    )
    fc.assert(
      fc.property(input, (entries) => {
        const text = passText(entries)
        const model = passModel(entries)
        const result = Target.parse(text)
        if (model._tag === "Ok") {
          expect(result).toEqual(Either.right(model.target))
        } else {
          expect(Either.isLeft(result)).toBe(true)
          if (Either.isLeft(result)) {
            expect(result.left).toMatchObject({ problem: "MergedCountTooLarge", position: model.position, piece: model.piece })
          }
        }
      })
    )
  })

  it("parses etcd targets: endpoints once each, service kept as written", () => {
    fc.assert(
      fc.property(etcdInput, (input) => {
        const etcd = new Map(input.endpoints.map((e) => [e.canonical, { host: e.host, port: e.port }] as const))
        expect(Target.parse(etcdText(input))).toEqual(
          Either.right({ _tag: "Etcd", etcd: [...etcd.values()], service: input.service, count: input.count.value })
        )
      })
    )
  })

  it("is total: any string gives a target or a TargetError naming a piece at its position", () => {
    fc.assert(
      fc.property(anyText, (text) => {
        let result: Either.Either<Target.Target, Target.TargetError> | undefined
        expect(() => {
          result = Target.parse(text)
        }).not.toThrow()
        if (result === undefined || !Either.isEither(result)) throw new Error("parse did not return an Either")
        if (Either.isLeft(result)) {
          const error = result.left
          expect(error).toBeInstanceOf(Target.TargetError)
          expect(error.input).toBe(text)
          expect(error.position).toBeGreaterThanOrEqual(0)
          expect(error.position).toBeLessThanOrEqual(text.length)
          expect(text.startsWith(error.piece, error.position)).toBe(true)
          expect(error.message).toContain(`at position ${error.position}`)
          expect(() => Target.unsafeParse(text)).toThrow(Target.TargetError)
        } else {
          expect(Target.parse(Target.format(result.right))).toEqual(result)
        }
      })
    )
  })

  it("stays fast on 1 MB inputs", () => {
    // Linear time: each of these shapes takes a few milliseconds; the bound is loose for slow CI machines.
    const megabyte = 1 << 20
    const inputs = [
      `pass:///${Array.from({ length: megabyte / 16 }, (_, i) => `h${i}.example:${1 + (i % 65535)}`).join(",")}`,
      `pass:///a:1#${"1".repeat(megabyte)}.1x`,
      `pass:///${"[".repeat(megabyte)}`,
      `pass:///${":".repeat(megabyte)}`,
      `pass:///${"a".repeat(megabyte)}:1`,
      `pass:///${",".repeat(megabyte)}`,
      `etcd://${"e:1,".repeat(megabyte / 4)}e:1/s`,
      `etcd:///${"ab/".repeat(megabyte / 3)}#2`,
      `${"a".repeat(megabyte)}:`
    ]
    for (const input of inputs) {
      const start = performance.now()
      Target.parse(input)
      expect(performance.now() - start).toBeLessThan(2_000)
    }
  })
})
