/**
 * The thread of the peer proxies (see peerProxy.ts, which starts it): one
 * TCP listener per etcd member on 127.0.0.1, relaying to that member's real
 * peer port, and the isolation rules.
 *
 * It runs in a worker thread so that raft traffic (heartbeats every 25 ms,
 * an election timeout of 250 ms) never waits on the test's own event loop,
 * which carries the system under test. Node runs it as TypeScript by type
 * stripping: erasable syntax only, and `node:` imports only.
 *
 * Which member dialled a connection: on accept, the remote port leads to the
 * connecting socket's inode in /proc/net/tcp(6), and the inode to the etcd
 * process whose /proc/<pid>/fd holds it. Members are found by their command
 * line (`--initial-cluster-token=<token>` and `--name=<name>`), so a member
 * restarted under a new pid is found again without being told.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import { parentPort, workerData } from "node:worker_threads"

/** What peerProxy.ts passes as `workerData`. */
export interface PeerProxyWorkerData {
  /** The cluster's `--initial-cluster-token`. */
  readonly token: string
  /** Member names (`--name`), by index. */
  readonly names: ReadonlyArray<string>
  /** Each member's real peer listen port, by index. */
  readonly targets: ReadonlyArray<number>
}

/** A command from peerProxy.ts; every one is answered with a {@link PeerProxyReply} of the same id. */
export type PeerProxyCommand =
  | { readonly id: number; readonly op: "isolate"; readonly index: number }
  | { readonly id: number; readonly op: "heal"; readonly index: number }
  | { readonly id: number; readonly op: "stats" }
  | { readonly id: number; readonly op: "close" }

/** Counters of the proxies since they started. */
export interface PeerProxyStats {
  /** Connections accepted. */
  readonly accepted: number
  /** Accepted connections whose dialling member could not be found in /proc. */
  readonly unknown: number
  /** Connections refused at accept because an end is isolated. */
  readonly refused: number
  /** Live connections cut by `isolate`. */
  readonly cut: number
  /** Connections relayed now, as `from->to` member indexes (`?` when unknown). */
  readonly live: ReadonlyArray<string>
  /** Isolated member indexes. */
  readonly isolated: ReadonlyArray<number>
}

/** What the thread posts: its ports once listening (or why not), and the answer to each command. */
export type PeerProxyReply =
  | { readonly op: "ready"; readonly ports: ReadonlyArray<number> }
  | { readonly op: "error"; readonly message: string }
  | { readonly id: number; readonly op: "done"; readonly stats: PeerProxyStats }

interface Relay {
  readonly from: number | undefined
  readonly to: number
  readonly inbound: net.Socket
  readonly outbound: net.Socket
}

const data = workerData as PeerProxyWorkerData
const port = parentPort
if (port === null) throw new Error("peerProxyWorker.ts runs as a worker thread (see peerProxy.ts)")

const isolated = new Set<number>()
const relays = new Set<Relay>()
const counters = { accepted: 0, unknown: 0, refused: 0, cut: 0 }
/** pid -> member index, refreshed from /proc when a socket's owner is not among them. */
let pids = new Map<number, number>()

/** The port of a /proc/net/tcp address column (`0100007F:1F90`). */
const portOf = (column: string): number => parseInt(column.slice(column.lastIndexOf(":") + 1), 16)

/** The inode of the socket whose local port is `local` and remote port `remote`, from /proc/net/tcp(6). */
const inodeOf = (local: number, remote: number): string | undefined => {
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string
    try {
      text = fs.readFileSync(table, "utf8")
    } catch {
      continue
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/)
      if (cols.length < 10) continue
      if (portOf(cols[1]!) === local && portOf(cols[2]!) === remote && cols[9] !== "0") return cols[9]
    }
  }
  return undefined
}

const holds = (pid: number, link: string): boolean => {
  let fds: Array<string>
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`)
  } catch {
    return false
  }
  for (const fd of fds) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === link) return true
    } catch {
      // closed meanwhile
    }
  }
  return false
}

/** The etcd processes of this cluster now: pid -> member index, from their command lines. */
const scanMembers = (): Map<number, number> => {
  const found = new Map<number, number>()
  const tokenArg = `--initial-cluster-token=${data.token}`
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    let args: Array<string>
    try {
      args = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0")
    } catch {
      continue
    }
    if (!args.includes(tokenArg)) continue
    const index = data.names.findIndex((name) => args.includes(`--name=${name}`))
    if (index >= 0) found.set(Number(entry), index)
  }
  return found
}

/** The member that dialled `socket` (undefined when not found). */
const dialler = (socket: net.Socket, listenPort: number): number | undefined => {
  const remote = socket.remotePort
  if (remote === undefined) return undefined
  const inode = inodeOf(remote, listenPort)
  if (inode === undefined) return undefined
  const link = `socket:[${inode}]`
  for (const [pid, index] of pids) if (holds(pid, link)) return index
  pids = scanMembers()
  for (const [pid, index] of pids) if (holds(pid, link)) return index
  return undefined
}

/** An unknown dialler counts as isolated while anyone is: it may be the isolated member. */
const blocked = (from: number | undefined, to: number): boolean =>
  isolated.has(to) || (from === undefined ? isolated.size > 0 : isolated.has(from))

const cut = (relay: Relay): void => {
  relays.delete(relay)
  relay.inbound.destroy()
  relay.outbound.destroy()
}

const servers = data.targets.map((target, to) => {
  const server = net.createServer({ pauseOnConnect: true }, (inbound) => {
    counters.accepted++
    const address = server.address()
    const from = typeof address === "object" && address !== null ? dialler(inbound, address.port) : undefined
    if (from === undefined) counters.unknown++
    if (blocked(from, to)) {
      counters.refused++
      inbound.resetAndDestroy()
      return
    }
    const outbound = net.connect({ host: "127.0.0.1", port: target })
    const relay: Relay = { from, to, inbound, outbound }
    relays.add(relay)
    const end = () => cut(relay)
    inbound.on("error", end).on("close", end)
    outbound.on("error", end).on("close", end)
    inbound.pipe(outbound)
    outbound.pipe(inbound)
    inbound.resume()
  })
  return server
})

const stats = (): PeerProxyStats => ({
  ...counters,
  live: [...relays].map((r) => `${r.from ?? "?"}->${r.to}`),
  isolated: [...isolated].sort()
})

const close = async (): Promise<void> => {
  for (const relay of [...relays]) cut(relay)
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))))
}

port.on("message", (command: PeerProxyCommand) => {
  const done = () => port.postMessage({ id: command.id, op: "done", stats: stats() } satisfies PeerProxyReply)
  switch (command.op) {
    case "isolate":
      isolated.add(command.index)
      for (const relay of [...relays]) {
        if (relay.to === command.index || relay.from === command.index || relay.from === undefined) {
          counters.cut++
          cut(relay)
        }
      }
      return done()
    case "heal":
      isolated.delete(command.index)
      return done()
    case "stats":
      return done()
    case "close":
      void close().then(() => {
        done()
        port.close()
      })
      return
  }
})

Promise.all(
  servers.map(
    (server) =>
      new Promise<number>((resolve, reject) => {
        server.once("error", reject)
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          if (typeof address === "object" && address !== null) resolve(address.port)
          else reject(new Error("no port"))
        })
      })
  )
).then(
  (ports) => port.postMessage({ op: "ready", ports } satisfies PeerProxyReply),
  (error: unknown) => port.postMessage({ op: "error", message: String(error) } satisfies PeerProxyReply)
)
