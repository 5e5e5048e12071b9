/**
 * Throwaway etcd servers for integration tests: one member or a cluster of
 * three, on free loopback ports (127.0.0.1 only), each with its own temporary
 * data dir. Every wait is bounded; every process is killed when the test
 * process exits, even when it is killed itself (a reaper process per member
 * SIGKILLs it when our end of its stdin pipe closes).
 *
 * @example
 * ```ts
 * const etcd = await startEtcd()
 * await etcd.ctl(["put", "svc/x", "value"])
 * await etcd.restart({ wipe: true })
 * await etcd.stop()
 * // TLS with client certificates (https client URLs, --client-cert-auth):
 * const secure = await startEtcd({ tls: { certFile, keyFile, trustedCaFile, client: { caFile, certFile, keyFile } } })
 * ```
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import * as https from "node:https"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as Option from "effect/Option"
import * as References from "effect/References"
import * as Discovery from "../../src/adapters/etcd/Discovery.js"
import type { EtcdError } from "../../src/adapters/etcd/Etcd.js"
import type * as Registrar from "../../src/adapters/etcd/Registrar.js"
import { memberStatus } from "./etcdGateway.js"
import { eventually } from "./eventually.js"
import { type PeerProxies, type PeerProxyStats, startPeerProxies } from "./peerProxy.js"
import type * as Scope from "effect/Scope"

const START_TIMEOUT_MS = 20_000
const STOP_TIMEOUT_MS = 5_000
const CTL_TIMEOUT_MS = 15_000

/** Every etcd process started by this module that may still be running. */
const running = new Set<ChildProcess>()
let exitHookInstalled = false
const installExitHook = () => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on("exit", () => {
    for (const child of running) {
      try {
        child.kill("SIGKILL")
      } catch {
        // already gone
      }
    }
  })
}

/** A free TCP port on 127.0.0.1 (the OS picks it; we release it right away). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))))
    })
  })

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * TLS of an etcd started by {@link startEtcd}: its client URLs are
 * `https://127.0.0.1:PORT`, it presents `certFile`/`keyFile`, and with
 * `clientCertAuth` (the default) it requires a client certificate signed by
 * `trustedCaFile`. `client` is what etcdctl and the health check present.
 */
export interface EtcdTls {
  readonly certFile: string
  readonly keyFile: string
  readonly trustedCaFile: string
  /** `--client-cert-auth` (default true). */
  readonly clientCertAuth?: boolean
  readonly client: ClientTls
}

/** PEM files a client presents to a TLS etcd (etcdctl's `--cacert`, `--cert`, `--key`). */
export interface ClientTls {
  readonly caFile: string
  readonly certFile: string
  readonly keyFile: string
}

/** GET http(s)://127.0.0.1:port/health and whether etcd says it is healthy (has a leader). */
const healthy = (port: number, tls?: ClientTls): Promise<boolean> =>
  new Promise((resolve) => {
    const options = { host: "127.0.0.1", port, path: "/health", timeout: 1_000 }
    const onResponse = (response: http.IncomingMessage) => {
      let body = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => (body += chunk))
      response.on("end", () => resolve(response.statusCode === 200 && body.includes('"health":"true"')))
      response.on("error", () => resolve(false))
    }
    const request =
      tls === undefined
        ? http.get(options, onResponse)
        : https.get(
            {
              ...options,
              ca: fs.readFileSync(tls.caFile),
              cert: fs.readFileSync(tls.certFile),
              key: fs.readFileSync(tls.keyFile),
              agent: false
            },
            onResponse
          )
    request.on("timeout", () => request.destroy())
    request.on("error", () => resolve(false))
  })

const exited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null

const waitExit = (child: ChildProcess, ms: number): Promise<boolean> =>
  exited(child)
    ? Promise.resolve(true)
    : new Promise((resolve) => {
        const timer = setTimeout(() => {
          child.off("exit", onExit)
          resolve(false)
        }, ms)
        const onExit = () => {
          clearTimeout(timer)
          resolve(true)
        }
        child.once("exit", onExit)
      })

/** `etcdctl` bound to a server's endpoints. */
export type Ctl = (args: ReadonlyArray<string>, options?: CtlOptions) => Promise<CtlResult>

