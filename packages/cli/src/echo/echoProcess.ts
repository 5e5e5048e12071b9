/**
 * Runs the echo server (`echoServerMain`) as a child process, with bounded
 * waits and guaranteed cleanup. Parent and child talk over `fork`'s IPC
 * channel (see {@link ChildMessage}); the child's stderr says why it failed.
 * From the build it runs the built .js file. From TypeScript sources (tests,
 * benchmarks) it also runs the build when there is one (`npm test` builds
 * first), because tsx would compile the whole library for every (re)start,
 * seconds each on a busy 2-core machine; without a build it runs the .ts
 * file through tsx. After changing the library, `npm run build` before
 * running a test file on its own.
 */
import { fork, type ChildProcess } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import * as Data from "effect/Data"
import type { ObservedConnection } from "grpc-anchor"

const built = import.meta.url.endsWith(".ts")
  ? fileURLToPath(new URL("../../dist/echo/echoServerMain.js", import.meta.url))
  : fileURLToPath(new URL("./echoServerMain.js", import.meta.url))
const fromSource = !existsSync(built)
const MAIN = fromSource ? fileURLToPath(new URL("./echoServerMain.ts", import.meta.url)) : built
const EXEC_ARGV = fromSource ? ["--import", "tsx"] : []
/** Characters of the child's stderr kept for error messages (its tail). */
const STDERR_KEPT = 4_000

/** What the server counted: its connections (open and closed) and the calls they carried. */
export interface EchoStats {
  readonly connections: ReadonlyArray<ObservedConnection>
  readonly calls: number
}

/** A message from the parent to the echo process. */
export type ParentMessage = { readonly type: "stats"; readonly id: number }

/** A message from the echo process to the parent: once `ready`, then one `stats` per request. */
export type ChildMessage =
  | { readonly type: "ready"; readonly name: string; readonly port: number }
  | { readonly type: "stats"; readonly id: number; readonly stats: EchoStats }

/** A running echo process. */
export interface EchoProcess {
  readonly name: string
  readonly port: number
  readonly child: ChildProcess
  /** Asks the server for its observed connections. */
  readonly stats: () => Promise<EchoStats>
  /** SIGKILL, resolved once the process is gone. */
  readonly kill: () => Promise<void>
  /** SIGTERM (deregister, drain), resolved once the process is gone. */
  readonly stop: () => Promise<void>
}

/**
 * An echo process did not answer: it exited, or said nothing in time.
 * `detail` is why, without the server's name: what the process wrote on
 * stderr when it exited (e.g. why it could not listen), else what happened.
 *
 * @example
 * ```ts
 * new EchoProcessError({ server: "s1", detail: "no ready message within 20000 ms" }).message // "echo s1: no ready ..."
 * ```
 */
export class EchoProcessError extends Data.TaggedError("EchoProcessError")<{
  readonly server: string
  readonly detail: string
}> {
  override get message(): string {
    return `echo ${this.server}: ${this.detail}`
  }
}

const live = new Set<ChildProcess>()
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL")
})

/**
 * Starts an echo process and resolves once it serves (and, with `etcd`, is
 * registered); rejects with an {@link EchoProcessError} when it exits first
 * or does not get there within `timeoutMs` (default 20 s).
 *
 * @example
 * ```ts
 * const s1 = await startEchoProcess({ name: "s1" })
 * const { connections } = await s1.stats()
 * await s1.stop()
 * ```
 */
export const startEchoProcess = (options: {
  readonly name: string
  readonly port?: number
  readonly maxStreams?: number
  readonly timeoutMs?: number
  /** Registers the server in etcd first (echoServerMain's --etcd/--service/--ttl); ready once registered. */
  readonly etcd?: { readonly hosts: string; readonly service: string; readonly ttl?: number }
}): Promise<EchoProcess> => {
  const args = ["--name", options.name, "--port", String(options.port ?? 0)]
  if (options.maxStreams !== undefined) args.push("--max-streams", String(options.maxStreams))
  if (options.etcd !== undefined) {
    args.push("--etcd", options.etcd.hosts, "--service", options.etcd.service)
    if (options.etcd.ttl !== undefined) args.push("--ttl", String(options.etcd.ttl))
  }
  const child = fork(MAIN, args, { execArgv: EXEC_ARGV, stdio: ["ignore", "ignore", "pipe", "ipc"] })
  live.add(child)
  let stderr = ""
  child.stderr!.setEncoding("utf8")
  child.stderr!.on("data", (chunk: string) => {
    // The tail says why it failed; a long etcd outage's warnings must not grow it without bound.
    stderr = (stderr + chunk).slice(-STDERR_KEPT)
  })
  // Sending to a child that just died must not crash this process.
  child.on("error", () => {})

  /** Waiters for a message by id: 0 is the ready message, later ids answer stats requests. */
  const waiters = new Map<number, { readonly resolve: (message: ChildMessage) => void; readonly reject: (error: EchoProcessError) => void }>()
  /** Why the process is gone, once it is. */
  let gone: EchoProcessError | undefined
  // "close": the process is gone and its stderr fully read. A grandchild
  // (tsx's esbuild service, from sources) can hold stderr open after the
  // process died, so "exit" and a short grace period for stderr count too.
  const exited = new Promise<void>((resolve) => {
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (gone !== undefined) return
      live.delete(child)
      gone = new EchoProcessError({
        server: options.name,
        detail: stderr.trim() || (signal !== null ? `killed by ${signal}` : `exited with code ${code}`)
      })
      // One handler for every pending wait, however many there are.
      for (const waiter of [...waiters.values()]) waiter.reject(gone)
      resolve()
    }
    child.once("close", finish)
    child.once("exit", (code, signal) => void setTimeout(() => finish(code, signal), 1_000).unref())
  })
  child.on("message", (message: ChildMessage) => {
    waiters.get(message.type === "ready" ? 0 : message.id)?.resolve(message)
  })
  const waitFor = (id: number, what: string, timeoutMs: number) =>
    new Promise<ChildMessage>((resolve, reject) => {
      if (gone !== undefined) return reject(gone)
      const settle = (done: () => void) => {
        clearTimeout(timer)
        waiters.delete(id)
        done()
      }
      const timer = setTimeout(() => {
        const detail = `no ${what} within ${timeoutMs} ms${stderr === "" ? "" : `; stderr: ${stderr.trim()}`}`
        settle(() => reject(new EchoProcessError({ server: options.name, detail })))
      }, timeoutMs)
      waiters.set(id, {
        resolve: (message) => settle(() => resolve(message)),
        reject: (error) => settle(() => reject(error))
      })
    })

  let nextId = 1
  return waitFor(0, "ready message", options.timeoutMs ?? 20_000).then((ready) => {
    const port = ready.type === "ready" ? ready.port : 0
    const signal = async (signal: NodeJS.Signals) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      await exited
    }
    return {
      name: options.name,
      port,
      child,
      stats: async () => {
        const id = nextId++
        const reply = waitFor(id, "stats", 5_000)
        if (child.connected) child.send({ type: "stats", id } satisfies ParentMessage)
        const message = await reply
        return message.type === "stats" ? message.stats : { connections: [], calls: 0 }
      },
      kill: () => signal("SIGKILL"),
      stop: () => signal("SIGTERM")
    }
  })
}
