/**
 * The README's JSON block (an `outlier_detection` service config wrapping
 * `anchor_round_robin`) is what a user pastes: given as
 * `grpc.service_config` on a `pass:` target it must keep the pool (the
 * `#N` connections per address, calls split by them). grpc-js silently falls
 * back to `pick_first` (one connection) for a config it rejects, e.g.
 * durations written as "10s" strings, so a bad edit of the block fails here.
 */
import * as fs from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { callMany, cleanupAfterEach, echoServers, tally } from "../support/grpc.js"
import { pooled } from "../support/pooled.js"

const defer = cleanupAfterEach()

/** Every ```json block of the README, as text. */
const jsonBlocks = (): ReadonlyArray<string> => {
  const readme = fs.readFileSync(new URL("../../README.md", import.meta.url), "utf8")
  return [...readme.matchAll(/^[ \t]*```json\n([\s\S]*?)^[ \t]*```/gm)].map((match) => match[1]!)
}

describe("the README's service config", () => {
  it("has JSON blocks, and each one keeps the pool (#2 and #1 connections, calls split 2:1)", async () => {
    const blocks = jsonBlocks()
    expect(blocks.length).toBeGreaterThan(0)
    for (const block of blocks) {
      const config = JSON.parse(block) as unknown
      const [a, b] = await echoServers(defer)("a", "b")
      const pool = pooled(`pass:///127.0.0.1:${a!.port}#2,127.0.0.1:${b!.port}#1`, { "grpc.service_config": JSON.stringify(config) })
      defer(() => pool.close())
      await pool.waitSlots(3)
      const answered = await callMany(pool.client, 300)
      const counts = tally(answered)
      console.log(`README service config: 3 connections READY, 300 calls split ${JSON.stringify(counts)}`)
      expect(counts).toEqual({ a: 200, b: 100 })
    }
  })
})
