/**
 * AnchoredChannel as an Effect service: scoped lifetime, typed errors,
 * per-connection stats as an Effect and as a Stream of changes, and
 * configuration through Config.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { call, EchoClient, startEchoServer, type Echo, type EchoServer } from "../../src/main/internal/echo.js"
import { AnchoredChannel } from "../../src/main/index.js"

const echoServer = (name: string) =>
  Effect.acquireRelease(
    Effect.promise(() => startEchoServer({ name })),
    (server: EchoServer) => Effect.promise(() => server.close({ force: true }))
  )

const allReady = (anchored: AnchoredChannel.AnchoredChannel.Service, slots: number) =>
  anchored.stats.pipe(
    Effect.repeat({
      schedule: Schedule.spaced("20 millis"),
      until: (stats) => stats.connections.length === slots && stats.connections.every((c) => c.state === "READY")
    }),
    Effect.timeout("10 seconds")
  )

describe("AnchoredChannel", () => {
  it.scopedLive("pools connections, reports per-connection stats, and closes with its scope", () =>
    Effect.gen(function* () {
      const a = yield* echoServer("a")
      const b = yield* echoServer("b")
      const target = `pass:///127.0.0.1:${a.port}#2,127.0.0.1:${b.port}`
      const inner = yield* Effect.scoped(
        Effect.gen(function* () {
          const anchored = yield* AnchoredChannel.make({ target })
          expect(anchored.target).toBe(target)
          const client = anchored.client(EchoClient) as unknown as Echo
          yield* anchored.waitForReady("10 seconds")
          yield* allReady(anchored, 3)
          for (let i = 0; i < 30; i++) yield* Effect.promise(() => call(client))
          return yield* anchored.stats
        })
      )
      expect(inner.connections.map((c) => [c.address, c.index, c.state, c.picked])).toEqual(
        expect.arrayContaining([
          [`127.0.0.1:${a.port}`, 0, "READY", 10],
          [`127.0.0.1:${a.port}`, 1, "READY", 10],
          [`127.0.0.1:${b.port}`, 0, "READY", 10]
        ])
      )
      // The scope is closed: the servers see their connections go.
      yield* Effect.promise(async () => {
        for (let i = 0; i < 200 && a.observer.connections().length + b.observer.connections().length > 0; i++) {
          await new Promise((resolve) => setTimeout(resolve, 25))
        }
      })
      expect(a.observer.connections().length + b.observer.connections().length).toBe(0)
    }))

  it.scopedLive("streams stats changes: slots going READY, then a dead backend's slot leaving READY", () =>
    Effect.gen(function* () {
      const a = yield* echoServer("a")
      const b = yield* Effect.promise(() => startEchoServer({ name: "b" }))
      const anchored = yield* AnchoredChannel.make({ target: `pass:///127.0.0.1:${a.port},127.0.0.1:${b.port}` })
      const seen = yield* anchored.changes.pipe(
        Stream.map((stats) => stats.connections.map((c) => c.state).join(",")),
        // Until both were READY at once and then one of them no longer was.
        Stream.mapAccum(false, (bothSeen, states) => {
          const seen = bothSeen || states === "READY,READY"
          return [seen, { states, done: bothSeen && states !== "READY,READY" }] as const
        }),
        Stream.takeUntil(({ done }) => done),
        Stream.map(({ states }) => states),
        Stream.runCollect,
        Effect.fork
      )
      yield* anchored.waitForReady("10 seconds")
      yield* allReady(anchored, 2)
      yield* Effect.promise(() => b.close({ force: true }))
      const states = Chunk.toReadonlyArray(yield* Fiber.join(seen).pipe(Effect.timeout("10 seconds")))
      expect(states).toContain("READY,READY")
      expect(states[states.length - 1]).toMatch(/READY/)
      expect(states[states.length - 1]).not.toBe("READY,READY")
    }))

  it.effect("fails with a typed InvalidTarget error naming the position", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(Effect.scoped(AnchoredChannel.make({ target: "pass:///127.0.0.1:80#999" })))
      expect(Exit.isFailure(exit)).toBe(true)
      const error = yield* Effect.flip(Effect.scoped(AnchoredChannel.make({ target: "pass:///127.0.0.1:80#999" })))
      expect(error._tag).toBe("AnchoredChannelError")
      expect(error.reason).toBe("InvalidTarget")
      expect(error.message).toMatch(/position 21/)
    }))

  it.effect("reads its target through Config in layerConfig", () =>
    Effect.gen(function* () {
      const target = yield* Effect.gen(function* () {
        const anchored = yield* AnchoredChannel.AnchoredChannel
        return anchored.target
      }).pipe(
        Effect.provide(AnchoredChannel.layerConfig(Config.string("GRPC_TARGET"))),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["GRPC_TARGET", "pass:///Example.COM:443#2,example.com:443"]])))
      )
      expect(target).toBe("pass:///example.com:443#3")
      const missing = yield* Effect.flip(
        Layer.build(AnchoredChannel.layerConfig(Config.string("GRPC_TARGET"))).pipe(
          Effect.scoped,
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
        )
      )
      expect(String(missing)).toMatch(/GRPC_TARGET/)
    }))
})
