/**
 * Hostile etcd values under a live `etcd://.../hostile#3` grpc-js channel
 * with steady traffic: random bytes, 1 MB values (garbage, and a valid
 * record with 1 MB of metadata), JSON of the wrong shape, one address under
 * several keys, and Addr values that are not host:port. The channel keeps
 * serving the good records without a failed call, every backend has exactly
 * the target's 3 connections (a duplicate is counted once), and each bad
 * record is warned about exactly once, in a line of bounded size.
 * (Discovery.test.ts covers the same kinds of values at the adapter level.)
 */
import { randomBytes } from "node:crypto"
import * as grpc from "@grpc/grpc-js"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, startEchoServer, type EchoServer } from "../../packages/cli/src/echo/echo.js"
import * as Etcd from "../../src/adapters/etcd/Etcd.js"
import { register } from "../../src/main/index.js"
import { captureOutput } from "../support/capture.js"
import { etcdForFile } from "../support/etcdForFile.js"
import { eventually } from "../support/grpc.js"
import { pooled } from "../support/pooled.js"

register()

const SERVICE = "hostile"
const COUNT = 3

const etcd = etcdForFile({ checkHandles: true })
let scope: Scope.Closeable | undefined
let client: Etcd.Etcd.Shape
beforeAll(async () => {
  scope = await Effect.runPromise(Scope.make())
  client = await Effect.runPromise(Etcd.make({ hosts: etcd.endpoints }).pipe(Scope.provide(scope)))
})
// Registered after etcdForFile: afterAll hooks run newest first, so the
// client is closed before etcd stops and the open handles are checked.
afterAll(async () => {
  if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void))
})
/** Writes `value` (text or any bytes) under `key` with the library's own client. */
const put = (key: string, value: string | Buffer) => Effect.runPromise(client.put(`put ${key}`, { key, value }))
const del = (key: string) => Effect.runPromise(client.deleteRange(`delete ${key}`, { key }))

const record = (address: string, metadata: unknown = null) => JSON.stringify({ Op: 0, Addr: address, Metadata: metadata })

/** Bad values by key, with the problem Discovery must report for each. */
const hostile = (): ReadonlyArray<readonly [string, string | Buffer, string]> => [
  // 0xff never starts JSON text, whatever the random rest is.
  [`${SERVICE}/random`, Buffer.concat([Buffer.from([0xff]), randomBytes(4_095)]), "InvalidJson"],
  [`${SERVICE}/huge-garbage`, Buffer.concat([Buffer.from([0xff]), randomBytes(1_000_000)]), "InvalidJson"],
  [`${SERVICE}/array`, '["127.0.0.1:1"]', "NotAnObject"],
  [`${SERVICE}/string`, '"127.0.0.1:1"', "NotAnObject"],
  [`${SERVICE}/null`, "null", "NotAnObject"],
  [`${SERVICE}/empty-object`, "{}", "MissingAddr"],
  [`${SERVICE}/addr-number`, '{"Op":0,"Addr":12345,"Metadata":null}', "MissingAddr"],
  [`${SERVICE}/op-string`, '{"Op":"0","Addr":"127.0.0.1:1","Metadata":null}', "InvalidOp"],
  [`${SERVICE}/no-port`, record("127.0.0.1"), "InvalidAddr"],
  [`${SERVICE}/name-only`, record("localhost"), "InvalidAddr"],
  [`${SERVICE}/url`, record("http://127.0.0.1:80"), "InvalidAddr"],
  [`${SERVICE}/port-too-big`, record("127.0.0.1:99999"), "InvalidAddr"],
  [`${SERVICE}/empty-addr`, record(""), "InvalidAddr"],
  [`${SERVICE}/bracket-no-port`, record("[::1]"), "InvalidAddr"]
]

/** The bad-record warnings the resolver logged (logfmt through the console), by key. */
const warningsByKey = (lines: ReadonlyArray<string>): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const line of lines) {
    if (!line.includes("skipping a bad endpoint record")) continue
    const key = /\bkey=("(?:[^"\\]|\\.)*"|\S+)/.exec(line)?.[1]
    if (key === undefined) continue
    const plain = key.startsWith('"') ? (JSON.parse(key) as string) : key
    counts[plain] = (counts[plain] ?? 0) + 1
  }
  return counts
}

