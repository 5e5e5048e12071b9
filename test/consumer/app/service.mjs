// A tiny echo service for the consumer apps: a real grpc-js server on
// loopback, watched by grpc-anchor's ConnectionObserver, and a client class.
import * as grpc from "@grpc/grpc-js"
import { ConnectionObserver } from "grpc-anchor"

const identity = (buffer) => buffer
export const EchoService = {
  echo: {
    path: "/consumer.Echo/Echo",
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity
  }
}
export const EchoClient = grpc.makeGenericClientConstructor(EchoService, "Echo")

export const startServer = async (name = "server") => {
  const observer = new ConnectionObserver()
  const server = new grpc.Server({ interceptors: [observer.interceptor] })
  server.addService(EchoService, { echo: (_call, callback) => callback(null, Buffer.from(name)) })
  const port = await observer.listen(server, "127.0.0.1:0", grpc.ServerCredentials.createInsecure())
  return {
    port,
    address: `127.0.0.1:${port}`,
    connections: () => observer.connections().filter((c) => c.open).length,
    close: async () => {
      await observer.close({ force: true })
      server.forceShutdown()
    }
  }
}

export const echo = (client) =>
  new Promise((resolve, reject) =>
    client.echo(Buffer.alloc(0), new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (error, reply) =>
      error ? reject(error) : resolve(reply.toString())
    )
  )

/** Makes `count` calls, 8 at a time; returns how many each server answered. */
export const callMany = async (client, count) => {
  const answers = {}
  for (let i = 0; i < count; i += 8) {
    const batch = await Promise.all(Array.from({ length: Math.min(8, count - i) }, () => echo(client)))
    for (const name of batch) answers[name] = (answers[name] ?? 0) + 1
  }
  return answers
}
