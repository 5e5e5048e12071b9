// A CommonJS app: require by name (the package's require entry points).
const grpc = require("@grpc/grpc-js")
const { register, createChannel } = require("grpc-anchor")
const { Target } = require("grpc-anchor/core")

const main = async () => {
  const { callMany, EchoClient, startServer } = await import("./service.mjs")
  register()
  const server = await startServer("cjs")
  const target = `pass:///${server.address}#2`
  const channel = createChannel(target, grpc.credentials.createInsecure())
  const client = new EchoClient(target, grpc.credentials.createInsecure(), { channelOverride: channel })
  const answers = await callMany(client, 40)
  const connections = server.connections()
  client.close()
  channel.close()
  await server.close()
  console.log(JSON.stringify({ format: Target.format(Target.parseUnsafe(target)), answers, connections }))
}
main().catch((error) => {
  console.error(error)
  process.exit(1)
})