/** `input` goes to etcdctl's stdin, `user` is `name:password`, `tls` the client's PEM files. */
export interface CtlOptions {
  readonly input?: string | Buffer
  readonly user?: string
  readonly tls?: ClientTls
}

/** What `etcdctl` printed, and how it exited. */
export interface CtlResult {
  readonly stdout: string
  readonly stderr: string
  readonly code: number
}

/**
 * Runs `etcdctl` (API v3) against `endpoints`, bounded by a timeout; `input`
 * goes to its stdin (`etcdctl put KEY` reads the value from there, so values
 * may hold any bytes).
 */
export const etcdctl = (
  endpoints: ReadonlyArray<string>,
  args: ReadonlyArray<string>,
  options?: CtlOptions
): Promise<CtlResult> =>
  new Promise((resolve) => {
    const argv = [`--endpoints=${endpoints.join(",")}`, "--dial-timeout=2s", "--command-timeout=10s"]
    if (options?.user !== undefined) argv.push(`--user=${options.user}`)
    if (options?.tls !== undefined) {
      argv.push(`--cacert=${options.tls.caFile}`, `--cert=${options.tls.certFile}`, `--key=${options.tls.keyFile}`)
    }
    const child = execFile(
      "etcdctl",
      [...argv, ...args],
      { env: { ...process.env, ETCDCTL_API: "3" }, timeout: CTL_TIMEOUT_MS, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
        resolve({ stdout: String(stdout), stderr: String(stderr), code })
      }
    )
    child.stdin?.on("error", () => undefined)
    child.stdin?.end(options?.input ?? "")
  })

/** Like {@link etcdctl}, but throws with etcdctl's stderr unless it exited 0. */
export const etcdctlOk = async (
  endpoints: ReadonlyArray<string>,
  args: ReadonlyArray<string>,
  options?: CtlOptions
): Promise<string> => {
  const result = await etcdctl(endpoints, args, options)
  if (result.code !== 0) throw new Error(`etcdctl ${args.join(" ")} failed (${result.code}): ${result.stderr.trim()}`)
  return result.stdout
}

interface MemberSpec {
  readonly name: string
  readonly clientPort: number
  /** The peer port the member advertises (its proxy's in a cluster with peer proxies). */
  readonly peerPort: number
  /** The peer port it listens on, when a proxy stands in front of it (default: `peerPort`). */
  readonly peerListenPort?: number
}

/** One etcd process of a server or cluster. */
export class EtcdMember {
  private child: ChildProcess | undefined
  private reaper: ChildProcess | undefined
  private started = 0
  private stopped = false

  constructor(
    readonly spec: MemberSpec,
    private readonly initialCluster: string,
    private readonly token: string,
    readonly dataDir: string,
    private readonly logFile: string,
    readonly tls?: EtcdTls
  ) {}

  /** `127.0.0.1:<client port>` */
  get endpoint(): string {
    return `127.0.0.1:${this.spec.clientPort}`
  }

  /** The client URL: `http://127.0.0.1:<client port>`, or `https://` with TLS. */
  get url(): string {
    return `${this.tls === undefined ? "http" : "https"}://${this.endpoint}`
  }

  get running(): boolean {
    return this.child !== undefined && !exited(this.child)
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined
  }

  /** Whether it is SIGSTOPped by {@link pause} (and not resumed since). */
  get paused(): boolean {
    return this.running && this.stopped
  }

