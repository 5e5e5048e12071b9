// A client made without calling register(): importing anything from
// grpc-anchor (here only `Target`) registers its resolvers and policy. The
// server is plain grpc-js. Also bundled with esbuild by the consumer test.
import * as grpc from "@grpc/grpc-js"
import { Target } from "grpc-anchor"
import { callPlain, PlainClient, startPlainServer } from "./plain.mjs"

const main = async () => {
  const server = await startPlainServer()
  const target = Target.format(Target.parseUnsafe(`pass:///127.0.0.1:${server.port}#2`))
  const client = new PlainClient(target, grpc.credentials.createInsecure())
  const result = await callPlain(client, 40)
  client.close()
  server.close()
  console.log(JSON.stringify({ target, ...result, connections: server.connections() }))
}
main().catch((error) => {
  console.error(error)
  process.exit(1)
})
