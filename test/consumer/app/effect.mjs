// An Effect 4 app: the server registers itself in etcd with Registrar, the
// client reaches it through AnchoredChannel on etcd:///SERVICE#2. The etcd
// endpoint comes from ETCD_ENDPOINTS (Etcd.layerConfig).
import { Effect, Layer } from "effect"
import { AnchoredChannel, Etcd, Registrar } from "grpc-anchor"
import { callMany, EchoClient, startServer } from "./service.mjs"

const service = `consumer-${process.pid}`

const program = Effect.gen(function* () {
  const server = yield* Effect.acquireRelease(Effect.promise(() => startServer("effect")), (s) => Effect.promise(() => s.close()))
  const EtcdLive = Etcd.layerConfig(Etcd.config)
  const RegistrarLive = Registrar.layer({ service, address: server.address, ttl: 10 }).pipe(Layer.provide(EtcdLive))
  const ChannelLive = AnchoredChannel.layer({ target: `etcd:///${service}#2` }).pipe(Layer.provide(EtcdLive))
  return yield* Effect.gen(function* () {
    const anchored = yield* AnchoredChannel.AnchoredChannel
    yield* anchored.waitForReady("10 seconds")
    const client = anchored.client(EchoClient)
    const answers = yield* Effect.promise(() => callMany(client, 40))
    const stats = yield* anchored.stats
    return { answers, connections: server.connections(), slots: stats.connections.length }
  }).pipe(Effect.provide(Layer.merge(RegistrarLive, ChannelLive)))
})

Effect.runPromise(Effect.scoped(program)).then(
  (result) => console.log(JSON.stringify(result)),
  (error) => {
    console.error(String(error))
    process.exit(1)
  }
)