  /** Starts the process (keeping any data in its data dir) without waiting for health. */
  spawn(): void {
    if (this.running) throw new Error(`etcd ${this.spec.name} is already running`)
    installExitHook()
    fs.mkdirSync(path.dirname(this.dataDir), { recursive: true })
    const log = fs.openSync(this.logFile, "a")
    const peer = `http://127.0.0.1:${this.spec.peerPort}`
    const peerListen = `http://127.0.0.1:${this.spec.peerListenPort ?? this.spec.peerPort}`
    const client = this.url
    const tls =
      this.tls === undefined
        ? []
        : [
            `--cert-file=${this.tls.certFile}`,
            `--key-file=${this.tls.keyFile}`,
            `--trusted-ca-file=${this.tls.trustedCaFile}`,
            ...(this.tls.clientCertAuth === false ? [] : ["--client-cert-auth"])
          ]
    const child = spawn(
      "etcd",
      [
        ...tls,
        `--name=${this.spec.name}`,
        `--data-dir=${this.dataDir}`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peerListen}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=${this.initialCluster}`,
        `--initial-cluster-token=${this.token}`,
        "--initial-cluster-state=new",
        "--unsafe-no-fsync",
        "--heartbeat-interval=25",
        "--election-timeout=250",
        "--logger=zap",
        "--log-level=warn",
        "--enable-v2=false"
      ],
      { stdio: ["ignore", log, log] }
    )
    fs.closeSync(log)
    running.add(child)
    child.once("exit", () => running.delete(child))
    this.child = child
    this.stopped = false
    this.started++
    // If this test process dies without running its exit hooks (SIGKILL, OOM),
    // the pipe to the reaper closes, `read` returns and the reaper kills etcd.
    const reaper = spawn("sh", ["-c", `read _ignored; kill -9 ${child.pid} 2>/dev/null`], {
      stdio: ["pipe", "ignore", "ignore"],
      detached: true
    })
    reaper.stdin?.on("error", () => undefined)
    ;(reaper.stdin as unknown as net.Socket | null)?.unref?.()
    reaper.unref()
    this.reaper = reaper
  }

  /** Resolves once `/health` says true; throws with the log tail after `timeoutMs` or if etcd exits. */
  async waitHealthy(timeoutMs = START_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (let attempt = 0; attempt < 1_000 && Date.now() < deadline; attempt++) {
      if (!this.running) throw new Error(`etcd ${this.spec.name} exited while starting:\n${this.logTail()}`)
      if (await healthy(this.spec.clientPort, this.tls?.client)) return
      await sleep(Math.min(25 * (attempt + 1), 200))
    }
    throw new Error(`etcd ${this.spec.name} not healthy within ${timeoutMs} ms:\n${this.logTail()}`)
  }

  /** The last lines of this member's log. */
  logTail(lines = 30): string {
    try {
      return fs.readFileSync(this.logFile, "utf8").split("\n").slice(-lines).join("\n")
    } catch {
      return "(no log)"
    }
  }

  private dropReaper(): void {
    // Kill the reaper first so it can never kill a recycled pid later.
    try {
      this.reaper?.kill("SIGKILL")
    } catch {
      // gone
    }
    this.reaper = undefined
  }

  /** SIGKILL, as a crash. Resolves when the process is gone. */
  async kill(): Promise<void> {
    const child = this.child
    if (child === undefined || exited(child)) return
    this.dropReaper()
    child.kill("SIGKILL")
    if (!(await waitExit(child, STOP_TIMEOUT_MS))) throw new Error(`etcd ${this.spec.name} survived SIGKILL`)
  }

  /** SIGSTOP: the process hangs (its sockets stay open, nothing is answered) until {@link resume}. */
  pause(): void {
    const child = this.child
    if (child === undefined || exited(child)) throw new Error(`etcd ${this.spec.name} is not running`)
    child.kill("SIGSTOP")
    this.stopped = true
    // The signal is delivered asynchronously: return only once the process
    // is stopped ("T" in /proc/PID/stat), so nothing it answers after this
    // call returns. Bounded: at most 1,000 checks 1 ms apart.
    const pause = new Int32Array(new SharedArrayBuffer(4))
    for (let i = 0; i < 1_000; i++) {
      let state = ""
      try {
        state = /^\d+ \(.*\) (\S)/.exec(fs.readFileSync(`/proc/${child.pid}/stat`, "utf8"))?.[1] ?? ""
      } catch {
        return
      }
      if (state === "T" || state === "t") return
      Atomics.wait(pause, 0, 0, 1)
    }
  }

  /** SIGCONT after {@link pause}; harmless when it is not paused. */
  resume(): void {
    const child = this.child
    if (child !== undefined && !exited(child)) child.kill("SIGCONT")
    this.stopped = false
  }

  /** SIGTERM, then SIGKILL after a bound. */
  async stop(): Promise<void> {
    const child = this.child
    if (child === undefined || exited(child)) return
    this.dropReaper()
    // A stopped process would not act on SIGTERM until continued.
    child.kill("SIGCONT")
    child.kill("SIGTERM")
    if (await waitExit(child, STOP_TIMEOUT_MS)) return
    child.kill("SIGKILL")
    if (!(await waitExit(child, STOP_TIMEOUT_MS))) throw new Error(`etcd ${this.spec.name} survived SIGKILL`)
  }

  /** Removes the data dir (the member must be stopped). */
  wipe(): void {
    if (this.running) throw new Error(`etcd ${this.spec.name} is running; stop it before wiping`)
    fs.rmSync(this.dataDir, { recursive: true, force: true })
  }
}

type Started = { readonly root: string; readonly members: ReadonlyArray<EtcdMember>; readonly proxies: PeerProxies | undefined }

/** Start attempts when a port found free was taken by another process before etcd bound it. */
const START_ATTEMPTS = 3

/**
 * Starts `size` members on free loopback ports. A port is free when it is
 * found and may be taken before etcd binds it (other test files run beside
 * this one): then the members are killed and started again on new ports,
 * at most {@link START_ATTEMPTS} times.
 */
const startMembers = async (size: number, tls?: EtcdTls, options?: { readonly peerProxies?: boolean }): Promise<Started> => {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startMembersOnce(size, tls, options)
    } catch (error) {
      if (attempt >= START_ATTEMPTS || !String(error).includes("address already in use")) throw error
    }
  }
}

const startMembersOnce = async (size: number, tls?: EtcdTls, options?: { readonly peerProxies?: boolean }): Promise<Started> => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "grpc-anchor-etcd-"))
  const allocated: Array<{ readonly name: string; readonly clientPort: number; readonly peerListenPort: number }> = []
  const taken = new Set<number>()
  for (let i = 0; i < size; i++) {
    const ports: Array<number> = []
    for (let tries = 0; ports.length < 2 && tries < 20; tries++) {
      const port = await freePort()
      if (!taken.has(port)) {
        taken.add(port)
        ports.push(port)
      }
    }
    if (ports.length < 2) throw new Error("could not find free ports")
    allocated.push({ name: `m${i}`, clientPort: ports[0]!, peerListenPort: ports[1]! })
  }
  const token = `grpc-anchor-${randomBytes(6).toString("hex")}`
  let proxies: PeerProxies | undefined
  let members: ReadonlyArray<EtcdMember> = []
  try {
    if (options?.peerProxies === true) {
      proxies = await startPeerProxies({ token, names: allocated.map((a) => a.name), targets: allocated.map((a) => a.peerListenPort) })
    }
    const specs: ReadonlyArray<MemberSpec> = allocated.map((a, i) => ({ ...a, peerPort: proxies?.ports[i] ?? a.peerListenPort }))
    const initialCluster = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peerPort}`).join(",")
    members = specs.map(
      (spec) =>
        new EtcdMember(spec, initialCluster, token, path.join(root, spec.name, "data"), path.join(root, `${spec.name}.log`), tls)
    )
    for (const member of members) member.spawn()
    await Promise.all(members.map((member) => member.waitHealthy()))
  } catch (error) {
    await Promise.all(members.map((member) => member.kill().catch(() => undefined)))
    await proxies?.close()
    fs.rmSync(root, { recursive: true, force: true })
    throw error
  }
  return { root, members, proxies }
}

