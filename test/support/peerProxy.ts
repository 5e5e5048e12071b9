/**
 * TCP proxies for the peer traffic of a test etcd cluster, so a test can cut
 * one member off from its peers while clients still reach it (a network
 * partition between etcd members; see `EtcdCluster.isolate`).
 *
 * Each member advertises its proxy's port as its peer URL; the proxy relays
 * to the member's real peer listen port. Raft traffic flows over connections
 * dialled by either side, so the proxies find which member dialled each
 * connection they accept (from /proc: remote port -> socket inode -> the
 * member process holding it) and `isolate(i)` cuts and refuses every relayed
 * connection from member i or to it. 127.0.0.1 only; Linux only.
 *
 * The proxies run in a worker thread (peerProxyWorker.ts): raft heartbeats
 * must not wait on the test's event loop.
 *
 * @example
 * ```ts
 * const proxies = await startPeerProxies({ token, names: ["m0", "m1", "m2"], targets: [peer0, peer1, peer2] })
 * proxies.ports // advertise http://127.0.0.1:<ports[i]> as member i's peer URL
 * await proxies.isolate(1)
 * await proxies.heal(1)
 * await proxies.close()
 * ```
 */
import { Worker } from "node:worker_threads"
import type { PeerProxyCommand, PeerProxyReply, PeerProxyStats, PeerProxyWorkerData } from "./peerProxyWorker.js"

export type { PeerProxyStats } from "./peerProxyWorker.js"

const START_TIMEOUT_MS = 10_000
const COMMAND_TIMEOUT_MS = 5_000

/** The running proxies of one cluster. */
export interface PeerProxies {
  /** The port member i advertises to its peers (its proxy's), by index. */
  readonly ports: ReadonlyArray<number>
  /** Cuts every relayed connection from or to member `index`, and refuses new ones, until {@link heal}. */
  readonly isolate: (index: number) => Promise<PeerProxyStats>
  /** Relays member `index`'s connections again (its peers redial on their own). */
  readonly heal: (index: number) => Promise<PeerProxyStats>
  /** Counters since the start, and the connections relayed now. */
  readonly stats: () => Promise<PeerProxyStats>
  /** Cuts everything, closes the listeners and ends the thread. Safe to call twice. */
  readonly close: () => Promise<void>
}

/** A command before it gets its id. */
type Unsent<C> = C extends unknown ? Omit<C, "id"> : never

const withTimeout = <A>(what: string, ms: number, promise: Promise<A>): Promise<A> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`peer proxies: no answer to ${what} within ${ms} ms`)), ms)
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(error)
      }
    )
  })

/** Starts one proxy per member (listening on free loopback ports) in a worker thread. */
export const startPeerProxies = async (data: PeerProxyWorkerData): Promise<PeerProxies> => {
  const worker = new Worker(new URL("./peerProxyWorker.ts", import.meta.url), { workerData: data })
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()))
  const pending = new Map<number, (stats: PeerProxyStats) => void>()
  let failure: Error | undefined
  worker.on("error", (error) => {
    failure = error
  })
  let nextId = 0
  const ready = new Promise<ReadonlyArray<number>>((resolve, reject) => {
    worker.on("message", (reply: PeerProxyReply) => {
      if (reply.op === "ready") resolve(reply.ports)
      else if (reply.op === "error") reject(new Error(`peer proxies: ${reply.message}`))
      else pending.get(reply.id)?.(reply.stats)
    })
    worker.once("error", reject)
    void exited.then(() => reject(new Error("peer proxies: the worker exited while starting")))
  })
  let ports: ReadonlyArray<number>
  try {
    ports = await withTimeout("start", START_TIMEOUT_MS, ready)
  } catch (error) {
    await worker.terminate()
    throw error
  }

  const send = (command: Unsent<PeerProxyCommand>, what: string): Promise<PeerProxyStats> => {
    if (failure !== undefined) return Promise.reject(failure)
    const id = nextId++
    const answered = new Promise<PeerProxyStats>((resolve) => pending.set(id, resolve))
    worker.postMessage({ ...command, id } as PeerProxyCommand)
    return withTimeout(what, COMMAND_TIMEOUT_MS, answered).finally(() => pending.delete(id))
  }

  let closing: Promise<void> | undefined
  return {
    ports,
    isolate: (index) => send({ op: "isolate", index }, `isolate(${index})`),
    heal: (index) => send({ op: "heal", index }, `heal(${index})`),
    stats: () => send({ op: "stats" }, "stats"),
    close: () =>
      (closing ??= (async () => {
        try {
          await send({ op: "close" }, "close")
          await withTimeout("exit", COMMAND_TIMEOUT_MS, exited)
        } catch {
          // The worker holds nothing the terminate below does not release.
        } finally {
          await worker.terminate()
        }
      })())
  }
}
