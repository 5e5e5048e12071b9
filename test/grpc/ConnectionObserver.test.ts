/**
 * ConnectionObserver on its own: what it reports for connections it accepts,
 * for calls on ports the server bound itself, and its errors.
 */
import * as grpc from "@grpc/grpc-js"
import { describe, expect, it } from "@effect/vitest"
import { ConnectionObserver } from "../../src/adapters/grpc/ConnectionObserver.js"
import { call, EchoService } from "../../packages/cli/src/echo/echo.js"
import { callMany, cleanupAfterEach, eventually, makeClient } from "../support/grpc.js"

const defer = cleanupAfterEach()

const echoServer = (observer: ConnectionObserver) => {
  const server = new grpc.Server({ interceptors: [observer.interceptor] })
  server.addService(EchoService, {
    echo: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, Buffer.from("x"))
  })
  defer(() => server.forceShutdown())
  return server
}

describe("ConnectionObserver", () => {
  it("reports each accepted connection with its calls, groups them by client address, and sees them close", async () => {
    const observer = new ConnectionObserver()
    const server = echoServer(observer)
    const port = await observer.listen(server, "127.0.0.1:0", grpc.ServerCredentials.createInsecure())
    defer(() => observer.close({ force: true }))
    const first = makeClient(`127.0.0.1:${port}`, { "grpc.use_local_subchannel_pool": 1 })
    const second = makeClient(`127.0.0.1:${port}`, { "grpc.use_local_subchannel_pool": 1 })
    await callMany(first, 5)
    await callMany(second, 3)
    const connections = observer.connections()
    expect(connections.map((c) => c.calls).sort()).toEqual([3, 5])
    expect(connections.every((c) => c.open && c.remoteAddress === "127.0.0.1" && c.localPort === port)).toBe(true)
    expect(observer.summary()).toEqual([{ remoteAddress: "127.0.0.1", connections: 2, calls: 8 }])
    first.close()
    second.close()
    await eventually("connections closed", () => observer.connections().length === 0)
    const closed = observer.connections({ includeClosed: true })
    expect(closed.length).toBe(2)
    expect(closed.every((c) => !c.open && c.closedAt !== undefined)).toBe(true)
    expect(observer.totalCalls()).toBe(8)
  })

  it("still counts calls per peer on a port the server bound itself", async () => {
    const observer = new ConnectionObserver()
    const server = echoServer(observer)
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p)))
    )
    const client = makeClient(`127.0.0.1:${port}`, { "grpc.use_local_subchannel_pool": 1 })
    defer(() => client.close())
    expect(await call(client)).toBe("x")
    await call(client)
    expect(observer.connections().map((c) => c.calls)).toEqual([2])
  })

  it("rejects a malformed address with the address error, and a port in use with the system's error", async () => {
    const observer = new ConnectionObserver()
    const server = echoServer(observer)
    await expect(observer.listen(server, "127.0.0.1", grpc.ServerCredentials.createInsecure())).rejects.toThrow(/no port/)
    const port = await observer.listen(server, "127.0.0.1:0", grpc.ServerCredentials.createInsecure())
    defer(() => observer.close({ force: true }))
    await expect(observer.listen(server, `127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure())).rejects.toThrow(/EADDRINUSE/)
  })
})