/** A single-member etcd. */
export interface EtcdServer {
  /** `["127.0.0.1:<port>"]`, or `["https://127.0.0.1:<port>"]` with TLS. */
  readonly endpoints: ReadonlyArray<string>
  readonly member: EtcdMember
  /** Runs etcdctl against this server (with TLS: presenting the harness's client certificate). */
  readonly ctl: Ctl
  /** etcdctl that must succeed; returns its stdout. */
  readonly ctlOk: (args: ReadonlyArray<string>, options?: CtlOptions) => Promise<string>
  /** SIGKILL. */
  readonly kill: () => Promise<void>
  /** Starts it again on the same ports, keeping its data unless `wipe`; waits until healthy. */
  readonly restart: (options?: { readonly wipe?: boolean; readonly kill?: boolean }) => Promise<void>
  /** Starts it again after a kill or stop (data kept); waits until healthy. */
  readonly start: () => Promise<void>
  /** SIGTERM, SIGKILL after a bound, and removes the data dir. */
  readonly stop: () => Promise<void>
}

/** Options of {@link startEtcd}. */
export interface StartEtcdOptions {
  /** Serve clients over TLS (https URLs), by default requiring client certificates. */
  readonly tls?: EtcdTls
}

/**
 * Turns on authentication with a root user and one user whose role may only
 * read and write keys under `prefix` (etcdctl's own commands).
 */
