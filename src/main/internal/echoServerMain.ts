/**
 * An echo server as its own process, so tests, benchmarks and the demo can
 * kill a backend for real (SIGKILL) and measure client and server on
 * separate event loops.
 *
 *   node echoServerMain.js --name a --port 0 [--host 127.0.0.1] [--max-streams 4]
 *
 * Prints one JSON line `{"ready":true,"name":...,"port":...}` when serving.
 * Reads commands from stdin, one per line: `stats` prints
 * `{"stats":{"connections":[...],"calls":N}}`. SIGTERM drains and exits 0.
 */
import { parseArgs } from "node:util"
import { startEchoServer } from "./echo.js"

const { values } = parseArgs({
  options: {
    name: { type: "string", default: "echo" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    "max-streams": { type: "string" }
  }
})

const fail = (message: string): never => {
  process.stderr.write(`echo server: ${message}\n`)
  process.exit(2)
}

const port = Number(values.port)
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be 0..65535, got ${values.port}`)
const maxStreams = values["max-streams"] === undefined ? undefined : Number(values["max-streams"])
if (maxStreams !== undefined && (!Number.isInteger(maxStreams) || maxStreams < 1)) {
  fail(`--max-streams must be a positive whole number, got ${values["max-streams"]}`)
}

const server = await startEchoServer({
  name: values.name!,
  host: values.host!,
  port,
  ...(maxStreams !== undefined ? { maxConcurrentStreams: maxStreams } : {})
}).catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)))

process.stdout.write(`${JSON.stringify({ ready: true, name: server.name, port: server.port })}\n`)

let buffered = ""
process.stdin.setEncoding("utf8")
process.stdin.on("data", (chunk: string) => {
  buffered += chunk
  let newline = buffered.indexOf("\n")
  while (newline !== -1) {
    const command = buffered.slice(0, newline).trim()
    buffered = buffered.slice(newline + 1)
    if (command === "stats") {
      const stats = { connections: server.observer.connections(), calls: server.observer.totalCalls() }
      process.stdout.write(`${JSON.stringify({ stats })}\n`)
    }
    newline = buffered.indexOf("\n")
  }
})
// The parent going away (stdin closed) ends this server too, so a crashed
// test run leaves no orphan behind.
process.stdin.on("end", () => void shutdown())

const shutdown = async (): Promise<void> => {
  await server.close()
  process.exit(0)
}
process.once("SIGTERM", () => void shutdown())
process.once("SIGINT", () => void shutdown())
