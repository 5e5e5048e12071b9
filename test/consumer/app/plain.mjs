// A plain grpc-js echo server and client class, with no grpc-anchor on
// either side: the server counts the client connections it sees by peer.
import * as grpc from "@grpc/grpc-js"

const identity = (buffer) => buffer
const service = {
  echo: {
    path: "/plain.Echo/Echo",
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity
  }
}
export const PlainClient = grpc.makeGenericClientConstructor(service, "Echo")

export const startPlainServer = async () => {
  const peers = new Set()
  const server = new grpc.Server()
  server.addService(service, {
    echo: (call, callback) => {
      peers.add(call.getPeer())
      callback(null, Buffer.from("ok"))
    }
  })
  const port = await new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port)))
  )
  return { port, connections: () => peers.size, close: () => server.forceShutdown() }
}

/** Makes `count` calls, 4 at a time: how many were answered, and the first error's details. */
export const callPlain = async (client, count) => {
  let answered = 0
  let error
  for (let i = 0; i < count; i += 4) {
    await Promise.all(
      Array.from({ length: 4 }, () =>
        new Promise((resolve) =>
          client.echo(Buffer.alloc(0), new grpc.Metadata(), { deadline: Date.now() + 5_000 }, (e) => {
            if (e) error ??= e.details
            else answered++
            resolve()
          })
        )
      )
    )
  }
  return { answered, error }
}