export const enablePrefixAuth = async (
  etcd: Pick<EtcdServer, "ctlOk">,
  options: { readonly root: string; readonly role: string; readonly prefix: string; readonly user: string; readonly password: string }
): Promise<void> => {
  await etcd.ctlOk(["user", "add", options.root])
  await etcd.ctlOk(["role", "add", options.role])
  await etcd.ctlOk(["role", "grant-permission", "--prefix=true", options.role, "readwrite", options.prefix])
  await etcd.ctlOk(["user", "add", `${options.user}:${options.password}`])
  await etcd.ctlOk(["user", "grant-role", options.user, options.role])
  await etcd.ctlOk(["auth", "enable"])
}

/** Starts one etcd member on free loopback ports and waits until it is healthy. */
export const startEtcd = async (options?: StartEtcdOptions): Promise<EtcdServer> => {
  const tls = options?.tls
  const { root, members } = await startMembers(1, tls)
  const member = members[0]!
  const endpoints = [tls === undefined ? member.endpoint : member.url]
  const withTls = (ctlOptions?: CtlOptions): CtlOptions | undefined =>
    tls === undefined || ctlOptions?.tls !== undefined ? ctlOptions : { ...ctlOptions, tls: tls.client }
  return {
    endpoints,
    member,
    ctl: (args, options) => etcdctl(endpoints, args, withTls(options)),
    ctlOk: (args, options) => etcdctlOk(endpoints, args, withTls(options)),
    kill: () => member.kill(),
    start: async () => {
      member.spawn()
      await member.waitHealthy()
    },
    restart: async (options) => {
      await (options?.kill === true ? member.kill() : member.stop())
      if (options?.wipe === true) member.wipe()
      member.spawn()
      await member.waitHealthy()
    },
    stop: async () => {
      try {
        await member.stop()
      } finally {
        fs.rmSync(root, { recursive: true, force: true })
      }
    }
  }
}

/** A cluster of etcd members on loopback, with their peer traffic through proxies the harness owns. */
export interface EtcdCluster {
  /** Client endpoints of all members (`127.0.0.1:<port>`), by index. */
  readonly endpoints: ReadonlyArray<string>
  readonly members: ReadonlyArray<EtcdMember>
  /** etcdctl against the {@link available} members (all that run when none is). */
  readonly ctl: Ctl
  readonly ctlOk: (args: ReadonlyArray<string>, options?: CtlOptions) => Promise<string>
  /** SIGKILLs member `index` and waits until the others are healthy again (have a leader). */
  readonly kill: (index: number) => Promise<void>
  /** SIGKILLs member `index` and returns at once (nothing waited for). */
  readonly crash: (index: number) => Promise<void>
  /** Starts member `index` again with its data (stopping it first if it runs) and waits until it is healthy. */
  readonly restart: (index: number) => Promise<void>
  /** SIGSTOP: member `index` hangs, its connections open and silent, until {@link resume}. */
  readonly pause: (index: number) => void
  /** SIGCONT after {@link pause}. */
  readonly resume: (index: number) => void
  /**
   * Cuts member `index` off from its peers (every peer connection from or to
   * it is cut, new ones refused) while its client port still answers. It
   * loses its leader within a few election timeouts; the others keep (or
   * elect) one. Returns once the connections are cut.
   */
  readonly isolate: (index: number) => Promise<void>
  /** Ends {@link isolate}: the member's peers redial it on their own. */
  readonly heal: (index: number) => Promise<void>
  /** Whether member `index` is isolated now. */
  readonly isolated: (index: number) => boolean
  /**
   * The index of the leader: the member that says it leads and that a
   * majority of the cluster's members say they follow. Polls until there is
   * one, at most `timeoutMs` (default 10 s), then throws.
   */
  readonly leader: (timeoutMs?: number) => Promise<number>
  /** Whether member `index`'s `/health` says true now (it has a leader and answers), within a second. */
  readonly healthy: (index: number) => Promise<boolean>
  /**
   * Waits until every member that runs, is not paused and not isolated is
   * healthy and they agree on a leader; at most `timeoutMs` (default 20 s).
   */
  readonly waitHealthy: (timeoutMs?: number) => Promise<void>
  /** Indexes of the members that run and are neither paused nor isolated. */
  readonly available: () => ReadonlyArray<number>
  /** The peer proxies' counters (connections accepted, refused, cut, relayed now). */
  readonly proxyStats: () => Promise<PeerProxyStats>
  /** Kills every member (its data is thrown away, so no graceful stop), closes the proxies and removes the data dirs. */
  readonly stop: () => Promise<void>
}

