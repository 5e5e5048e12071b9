/**
 * A tiny echo service used by the demo, the benchmarks and the tests: no
 * .proto file, raw bytes on the wire. A request's first 4 bytes (when
 * present) ask the server to wait that many milliseconds before answering,
 * standing in for real backend work; the reply is the server's name.
 */
import * as grpc from "@grpc/grpc-js"
import { ConnectionObserver } from "grpc-anchor"
import { Address } from "grpc-anchor/core"

const identity = (buffer: Buffer): Buffer => buffer

/** The service definition, usable with `server.addService` and `makeGenericClientConstructor`. */
export const EchoService = {
  echo: {
    path: "/grpc_anchor.demo.Echo/Echo",
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity
  }
} satisfies grpc.ServiceDefinition

/** A grpc-js client class for {@link EchoService}. */
export const EchoClient = grpc.makeGenericClientConstructor(EchoService, "Echo")

/** The typed surface of an {@link EchoClient} instance. */
export interface Echo extends grpc.Client {
  echo(
    request: Buffer,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, response?: Buffer) => void
  ): grpc.ClientUnaryCall
}

/** Builds a request asking the server to wait `delayMs` before replying. */
const request = (delayMs = 0): Buffer => {
  const buffer = Buffer.alloc(4)
  buffer.writeUInt32BE(delayMs)
  return buffer
}

/** One echo call as a promise resolving to the name of the server that answered. */
export const call = (client: Echo, options: { readonly delayMs?: number; readonly deadlineMs?: number; readonly waitForReady?: boolean } = {}): Promise<string> =>
  new Promise((resolve, reject) => {
    client.echo(
      request(options.delayMs ?? 0),
      // grpc-js reads wait-for-ready from the call's metadata options.
      new grpc.Metadata(options.waitForReady !== undefined ? { waitForReady: options.waitForReady } : {}),
      { deadline: Date.now() + (options.deadlineMs ?? 10_000) },
      (error, response) => (error ? reject(error) : resolve(response!.toString("utf8")))
    )
  })

/** A running echo server: where it listens, its grpc-js server and the observer counting its connections and calls. */
export interface EchoServer {
  readonly name: string
  readonly port: number
  /** `host:port` as clients dial it (IPv6 hosts in brackets). */
  readonly address: string
  readonly server: grpc.Server
  readonly observer: ConnectionObserver
  /** Graceful by default; `force` cuts every connection at once, as a crash would. */
  readonly close: (options?: { readonly force?: boolean }) => Promise<void>
}

/** How to start an echo server: its name (the reply), where to listen (default 127.0.0.1, any free port), limits and TLS. */
export interface EchoServerOptions {
  readonly name: string
  readonly host?: string
  readonly port?: number
  /** HTTP/2 streams a client may have open per connection (grpc.max_concurrent_streams). */
  readonly maxConcurrentStreams?: number
  readonly credentials?: grpc.ServerCredentials
  /** Other grpc-js server options, e.g. `grpc.max_connection_age_ms` (the ones above win). */
  readonly serverOptions?: grpc.ServerOptions
}

/** Starts an echo server on loopback with a {@link ConnectionObserver}. */
export const startEchoServer = async (options: EchoServerOptions): Promise<EchoServer> => {
  const observer = new ConnectionObserver()
  const server = new grpc.Server({
    ...options.serverOptions,
    interceptors: [observer.interceptor],
    ...(options.maxConcurrentStreams !== undefined ? { "grpc.max_concurrent_streams": options.maxConcurrentStreams } : {})
  })
  const timers = new Set<NodeJS.Timeout>()
  const reply = Buffer.from(options.name, "utf8")
  server.addService(EchoService, {
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const delay = call.request.length >= 4 ? call.request.readUInt32BE(0) : 0
      if (delay === 0) return callback(null, reply)
      const timer = setTimeout(() => {
        timers.delete(timer)
        callback(null, reply)
      }, delay)
      timers.add(timer)
    }
  })
  const host = options.host ?? "127.0.0.1"
  const port = await observer.listen(
    server,
    Address.format({ host, port: options.port ?? 0 }),
    options.credentials ?? grpc.ServerCredentials.createInsecure()
  )
  return {
    name: options.name,
    port,
    address: Address.format({ host, port }),
    server,
    observer,
    close: async ({ force = false } = {}) => {
      await observer.close({ force })
      for (const timer of timers) clearTimeout(timer)
      timers.clear()
      if (force) {
        server.forceShutdown()
      } else {
        await new Promise<void>((resolve) => server.tryShutdown(() => resolve()))
      }
    }
  }
}
