/**
 * grpc-anchor under the clients and configs people actually use: a
 * proto-loader client, a user's service config (which wins when it names a
 * policy, and keeps its method configs when it does not).
 */
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { ConnectionObserver } from "../../src/adapters/grpc/ConnectionObserver.js"
import { call } from "../../packages/cli/src/echo/echo.js"
import { register } from "../../src/main/index.js"
import { callMany, cleanupAfterEach, echoServers, eventually, makeClient, tally } from "../support/grpc.js"

register()

const defer = cleanupAfterEach()

const servers = echoServers(defer)

interface HelloReply {
  readonly message: string
  readonly server: string
}
interface GreeterClient extends grpc.Client {
  sayHello(request: { name: string }, callback: (error: grpc.ServiceError | null, reply?: HelloReply) => void): grpc.ClientUnaryCall
}

describe("clients", () => {
  it("works with a proto-loader client: 2 connections to one greeter, 1 to the other, calls 2:1", async () => {
    const definition = protoLoader.loadSync(fileURLToPath(new URL("../fixtures/greeter.proto", import.meta.url)))
    const proto = grpc.loadPackageDefinition(definition) as unknown as {
      grpc_anchor: { test: { Greeter: grpc.ServiceClientConstructor } }
    }
    const Greeter = proto.grpc_anchor.test.Greeter
    const start = async (name: string) => {
      const observer = new ConnectionObserver()
      const server = new grpc.Server({ interceptors: [observer.interceptor] })
      server.addService(Greeter.service, {
        sayHello: (
          request: grpc.ServerUnaryCall<{ name: string }, HelloReply>,
          callback: grpc.sendUnaryData<HelloReply>
        ) => callback(null, { message: `hello ${request.request.name}`, server: name })
      })
      const port = await observer.listen(server, "127.0.0.1:0", grpc.ServerCredentials.createInsecure())
      defer(async () => {
        await observer.close({ force: true })
        server.forceShutdown()
      })
      return { port, observer }
    }
    const a = await start("a")
    const b = await start("b")
    const client = new Greeter(`pass:///127.0.0.1:${a.port}#2,127.0.0.1:${b.port}`, grpc.credentials.createInsecure()) as unknown as GreeterClient
    defer(() => client.close())
    const hello = () =>
      new Promise<HelloReply>((resolve, reject) => client.sayHello({ name: "anchor" }, (e, r) => (e ? reject(e) : resolve(r!))))
    // Warm up until all three connections carry calls, then count whole periods.
    await eventually("3 connections", async () => {
      await hello()
      return a.observer.connections().length === 2 && b.observer.connections().length === 1
    })
    await new Promise((resolve) => setTimeout(resolve, 50))
    const replies = await Promise.all(Array.from({ length: 30 }, hello))
    expect(replies[0]!.message).toBe("hello anchor")
    expect(tally(replies.map((r) => r.server))).toEqual({ a: 20, b: 10 })
  })

  it("lets a user's service config that names a policy win (round_robin: one connection per address)", async () => {
    const [a, b] = await servers("a", "b")
    const client = makeClient(`pass:///127.0.0.1:${a!.port}#3,127.0.0.1:${b!.port}#3`, {
      "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] })
    })
    defer(() => client.close())
    await eventually("both servers answering", async () => new Set(await callMany(client, 4)).size === 2)
    expect([a!.observer.connections().length, b!.observer.connections().length]).toEqual([1, 1])
  })

  it("keeps a user's method config (timeout) and still pools when the config names no policy", async () => {
    const [a] = await servers("a")
    const client = makeClient(`pass:///127.0.0.1:${a!.port}#3`, {
      "grpc.service_config": JSON.stringify({
        methodConfig: [{ name: [{ service: "grpc_anchor.demo.Echo" }], timeout: "0.2s" }]
      })
    })
    defer(() => client.close())
    await eventually("3 connections", async () => {
      await callMany(client, 3, 3)
      return a!.observer.connections().length === 3
    })
    // The server waits 1 s; the method config's 0.2 s timeout ends the call first.
    const error = await call(client, { delayMs: 1_000, deadlineMs: 10_000 }).then(
      () => undefined,
      (e: grpc.ServiceError) => e
    )
    expect(error?.code).toBe(grpc.status.DEADLINE_EXCEEDED)
  })
})
