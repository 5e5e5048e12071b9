/**
 * `Balancer.make`'s range checks (a defect in the caller: RangeError naming
 * the option and its value) at each option's edges, and the documented
 * defaults and channel option names, for the changes StrykerJS
 * (`npm run test:mutation`) found no test noticing in the facade and
 * `balancer/options.ts`.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Result from "effect/Result"
import * as Balancer from "../src/core/Balancer.js"

describe("Balancer.make", () => {
  it.each([
    { options: { removalThreshold: -0.01 }, message: "Balancer option removalThreshold is out of range: -0.01" },
    { options: { removalThreshold: 1.01 }, message: "Balancer option removalThreshold is out of range: 1.01" },
    { options: { removalThreshold: Number.NaN }, message: "Balancer option removalThreshold is out of range: NaN" },
    { options: { suspicionMs: -1 }, message: "Balancer option suspicionMs is out of range: -1" },
    { options: { suspicionMs: Number.POSITIVE_INFINITY }, message: "Balancer option suspicionMs is out of range: Infinity" },
    { options: { replacementWaitMs: -1 }, message: "Balancer option replacementWaitMs is out of range: -1" },
    { options: { replacementWaitMs: Number.POSITIVE_INFINITY }, message: "Balancer option replacementWaitMs is out of range: Infinity" },
    { options: { startWaitMs: -1 }, message: "Balancer option startWaitMs is out of range: -1" },
    { options: { maxConnections: 0 }, message: "Balancer option maxConnections is out of range: 0" },
    { options: { removalGraceMs: -1 }, message: "Balancer option removalGraceMs is out of range: -1" },
    { options: { pickMode: "random" as Balancer.PickMode }, message: "Balancer option pickMode is out of range: random" },
    { options: { maxStreamsPerConnection: 0 }, message: "Balancer option maxStreamsPerConnection is out of range: 0" },
    { options: { shrinkIdleMs: 0 }, message: "Balancer option shrinkIdleMs is out of range: 0" },
    { options: { hungAfterMs: -1 }, message: "Balancer option hungAfterMs is out of range: -1" },
    { options: { ewmaDecayMs: 0 }, message: "Balancer option ewmaDecayMs is out of range: 0" }
  ])("refuses $options", ({ options, message }) => {
    expect(() => Balancer.make(options)).toThrow(new RangeError(message))
  })

  it("accepts each option at its edges", () => {
    for (
      const options of [
        { removalThreshold: 0 },
        { removalThreshold: 1 },
        { suspicionMs: 0 },
        { replacementWaitMs: 0 },
        { startWaitMs: 0 },
        { maxConnections: 1 },
        { removalGraceMs: 0 },
        { pickMode: "ewma" as const },
        { maxStreamsPerConnection: 1 },
        { shrinkIdleMs: 1 },
        { hungAfterMs: 0 },
        { ewmaDecayMs: 1 }
      ]
    ) {
      expect(() => Balancer.make(options), JSON.stringify(options)).not.toThrow()
    }
  })

  it("starts from the documented defaults", () => {
    expect(Balancer.defaultOptions).toEqual({
      startWaitMs: 250,
      maxConnections: 4_096,
      removalGraceMs: 30_000,
      removalThreshold: 0.5,
      suspicionMs: 1_000,
      trace: false,
      pickMode: "round_robin",
      maxStreamsPerConnection: 100,
      shrinkIdleMs: 30_000,
      replacementWaitMs: 1_000,
      hungAfterMs: 1_000,
      ewmaDecayMs: 10_000
    })
    const b = Balancer.make()
    expect(Balancer.pickMode(b)).toBe("round_robin")
    expect(Balancer.state(b)).toBe("CONNECTING")
    expect(Balancer.slots(b)).toEqual([])
    expect(Balancer.pickMode(Balancer.make({ pickMode: "ewma" }))).toBe("ewma")
  })

  it("names the channel options as documented", () => {
    expect([
      Balancer.START_WAIT_MS_OPTION,
      Balancer.MAX_CONNECTIONS_OPTION,
      Balancer.REMOVAL_GRACE_MS_OPTION,
      Balancer.MAX_STREAMS_PER_CONNECTION_OPTION,
      Balancer.SHRINK_IDLE_MS_OPTION,
      Balancer.HUNG_AFTER_MS_OPTION,
      Balancer.EWMA_DECAY_MS_OPTION
    ]).toEqual([
      "grpc_anchor.start_wait_ms",
      "grpc_anchor.max_connections",
      "grpc_anchor.removal_grace_ms",
      "grpc_anchor.max_streams_per_connection",
      "grpc_anchor.shrink_idle_ms",
      "grpc_anchor.hung_after_ms",
      "grpc_anchor.ewma_decay_ms"
    ])
  })

  it("checkCapUnsafe returns the total, or throws the cap error with its figures", () => {
    expect(Balancer.checkCapUnsafe([{ address: "a:1", count: 2 }, { address: "a:1", count: 2 }], 4)).toBe(4)
    expect(() => Balancer.checkCapUnsafe([{ address: "a:1", count: 5 }], 4)).toThrow(
      "the target asks for 5 connections, over this channel's cap of 4: lower the #N counts or the number of addresses, or raise the channel option grpc_anchor.max_connections"
    )
    let thrown: unknown
    try {
      Balancer.checkCapUnsafe([{ address: "a:1", count: 5 }], 4)
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(Balancer.ConnectionCapError)
    const refused = Balancer.checkCap([{ address: "a:1", count: 5 }], 4)
    expect(Result.isFailure(refused) && refused.failure).toMatchObject({ _tag: "ConnectionCapError", total: 5, max: 4 })
    expect(Balancer.checkCapUnsafe([{ address: "a:1", count: 4_096 }])).toBe(4_096)
    expect(() => Balancer.checkCapUnsafe([{ address: "a:1", count: 4_097 }])).toThrow(/cap of 4096/)
  })
})
