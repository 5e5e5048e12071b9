/**
 * `AnchoredChannel.waitForReady` at its deadline says why the channel is
 * not ready in the words a plain grpc-js call gets (the channel's own
 * reason, not only its connectivity state): no endpoints registered for the
 * service, no answer from an unreachable etcd (naming its address), the last
 * connection error of a pass target. Real etcd, real closed ports.
 */
import { createServer } from "node:net"
import { describe, expect, it } from "@effect/vitest"
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

/** The message of the NotReady error of `waitForReady(timeout)` on a new channel to `target`. */
const notReadyMessage = <R>(
  target: string,
  timeout: string,
  provide: <A, E>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E>,
  channelOptions: Record<string, number> = {}
) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(
      provide(
        Effect.scoped(
          Effect.gen(function* () {
            const anchored = yield* AnchoredChannel.make({ target, channelOptions })
            yield* anchored.waitForReady(timeout)
          })
        ) as Effect.Effect<void, AnchoredChannel.AnchoredChannelError, R>
      )
    )
    if (!Exit.isFailure(exit)) throw new Error(`${target} became ready`)
    const error = exit.cause.reasons.find((r) => r._tag === "Fail")?.error as AnchoredChannel.AnchoredChannelError
    expect(error.reason).toBe("NotReady")
    return error.message
  })

describe("AnchoredChannel.waitForReady says why at the deadline", () => {
  it.live("etcd:///SERVICE with nothing registered: the service has no endpoints registered in etcd", () =>
    Effect.gen(function* () {
      const message = yield* notReadyMessage("etcd:///nosuch#2", "3 seconds", Effect.provide(Etcd.layer({ hosts: etcd.endpoints })))
      expect(message).toBe(
        `channel to "etcd:///nosuch#2" did not become ready: anchor_round_robin: no addresses for etcd:///nosuch#2 ` +
          `(service "nosuch" has no endpoints registered in etcd)`
      )
    }), 30_000)

  it.live("etcd unreachable: no answer from etcd, naming its address", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(closedPort)
      const message = yield* notReadyMessage(
        "etcd:///billing#2",
        "6 seconds",
        Effect.provide(Etcd.layer({ hosts: `127.0.0.1:${port}` })),
        { "grpc_anchor.etcd_resolution_timeout_ms": 1_000 }
      )
      expect(message).toMatch(/^channel to "etcd:\/\/\/billing#2" did not become ready: .*no answer from etcd for service "billing" within 1000 ms/)
      expect(message).toContain(`127.0.0.1:${port}`)
      expect(message).not.toContain("at the deadline")
    }), 30_000)

  it.live("etcd unreachable, before the resolver's first-list timeout: no endpoint list from etcd yet", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(closedPort)
      const message = yield* notReadyMessage("etcd:///billing#2", "1 second", Effect.provide(Etcd.layer({ hosts: `127.0.0.1:${port}` })))
      // grpc-js shows IDLE or CONNECTING while the resolver has reported nothing.
      expect(message).toMatch(
        /^channel to "etcd:\/\/\/billing#2" did not become ready: still (IDLE|CONNECTING) at the deadline, with no endpoint list from etcd yet$/
      )
    }), 30_000)

  it.live("a pass target whose backend refuses: the last connection error", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(closedPort)
      const message = yield* notReadyMessage(`pass:///127.0.0.1:${port}#2`, "3 seconds", (effect) => effect)
      expect(message).toMatch(
        new RegExp(`^channel to "pass:///127\\.0\\.0\\.1:${port}#2" did not become ready: anchor_round_robin: no ready connection to pass:///127\\.0\\.0\\.1:${port}#2 \\(2 connections failing; last error: .*ECONNREFUSED`)
      )
    }), 30_000)
})
