/**
 * One echo server process listening on many loopback ports (one grpc-js
 * server, one ConnectionObserver listener per port), standing in for many
 * backends in the discovery benchmark.
 *
 *   node --import tsx bench/support/manyPortsServer.ts --ports 1000
 *
 * Prints `{"ports":[...]}` once listening; SIGTERM or stdin closing ends it.
 */
import * as grpc from "@grpc/grpc-js"
import { parseArgs } from "node:util"
import { ConnectionObserver } from "../../src/adapters/grpc/ConnectionObserver.js"
import { EchoService } from "../../packages/cli/src/echo/echo.js"

const { values } = parseArgs({ options: { ports: { type: "string", default: "1000" } } })
const count = Number(values.ports)
if (!Number.isInteger(count) || count < 1 || count > 10_000) {
  process.stderr.write(`--ports must be 1..10000, got ${values.ports}\n`)
  process.exit(2)
}

const observer = new ConnectionObserver()
const server = new grpc.Server({ interceptors: [observer.interceptor] })
server.addService(EchoService, {
  echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) =>
    callback(null, Buffer.from(String(call.getPeer())))
})
const credentials = grpc.ServerCredentials.createInsecure()
const ports: Array<number> = []
for (let i = 0; i < count; i++) ports.push(await observer.listen(server, "127.0.0.1:0", credentials))
process.stdout.write(`${JSON.stringify({ ports })}\n`)

const stop = async () => {
  await observer.close({ force: true })
  server.forceShutdown()
  process.exit(0)
}
process.stdin.resume()
process.stdin.on("end", () => void stop())
process.once("SIGTERM", () => void stop())