/**
 * Starts a cluster of `size` (default 3) members, their peer traffic through
 * {@link startPeerProxies}, and waits until every one is healthy.
 *
 * @example
 * ```ts
 * const cluster = await startCluster()
 * const leader = await cluster.leader()
 * await cluster.isolate(leader) // the other two elect a new leader; clients still reach it
 * await cluster.heal(leader)
 * cluster.pause(1); cluster.resume(1)
 * await cluster.stop()
 * ```
 */
export const startCluster = async (size = 3): Promise<EtcdCluster> => {
  const { root, members, proxies } = await startMembers(size, undefined, { peerProxies: true })
  const peerProxies = proxies!
  const isolated = new Set<number>()
  const endpoints = members.map((m) => m.endpoint)
  const at = (index: number) => {
    const member = members[index]
    if (member === undefined) throw new Error(`no member ${index}`)
    return member
  }
  const available = () => members.flatMap((m, i) => (m.running && !m.paused && !isolated.has(i) ? [i] : []))
  // A paused or isolated member would take (and hang) some of etcdctl's requests.
  const live = () => {
    const good = available()
    return good.length > 0 ? good.map((i) => members[i]!.endpoint) : members.filter((m) => m.running).map((m) => m.endpoint)
  }
  const findLeader = async (): Promise<number | undefined> => {
    const statuses = await Promise.all(members.map((m) => (m.running && !m.paused ? memberStatus(m.spec.clientPort) : undefined)))
    for (const [index, status] of statuses.entries()) {
      if (status === undefined || status.leader !== status.memberId) continue
      const followers = statuses.filter((other) => other?.leader === status.memberId).length
      if (followers > size / 2) return index
    }
    return undefined
  }
  const leader = async (timeoutMs = 10_000): Promise<number> => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = await findLeader()
      if (found !== undefined) return found
      if (Date.now() > deadline) throw new Error(`no leader agreed by a majority within ${timeoutMs} ms`)
      await sleep(50)
    }
  }
  let stopping: Promise<void> | undefined
  return {
    endpoints,
    members,
    ctl: (args, options) => etcdctl(live(), args, options),
    ctlOk: (args, options) => etcdctlOk(live(), args, options),
    kill: async (index) => {
      await at(index).kill()
      await Promise.all(members.filter((m) => m.running && !m.paused).map((m) => m.waitHealthy()))
    },
    crash: (index) => at(index).kill(),
    restart: async (index) => {
      const member = at(index)
      if (member.running) await member.stop()
      member.spawn()
      await member.waitHealthy()
    },
    pause: (index) => at(index).pause(),
    resume: (index) => at(index).resume(),
    isolate: async (index) => {
      at(index)
      isolated.add(index)
      await peerProxies.isolate(index)
    },
    heal: async (index) => {
      at(index)
      isolated.delete(index)
      await peerProxies.heal(index)
    },
    isolated: (index) => isolated.has(index),
    leader,
    healthy: (index) => healthy(at(index).spec.clientPort),
    waitHealthy: async (timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs
      const ready = async () =>
        (await Promise.all(available().map((i) => healthy(members[i]!.spec.clientPort)))).every(Boolean) &&
        (await findLeader()) !== undefined
      while (!(await ready())) {
        if (Date.now() > deadline) {
          const states = await Promise.all(members.map(async (m, i) => `${m.spec.name}: ${!m.running ? "down" : m.paused ? "paused" : isolated.has(i) ? "isolated" : (await healthy(m.spec.clientPort)) ? "healthy" : "unhealthy"}`))
          throw new Error(`cluster not healthy within ${timeoutMs} ms (${states.join(", ")})`)
        }
        await sleep(50)
      }
    },
    available,
    proxyStats: () => peerProxies.stats(),
    stop: () =>
      (stopping ??= (async () => {
        try {
          // A graceful stop of a member whose peers stop too waits for them
          // (leadership transfer) until its own timeout: SIGKILL instead.
          await Promise.all(members.map((m) => m.kill()))
        } finally {
          await peerProxies.close()
          fs.rmSync(root, { recursive: true, force: true })
        }
      })())
  }
}

