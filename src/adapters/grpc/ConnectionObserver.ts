/**
 * Server-side counterpart of the pool: sees every client connection a
 * grpc-js server accepts and the calls each one carried, so an operator (and
 * grpc-anchor's own tests) can check from the server that a client really
 * opened N connections and spread its calls over them.
 *
 * The observer accepts TCP connections itself and hands each one to the
 * grpc-js server through the server's public connection injector, so the
 * server behaves exactly as if it had bound the port; a server interceptor
 * counts calls per connection.
 *
 * @example
 * ```ts
 * const observer = new ConnectionObserver()
 * const server = new grpc.Server({ interceptors: [observer.interceptor] })
 * server.addService(...)
 * const port = await observer.listen(server, "127.0.0.1:0", grpc.ServerCredentials.createInsecure())
 * observer.summary() // [{ remoteAddress: "127.0.0.1", connections: 2, calls: 1000 }]
 * ```
 *
 * @since 0.1.0
 */
import * as grpc from "@grpc/grpc-js"
import * as net from "node:net"
import * as Result from "effect/Result"
import * as Address from "../../core/Address.js"

/**
 * One client connection as the server saw it.
 *
 * @example
 * ```ts
 * // { id: 1, remoteAddress: "127.0.0.1", remotePort: 51234, localPort: 9080, open: true, calls: 500, openedAt, closedAt: undefined }
 * const busiest = observer.connections().reduce((a, b) => (b.calls > a.calls ? b : a))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface ObservedConnection {
  readonly id: number
  readonly remoteAddress: string
  readonly remotePort: number
  /** The local port it arrived on (an observer may listen on several). */
  readonly localPort: number
  readonly open: boolean
  /** Calls started on this connection. */
  readonly calls: number
  readonly openedAt: number
  readonly closedAt: number | undefined
}

/**
 * Live connections and calls per remote address.
 *
 * @example
 * ```ts
 * observer.summary() // [{ remoteAddress: "127.0.0.1", connections: 2, calls: 1000 }]
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface RemoteSummary {
  readonly remoteAddress: string
  readonly connections: number
  readonly calls: number
}

type MutableConnection = {
  -readonly [K in keyof ObservedConnection]: ObservedConnection[K]
}

interface Listener {
  readonly server: net.Server
  readonly injector: grpc.ConnectionInjector
  readonly sockets: Set<net.Socket>
  readonly port: number
}

/** Closed connections kept for reporting, beyond which the oldest are dropped. */
const CLOSED_HISTORY = 10_000

/** Like `Address.parse`, but port 0 (any free port) is fine for listening. */
const bindAddress = (address: string): Result.Result<Address.Address, Address.AddressError> => {
  const anyPort = address.endsWith(":0")
  return Result.map(Address.parse(anyPort ? `${address.slice(0, -2)}:1` : address), (parsed) => ({
    host: parsed.host,
    port: anyPort ? 0 : parsed.port
  }))
}

/** grpc-js's `call.getPeer()` text for a socket. */
const peerOf = (remoteAddress: string | undefined, remotePort: number | undefined): string =>
  remotePort ? `${remoteAddress}:${remotePort}` : `${remoteAddress}`

