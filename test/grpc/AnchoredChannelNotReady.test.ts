/**
 * `AnchoredChannel.waitForReady` at its deadline says why the channel is
 * not ready in the words a plain grpc-js call gets (the channel's own
 * reason, not only its connectivity state): no endpoints registered for the
 * service, no answer from an unreachable etcd (naming its address), the last
 * connection error of a pass target. Real etcd, real closed ports.
 */
import { createServer } from "node:net"
import { describe, expect, it } from "@effect/vitest"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { AnchoredChannel, Etcd } from "../../src/main/index.js"
import { etcdForFile } from "../support/etcdForFile.js"

const etcd = etcdForFile()

/** A loopback port nothing listens on (bound, then released). */
const closedPort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })

/** A new channel to `target`, waiting `timeout` for it to be ready (in its own scope). */
const waitOn = <const T extends string>(target: T, timeout: Duration.Input, channelOptions: Record<string, number> = {}) =>
  Effect.scoped(
    Effect.gen(function* () {
      const anchored = yield* AnchoredChannel.make({ target, channelOptions })
      yield* anchored.waitForReady(timeout)
    })
  )

/** The message of the NotReady error `wait` fails with. */
const notReadyMessage = (wait: Effect.Effect<void, unknown>) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(wait)
    if (!Exit.isFailure(exit)) throw new Error("the channel became ready")
    const error = exit.cause.reasons.find((r) => r._tag === "Fail")?.error
    expect(error).toBeInstanceOf(AnchoredChannel.AnchoredChannelError)
    expect((error as AnchoredChannel.AnchoredChannelError).reason).toBe("NotReady")
    return (error as AnchoredChannel.AnchoredChannelError).message
  })

describe("AnchoredChannel.waitForReady says why at the deadline", () => {
  it.live("etcd:///SERVICE with nothing registered: the service has no endpoints registered in etcd", () =>
    Effect.gen(function* () {
      const message = yield* notReadyMessage(waitOn("etcd:///nosuch#2", "3 seconds").pipe(Effect.provide(Etcd.layer({ hosts: etcd.endpoints }))))
      expect(message).toBe(
        `channel to "etcd:///nosuch#2" did not become ready: anchor_round_robin: no addresses for etcd:///nosuch#2 ` +
          `(service "nosuch" has no endpoints registered in etcd)`
      )
    }), 30_000)

  it.live("etcd unreachable: no answer from etcd, naming its address", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(closedPort)
      const message = yield* notReadyMessage(
        waitOn("etcd:///billing#2", "6 seconds", { "grpc_anchor.etcd_resolution_timeout_ms": 1_000 }).pipe(
          Effect.provide(Etcd.layer({ hosts: `127.0.0.1:${port}` }))
        )
      )
      expect(message).toMatch(/^channel to "etcd:\/\/\/billing#2" did not become ready: .*no answer from etcd for service "billing" within 1000 ms/)
      expect(message).toContain(`127.0.0.1:${port}`)
      expect(message).not.toContain("at the deadline")
    }), 30_000)

  it.live("etcd unreachable, before the resolver's first-list timeout: no endpoint list from etcd yet", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(closedPort)
      const message = yield* notReadyMessage(waitOn("etcd:///billing#2", "1 second").pipe(Effect.provide(Etcd.layer({ hosts: `127.0.0.1:${port}` }))))
      // grpc-js shows IDLE or CONNECTING while the resolver has reported nothing.
      expect(message).toMatch(
        /^channel to "etcd:\/\/\/billing#2" did not become ready: still (IDLE|CONNECTING) at the deadline, with no endpoint list from etcd yet$/
      )
    }), 30_000)

  it.live("a pass target whose backend refuses: the last connection error", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(closedPort)
      const message = yield* notReadyMessage(waitOn(`pass:///127.0.0.1:${port}#2` as const, "3 seconds"))
      expect(message).toMatch(
        new RegExp(`^channel to "pass:///127\\.0\\.0\\.1:${port}#2" did not become ready: anchor_round_robin: no ready connection to pass:///127\\.0\\.0\\.1:${port}#2 \\(2 connections failing; last error: .*ECONNREFUSED`)
      )
    }), 30_000)
})
