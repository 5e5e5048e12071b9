/**
 * AnchoredChannel as an Effect service: scoped lifetime, typed errors,
 * per-connection stats as an Effect and as a Stream of changes,
 * configuration through Config, and layer types that name what a target
 * needs (`Etcd` for `etcd:///` targets, nothing for `pass:` targets).
 */
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { call, EchoClient, startEchoServer, type Echo, type EchoServer } from "../../packages/cli/src/echo/echo.js"
import { AnchoredChannel, Etcd } from "../../src/main/index.js"
import { withEnv } from "../support/env.js"

const echoServer = (name: string) =>
  Effect.acquireRelease(
    Effect.promise(() => startEchoServer({ name })),
    (server: EchoServer) => Effect.promise(() => server.close({ force: true }))
  )

const allReady = (anchored: AnchoredChannel.AnchoredChannel.Shape, slots: number) =>
  anchored.stats.pipe(
    Effect.repeat({
      schedule: Schedule.spaced("20 millis"),
      until: (stats) => stats.connections.length === slots && stats.connections.every((c) => c.state === "READY")
    }),
    Effect.timeout("10 seconds")
  )

const withConfig = (entries: Record<string, string>) => Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(entries)))

describe("AnchoredChannel", () => {
  it.live("pools connections, reports per-connection stats, and closes with its scope", () =>
    Effect.gen(function* () {
      const a = yield* echoServer("a")
      const b = yield* echoServer("b")
      const target = `pass:///127.0.0.1:${a.port}#2,127.0.0.1:${b.port}` as const
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

  it.live("streams stats changes: slots going READY, then a dead backend's slot leaving READY", () =>
    Effect.gen(function* () {
      const a = yield* echoServer("a")
      const b = yield* Effect.promise(() => startEchoServer({ name: "b" }))
      const anchored = yield* AnchoredChannel.make({ target: `pass:///127.0.0.1:${a.port},127.0.0.1:${b.port}` })
      // The channel stays idle (no connection attempt) until waitForReady, and
      // that waits for the stream's first element: no change can be missed.
      const started = yield* Deferred.make<void>()
      const seen = yield* anchored.changes.pipe(
        Stream.tap(() => Deferred.succeed(started, undefined)),
        Stream.map((stats) => stats.connections.map((c) => c.state).join(",")),
        // Until both were READY at once and then one of them no longer was.
        Stream.mapAccum(() => false, (bothSeen, states: string) => {
          const seen = bothSeen || states === "READY,READY"
          return [seen, [{ states, done: bothSeen && states !== "READY,READY" }]] as const
        }),
        Stream.takeUntil(({ done }) => done),
        Stream.map(({ states }) => states),
        Stream.runCollect,
        Effect.forkChild
      )
      yield* Deferred.await(started)
      yield* anchored.waitForReady("10 seconds")
      yield* allReady(anchored, 2)
      yield* Effect.promise(() => b.close({ force: true }))
      const states = yield* Fiber.join(seen).pipe(Effect.timeout("10 seconds"))
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
      // A target read at run time may be an etcd:/// one, so the layer needs Etcd (never dialled here).
      const layer = AnchoredChannel.layerConfig(Config.String("GRPC_TARGET")).pipe(
        Layer.provide(Etcd.layer({ hosts: "127.0.0.1:1" }))
      )
      const target = yield* Effect.gen(function* () {
        const anchored = yield* AnchoredChannel.AnchoredChannel
        return anchored.target
      }).pipe(
        Effect.provide(layer),
        withConfig({ GRPC_TARGET: "pass:///Example.COM:443#2,example.com:443" })
      )
      expect(target).toBe("pass:///example.com:443#3")
      const missing = yield* Effect.flip(Layer.build(layer).pipe(Effect.scoped, withConfig({})))
      expect(String(missing)).toMatch(/GRPC_TARGET/)
    }))

  it("names Etcd in the layer's type exactly when the target may need the context's etcd client", () => {
    type Needs<L> = L extends Layer.Layer<infer _A, infer _E, infer R> ? R : never
    expectTypeOf<Needs<ReturnType<typeof AnchoredChannel.layer<"pass:///10.0.0.1:9080#2">>>>().toEqualTypeOf<never>()
    expectTypeOf<Needs<ReturnType<typeof AnchoredChannel.layer<"etcd:///billing#2">>>>().toEqualTypeOf<Etcd.Etcd>()
    expectTypeOf<Needs<ReturnType<typeof AnchoredChannel.layer<"etcd://10.0.0.5:2379/billing">>>>().toEqualTypeOf<never>()
    expectTypeOf<Needs<ReturnType<typeof AnchoredChannel.layer<string>>>>().toEqualTypeOf<Etcd.Etcd>()
    const pass = AnchoredChannel.layer({ target: "pass:///127.0.0.1:9080" })
    const etcd = AnchoredChannel.layer({ target: "etcd:///billing" })
    expectTypeOf(pass).toEqualTypeOf<Layer.Layer<AnchoredChannel.AnchoredChannel, AnchoredChannel.AnchoredChannelError>>()
    expectTypeOf(etcd).toEqualTypeOf<Layer.Layer<AnchoredChannel.AnchoredChannel, AnchoredChannel.AnchoredChannelError, Etcd.Etcd>>()
  })

  it.live("gives an etcd:/// target the Etcd service of its context, never ETCD_ENDPOINTS", () =>
    Effect.gen(function* () {
      // Nothing listens on ports 1 and 2 of loopback: the watch's last error names the host it asked.
      const details = yield* Effect.promise(() =>
        withEnv({ ETCD_ENDPOINTS: "127.0.0.1:2" }, () =>
          Effect.runPromise(
            Effect.scoped(
              Effect.gen(function* () {
                const anchored = yield* AnchoredChannel.make({
                  target: "etcd:///nowhere",
                  channelOptions: { "grpc_anchor.etcd_resolution_timeout_ms": 2_000 }
                })
                const client = anchored.client(EchoClient) as unknown as Echo
                return yield* Effect.promise(() =>
                  call(client, { deadlineMs: 20_000 }).then(
                    () => "answered",
                    (e: { details?: string }) => e.details ?? ""
                  )
                )
              })
            ).pipe(Effect.provide(Etcd.layer({ hosts: "127.0.0.1:1", dialTimeout: "200 millis", callTimeout: "200 millis" })))
          )
        )
      )
      expect(details).toMatch(/etcd:\/\/\/nowhere: no answer from etcd for service "nowhere"/)
      expect(details).toMatch(/127\.0\.0\.1:1\b/)
      expect(details).not.toMatch(/127\.0\.0\.1:2\b/)
    }))
})