/**
 * Accepts a grpc-js server's connections and counts the calls each carried
 * (see the module doc).
 *
 * @example
 * ```ts
 * const observer = new ConnectionObserver()
 * const server = new grpc.Server({ interceptors: [observer.interceptor] })
 * const port = await observer.listen(server, "127.0.0.1:0", grpc.ServerCredentials.createInsecure())
 * await observer.close()
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export class ConnectionObserver {
  private nextId = 1
  private readonly live = new Map<string, MutableConnection>()
  private readonly closed: Array<MutableConnection> = []
  private readonly listeners = new Set<Listener>()
  /** Calls from peers that did not arrive through `listen` (e.g. a port bound with bindAsync). */
  private readonly unobserved = new Map<string, MutableConnection>()

  /**
   * A grpc-js server interceptor that counts calls per connection. Pass it
   * in `new grpc.Server({ interceptors: [observer.interceptor] })`.
   */
  readonly interceptor: grpc.ServerInterceptor = (_method, call) => {
    const peer = call.getPeer()
    const connection = this.live.get(peer) ?? this.unobservedConnection(peer)
    connection.calls++
    return new grpc.ServerInterceptingCall(call)
  }

  /**
   * Accepts connections on `address` (`host:port`, port 0 for any free port)
   * and serves them with `server`. Resolves to the bound port.
   */
  listen(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
    const parsed = bindAddress(address)
    if (Result.isFailure(parsed)) return Promise.reject(parsed.failure)
    const { host, port } = parsed.success
    const injector = server.createConnectionInjector(credentials)
    const sockets = new Set<net.Socket>()
    const tcp = net.createServer({ noDelay: true }, (socket) => {
      sockets.add(socket)
      const connection = this.opened(socket)
      socket.once("close", () => {
        sockets.delete(socket)
        this.closedConnection(connection)
      })
      injector.injectConnection(socket)
    })
    return new Promise<number>((resolve, reject) => {
      tcp.once("error", (error) => {
        injector.destroy()
        reject(error)
      })
      tcp.listen({ host, port, exclusive: true }, () => {
        const bound = (tcp.address() as net.AddressInfo).port
        this.listeners.add({ server: tcp, injector, sockets, port: bound })
        resolve(bound)
      })
    })
  }

  /** Every live connection, and the closed ones too when asked. */
  connections(options: { readonly includeClosed?: boolean } = {}): ReadonlyArray<ObservedConnection> {
    const live = [...this.live.values(), ...this.unobserved.values()].map((c) => ({ ...c }))
    return options.includeClosed ? [...live, ...this.closed.map((c) => ({ ...c }))] : live
  }

  /** Live connections and their calls, grouped by the client's address. */
  summary(): ReadonlyArray<RemoteSummary> {
    const byRemote = new Map<string, { connections: number; calls: number }>()
    for (const connection of this.connections()) {
      const entry = byRemote.get(connection.remoteAddress) ?? { connections: 0, calls: 0 }
      entry.connections++
      entry.calls += connection.calls
      byRemote.set(connection.remoteAddress, entry)
    }
    return [...byRemote].map(([remoteAddress, entry]) => ({ remoteAddress, ...entry }))
  }

  /** Calls seen on every connection, live or closed. */
  totalCalls(): number {
    return this.connections({ includeClosed: true }).reduce((sum, c) => sum + c.calls, 0)
  }

  /**
   * Stops accepting connections. With `force`, open connections are cut at
   * once (as when a server process dies); otherwise they are drained: calls
   * in flight finish, clients are told to go elsewhere.
   */
  close(options: { readonly force?: boolean } = {}): Promise<void> {
    const listeners = [...this.listeners]
    this.listeners.clear()
    return Promise.all(
      listeners.map(
        (listener) =>
          new Promise<void>((resolve) => {
            listener.server.close(() => resolve())
            if (options.force) {
              for (const socket of listener.sockets) socket.destroy()
              listener.injector.destroy()
            } else {
              listener.injector.drain(1_000)
              listener.injector.destroy()
            }
          })
      )
    ).then(() => undefined)
  }

  private newConnection(remoteAddress: string, remotePort: number, localPort: number): MutableConnection {
    return { id: this.nextId++, remoteAddress, remotePort, localPort, open: true, calls: 0, openedAt: Date.now(), closedAt: undefined }
  }

  private opened(socket: net.Socket): MutableConnection {
    const connection = this.newConnection(socket.remoteAddress ?? "unknown", socket.remotePort ?? 0, socket.localPort ?? 0)
    this.live.set(peerOf(socket.remoteAddress, socket.remotePort), connection)
    return connection
  }

  private closedConnection(connection: MutableConnection): void {
    const peer = peerOf(connection.remoteAddress, connection.remotePort)
    if (this.live.get(peer) === connection) this.live.delete(peer)
    connection.open = false
    connection.closedAt = Date.now()
    this.closed.push(connection)
    if (this.closed.length > CLOSED_HISTORY) this.closed.shift()
  }

  private unobservedConnection(peer: string): MutableConnection {
    let connection = this.unobserved.get(peer)
    if (connection === undefined) {
      const colon = peer.lastIndexOf(":")
      connection = colon === -1
        ? this.newConnection(peer, 0, 0)
        : this.newConnection(peer.slice(0, colon), Number(peer.slice(colon + 1)), 0)
      this.unobserved.set(peer, connection)
      // Closes of these connections are invisible here: bound the map instead.
      if (this.unobserved.size > CLOSED_HISTORY) this.unobserved.delete(this.unobserved.keys().next().value!)
    }
    return connection
  }
}
