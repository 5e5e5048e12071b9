/**
 * An echo server as its own process, so tests, benchmarks and the demo can
 * kill a backend for real (SIGKILL) and measure client and server on
 * separate event loops.
 *
 *   node echoServerMain.js --name a --port 0 [--host 127.0.0.1] [--max-streams 4]
 *     [--etcd HOSTS --service S [--ttl SECONDS]]
 *
 * Prints one JSON line `{"ready":true,"name":...,"port":...}` when serving.
 * With `--etcd` it first registers `host:port` under `--service` in etcd
 * (Registrar, lease of `--ttl` seconds, default 10) and prints the ready line
 * once the record is in etcd (TLS and credentials from ETCD_CACERT, ETCD_CERT,
 * ETCD_KEY, ETCD_USERNAME, ETCD_PASSWORD); SIGTERM or SIGINT revokes the lease before the
 * server drains, while a SIGKILL leaves the record to expire with its lease.
 * Reads commands from stdin, one per line: `stats <id>` prints
 * `{"id":<id>,"stats":{"connections":[...],"calls":N}}`. SIGTERM drains and exits 0.
 */
import { parseArgs } from "node:util"
import { registerEndpoint } from "../promise/registerEndpoint.js"
import { startEchoServer } from "./echo.js"

const { values } = parseArgs({
  options: {
    name: { type: "string", default: "echo" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    "max-streams": { type: "string" },
    etcd: { type: "string" },
    service: { type: "string" },
    ttl: { type: "string", default: "10" }
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

const ttl = Number(values.ttl)
if (values.etcd !== undefined && (values.service === undefined || values.service.length === 0)) fail("--etcd needs --service")
if (values.etcd !== undefined && (!Number.isInteger(ttl) || ttl < 1)) fail(`--ttl must be a whole number of seconds >= 1, got ${values.ttl}`)

// stdout carries the ready line and the stats replies, one JSON line each:
// anything else (the registrar's log lines) goes to stderr.
console.log = console.error
console.info = console.error

const server = await startEchoServer({
  name: values.name!,
  host: values.host!,
  port,
  ...(maxStreams !== undefined ? { maxConcurrentStreams: maxStreams } : {})
}).catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)))

/** Bound on the first registration; the parent's own wait for the ready line is longer. */
const REGISTER_TIMEOUT_MS = 15_000

const registration =
  values.etcd === undefined
    ? undefined
    : await (async () => {
        const hostPart = values.host!.includes(":") ? `[${values.host}]` : values.host!
        let timer: NodeJS.Timeout | undefined
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`not registered in etcd within ${REGISTER_TIMEOUT_MS} ms`)), REGISTER_TIMEOUT_MS)
        })
        // TLS and credentials as the etcd resolver and the command read them.
        const env = (name: string) => (process.env[name] === undefined || process.env[name] === "" ? undefined : process.env[name])
        const [username, password, caFile, certFile, keyFile] = ["ETCD_USERNAME", "ETCD_PASSWORD", "ETCD_CACERT", "ETCD_CERT", "ETCD_KEY"].map(env)
        const tls = {
          ...(caFile === undefined ? {} : { caFile }),
          ...(certFile === undefined ? {} : { certFile }),
          ...(keyFile === undefined ? {} : { keyFile })
        }
        const pending = registerEndpoint({
          etcd: {
            hosts: values.etcd!,
            ...(username === undefined ? {} : { auth: { username, password: password ?? "" } }),
            ...(Object.keys(tls).length === 0 ? {} : { tls })
          },
          service: values.service!,
          address: `${hostPart}:${server.port}`,
          ttl
        })
        try {
          return await Promise.race([pending, timeout])
        } catch (error) {
          await server.close({ force: true })
          return fail(`registering in etcd: ${error instanceof Error ? error.message : String(error)}`)
        } finally {
          clearTimeout(timer)
        }
      })()

process.stdout.write(`${JSON.stringify({ ready: true, name: server.name, port: server.port })}\n`)

let buffered = ""
process.stdin.setEncoding("utf8")
process.stdin.on("data", (chunk: string) => {
  buffered += chunk
  let newline = buffered.indexOf("\n")
  while (newline !== -1) {
    const command = buffered.slice(0, newline).trim()
    buffered = buffered.slice(newline + 1)
    const [verb, id] = command.split(" ")
    if (verb === "stats") {
      const stats = { connections: server.observer.connections(), calls: server.observer.totalCalls() }
      process.stdout.write(`${JSON.stringify({ ...(id !== undefined ? { id: Number(id) } : {}), stats })}\n`)
    }
    newline = buffered.indexOf("\n")
  }
})
// The parent going away (stdin closed) ends this server too, so a crashed
// test run leaves no orphan behind.
process.stdin.on("end", () => void shutdown())

const shutdown = async (): Promise<void> => {
  // Deregister first, so clients stop dialling before the server drains.
  await registration?.close()
  await server.close()
  process.exit(0)
}
process.once("SIGTERM", () => void shutdown())
process.once("SIGINT", () => void shutdown())