/**
 * The remote ports of this process's established TCP connections to
 * 127.0.0.1, read from /proc (Linux): which etcd members a client is attached to.
 */
export const connectedPorts = (): ReadonlyArray<number> => {
  const inodes = new Set<string>()
  for (const fd of fs.readdirSync("/proc/self/fd")) {
    try {
      const link = fs.readlinkSync(`/proc/self/fd/${fd}`)
      const match = /^socket:\[(\d+)\]$/.exec(link)
      if (match !== null) inodes.add(match[1]!)
    } catch {
      // fd closed meanwhile
    }
  }
  const ports: Array<number> = []
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = ""
    try {
      text = fs.readFileSync(table, "utf8")
    } catch {
      continue
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/)
      if (cols.length < 10) continue
      const remote = cols[2]!
      const state = cols[3]!
      const inode = cols[9]!
      if (state !== "01" || !inodes.has(inode)) continue // 01 = ESTABLISHED
      const port = parseInt(remote.split(":")[1] ?? "", 16)
      if (Number.isFinite(port)) ports.push(port)
    }
  }
  return ports
}

/** {@link startEtcd} as a scoped resource: stopped and wiped when the scope closes. */
export const etcdServer: Effect.Effect<EtcdServer, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(() => startEtcd()),
  (server) => Effect.promise(() => server.stop())
)

/** {@link startCluster} as a scoped resource. */
export const etcdCluster = (size = 3): Effect.Effect<EtcdCluster, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startCluster(size)),
    (cluster) => Effect.promise(() => cluster.stop())
  )

/** Re-exported: the one implementation is in eventually.ts. */
export { eventually }

// ---------------------------------------------------------------------------
// Effect helpers for the adapter suites
// ---------------------------------------------------------------------------

/** One log line captured by {@link captureLogs}. */
export interface LogLine {
  readonly level: string
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
}

/**
 * A logger that records every line (and prints warnings and errors when
 * `GRPC_ANCHOR_TEST_LOGS` is set), for asserting on warnings.
 */
export const captureLogs = () => {
  const lines: Array<LogLine> = []
  const logger = Logger.make(({ fiber, logLevel, message }) => {
    const text = (Array.isArray(message) ? message : [message]).map(String).join(" ")
    const annotated: Record<string, unknown> = { ...fiber.getRef(References.CurrentLogAnnotations) }
    // Effect 4 names the levels "Warn", "Info"...; the suites assert on the upper-case labels.
    const level = logLevel.toUpperCase()
    lines.push({ level, message: text, annotations: annotated })
    if (process.env.GRPC_ANCHOR_TEST_LOGS !== undefined) console.log(`[${level}] ${text}`, annotated)
  })
  const layer = Layer.merge(Logger.layer([logger]), Layer.succeed(References.MinimumLogLevel, "Debug"))
  return { lines, layer }
}

/**
 * Polls `check` (an Effect) until it returns true: every `interval`, at most
 * `timeout` in all; dies with `what` when it never does.
 */
export const waitUntil = <E, R>(
  what: string,
  check: Effect.Effect<boolean, E, R>,
  options?: { readonly timeout?: Duration.Input; readonly interval?: Duration.Input }
): Effect.Effect<void, E, R> =>
  check.pipe(
    Effect.repeat({
      schedule: Schedule.spaced(options?.interval ?? "50 millis"),
      until: (ok) => ok
    }),
    Effect.timeoutOrElse({
      duration: options?.timeout ?? "15 seconds",
      orElse: () => Effect.fail(new Error(`timed out waiting for: ${what}`))
    }),
    Effect.orDie,
    Effect.asVoid
  ) as Effect.Effect<void, E, R>

/**
 * The lease (hex) a key is attached to as etcdctl sees it: `"0"` when it has
 * none, undefined when the key is absent. Dies when etcdctl fails.
 */