describe("hostile etcd values under a live etcd:// channel", () => {
  it("keeps serving the good records with #3 each, counts a duplicate once, and warns once per bad record", async () => {
    const output = captureOutput()
    const servers: Array<EchoServer> = []
    let channel: ReturnType<typeof pooled> | undefined
    let running = true
    let traffic: Promise<void> = Promise.resolve()
    try {
      servers.push(...(await Promise.all(["a", "b", "c"].map((name) => startEchoServer({ name })))))
      const [a, b, c] = servers as [EchoServer, EchoServer, EchoServer]
      const address = (server: EchoServer) => `127.0.0.1:${server.port}`
      await put(`${SERVICE}/${address(a)}`, record(address(a)))
      await put(`${SERVICE}/${address(b)}`, record(address(b)))

      channel = pooled(`etcd://${etcd.endpoints[0]}/${SERVICE}#${COUNT}`)
      await channel.waitSlots(2 * COUNT)
      const firstIds = a.observer.connections().map((x) => x.id).sort()

      // Steady traffic (two callers) for the whole time the values are written.
      const answers: Record<string, number> = {}
      const failures: Array<string> = []
      const live = channel
      const caller = async () => {
        for (let i = 0; running && i < 100_000; i++) {
          await call(live.client, { deadlineMs: 5_000 }).then(
            (name) => void (answers[name] = (answers[name] ?? 0) + 1),
            (e: grpc.ServiceError) => void failures.push(`${e.code}: ${e.details}`)
          )
        }
      }
      traffic = Promise.all([caller(), caller()]).then(() => undefined)

      const bad = hostile()
      for (const [key, value] of bad) await put(key, value)
      // The same address as a, under another key: one backend, still #3.
      await put(`${SERVICE}/dup-of-a`, record(address(a)))
      // A valid record with 1 MB of metadata, written last: once c is served,
      // every earlier event has been through the resolver.
      await put(`${SERVICE}/huge-good`, record(address(c), { blob: "y".repeat(1_000_000) }))
      await channel.waitSlots(3 * COUNT)
      expect(channel.readyByAddress()).toEqual({ [address(a)]: COUNT, [address(b)]: COUNT, [address(c)]: COUNT })
      await eventually("every server sees exactly #3", () => servers.every((s) => s.observer.connections().length === COUNT))
      // The duplicate did not make a reconnect either.
      expect(a.observer.connections().map((x) => x.id).sort()).toEqual(firstIds)

      // The original key of a goes; its duplicate keeps it served, on the same connections.
      await del(`${SERVICE}/${address(a)}`)
      await put(`${SERVICE}/marker`, record("127.0.0.1:1"))
      await eventually("the marker's slots", () => channel!.slots().some((s) => s.address === "127.0.0.1:1"))
      await del(`${SERVICE}/marker`)
      await channel.waitSlots(3 * COUNT)
      expect(a.observer.connections().map((x) => x.id).sort()).toEqual(firstIds)

      running = false
      await traffic
      expect(failures).toEqual([])
      expect(Object.keys(answers).sort()).toEqual(["a", "b", "c"])

      const warnings = warningsByKey(output.lines)
      expect(warnings).toEqual(Object.fromEntries(bad.map(([key]) => [key, 1])))
      for (const [key, , problem] of bad) {
        const line = output.lines.find((l) => l.includes("skipping a bad endpoint record") && l.includes(`key=${key}`))
        expect(line).toContain(`reason=${problem}`)
      }
      // A 1 MB value never ends up in a log line.
      expect(Math.max(...output.lines.map((l) => l.length))).toBeLessThan(2_000)
    } finally {
      running = false
      await traffic
      output.restore()
      channel?.close()
      await Promise.all(servers.map((s) => s.close({ force: true })))
    }
  }, 60_000)
})
