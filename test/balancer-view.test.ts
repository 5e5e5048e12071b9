/**
 * The balancer's reads (src/core/balancer/view.ts) where StrykerJS found no
 * test: the failure message before any address list, and when no connection
 * reported an error.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Balancer from "../src/core/Balancer.js"

describe("Balancer.failureMessage", () => {
  it("names no target before the first address list", () => {
    expect(Balancer.failureMessage(Balancer.make())).toBe("anchor_round_robin: no addresses for (unknown target)")
  })

  it("says 'none' when no failing connection gave an error", () => {
    const b = Balancer.make({ startWaitMs: 0 })
    const [slot] = Balancer.step(b, { _tag: "Addresses", now: 0, target: "pass:///a:1", endpoints: [{ address: "a:1", count: 1 }], overCap: "fail", offset: 0 }).create
    const out = Balancer.step(b, { _tag: "StateChanged", now: 1, slot: slot!.id, state: "SHUTDOWN" })
    expect(out.publish).toEqual({ state: "TRANSIENT_FAILURE", message: "anchor_round_robin: no ready connection to pass:///a:1 (1 connections failing; last error: none)" })
  })
})