export const leaseOf = (ctl: Ctl, key: string): Effect.Effect<string | undefined> =>
  Effect.promise(async () => {
    // `-w json` prints the lease as a JSON number, which loses int64 precision.
    const result = await ctl(["get", key, "-w", "fields"])
    if (result.code !== 0) throw new Error(`etcdctl get ${key} failed (${result.code}): ${result.stderr.trim()}`)
    const lease = /^"Lease" : (\d+)$/m.exec(result.stdout)?.[1]
    return lease === undefined ? undefined : BigInt(lease).toString(16)
  })

/** A `Reconnecting` status of a registrar that carries the etcd error behind it. */
export type StatusError = Extract<Registrar.Status, { readonly _tag: "Reconnecting" }> & { readonly error: EtcdError }

/**
 * A registrar's first `Reconnecting` status with an error; fails when none
 * comes within `timeout` (default 10 seconds) or the status stream ends.
 */
export const firstStatusError = (
  registrar: Pick<Registrar.Registrar.Shape, "changes">,
  timeout: Duration.Input = "10 seconds"
): Effect.Effect<StatusError, Error> =>
  registrar.changes.pipe(
    Stream.filter((status): status is StatusError => status._tag === "Reconnecting" && status.error !== undefined),
    Stream.runHead,
    Effect.flatMap(
      Option.match({
        onNone: () => Effect.fail(new Error("the registrar's status stream ended without a Reconnecting status with an error")),
        onSome: (status) => Effect.succeed(status)
      })
    ),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.fail(new Error(`no Reconnecting status with an error within ${Duration.format(Duration.fromInputUnsafe(timeout))}`))
    })
  )

/** What a test sees of a Discovery stream it follows. */
export interface Follower {
  /** Every snapshot so far. */
  readonly all: Effect.Effect<ReadonlyArray<Discovery.Snapshot>>
  /** The addresses of the last snapshot. */
  readonly latest: Effect.Effect<ReadonlyArray<string> | undefined>
  /** Waits (bounded) until the last snapshot has exactly these addresses; dies if the stream failed. */
  readonly waitFor: (
    what: string,
    addresses: ReadonlyArray<string>,
    options?: { readonly timeout?: Duration.Input }
  ) => Effect.Effect<void>
  /** The error the stream failed with, if it did. */
  readonly failure: Effect.Effect<unknown>
}

/** Follows `service` with the Discovery in context, in the current scope. */
export const follow = (
  service: string,
  options?: Discovery.WatchOptions
): Effect.Effect<Follower, never, Discovery.Discovery | Scope.Scope> =>
  Effect.gen(function* () {
    const discovery = yield* Discovery.Discovery
    const seen = yield* Ref.make<ReadonlyArray<Discovery.Snapshot>>([])
    const failure = yield* Ref.make<unknown>(undefined)
    yield* discovery.watch(service, options).pipe(
      Stream.runForEach((snapshot) => Ref.update(seen, (all) => [...all, snapshot])),
      Effect.catch((error) => Ref.set(failure, error)),
      Effect.forkScoped
    )
    const latest = Ref.get(seen).pipe(Effect.map((all) => all[all.length - 1]?.addresses))
    return {
      all: Ref.get(seen),
      latest,
      failure: Ref.get(failure),
      waitFor: (what, addresses, waitOptions) =>
        waitUntil(
          `${what}: ${JSON.stringify(addresses)}`,
          Effect.gen(function* () {
            const error = yield* Ref.get(failure)
            if (error !== undefined) return yield* Effect.die(error)
            const now = yield* latest
            return now !== undefined && JSON.stringify([...now].sort()) === JSON.stringify([...addresses].sort())
          }),
          waitOptions?.timeout === undefined ? undefined : { timeout: waitOptions.timeout }
        )
    }
  })

/**
 * Waits (at most `timeoutMs`) until this process has no TCP sockets and no
 * child processes left, and throws listing them if it still has: run after a
 * suite closed everything it opened.
 */
export const expectNoOpenHandles = async (timeoutMs = 5_000): Promise<void> => {
  const leaks = () =>
    process
      .getActiveResourcesInfo()
      .filter((name) => name.startsWith("TCP") || name === "ProcessWrap" || name === "UDPWrap")
  await eventually(`no open handles (still: ${leaks().join(", ")})`, () => leaks().length === 0, {
    timeoutMs,
    intervalMs: 50
  }).catch(() => {
    throw new Error(`open handles after the suite: ${leaks().join(", ")}`)
  })
}
