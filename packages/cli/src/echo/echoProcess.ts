/**
 * Runs the echo server (`echoServerMain`) as a child process, with bounded
 * waits and guaranteed cleanup. From TypeScript sources (tests, benchmarks)
 * it runs the .ts file through tsx; from the build, the .js file.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import * as Data from "effect/Data"
import type { ObservedConnection } from "../../adapters/grpc/ConnectionObserver.js"

const fromSource = import.meta.url.endsWith(".ts")
const MAIN = fileURLToPath(new URL(fromSource ? "./echoServerMain.ts" : "./echoServerMain.js", import.meta.url))
const PREFIX = fromSource ? ["--import", "tsx"] : []

export interface EchoProcess {
  readonly name: string
  readonly port: number
  readonly child: ChildProcess
  /** Asks the server for its observed connections. */
  readonly stats: () => Promise<{ readonly connections: ReadonlyArray<ObservedConnection>; readonly calls: number }>
  /** SIGKILL, resolved once the process is gone. */
  readonly kill: () => Promise<void>
  /** SIGTERM (drain), resolved once the process is gone. */
  readonly stop: () => Promise<void>
}

/**
 * An echo process did not answer: it exited, or said nothing in time.
 * `detail` is why, without the server's name: what the process wrote on
 * stderr when it exited (e.g. why it could not listen), else what happened.
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

export const startEchoProcess = (options: {
  readonly name: string
  readonly port?: number
  readonly maxStreams?: number
  readonly timeoutMs?: number
  /** Registers the server in etcd first (echoServerMain's --etcd/--service/--ttl); ready once registered. */
  readonly etcd?: { readonly hosts: string; readonly service: string; readonly ttl?: number }
}): Promise<EchoProcess> => {
  const args = [...PREFIX, MAIN, "--name", options.name, "--port", String(options.port ?? 0)]
  if (options.maxStreams !== undefined) args.push("--max-streams", String(options.maxStreams))
  if (options.etcd !== undefined) {
    args.push("--etcd", options.etcd.hosts, "--service", options.etcd.service)
    if (options.etcd.ttl !== undefined) args.push("--ttl", String(options.etcd.ttl))
  }
  const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"] })
  live.add(child)
  let stderr = ""
  child.stderr!.setEncoding("utf8")
  child.stderr!.on("data", (chunk: string) => {
    stderr += chunk
  })
  // Writing to a child that just died must not crash this process.
  child.stdin!.on("error", () => {})

  /** Waiters for a line by id: 0 is the ready line, later ids answer `stats <id>`. */
  const waiters = new Map<number, { readonly resolve: (line: string) => void; readonly reject: (error: EchoProcessError) => void }>()
  /** Why the process is gone, once it is. */
  let gone: EchoProcessError | undefined
  // "close": the process is gone and its stderr fully read.
  const exited = new Promise<void>((resolve) =>
    child.once("close", (code, signal) => {
      live.delete(child)
      gone = new EchoProcessError({
        server: options.name,
        detail: stderr.trim() || (signal !== null ? `killed by ${signal}` : `exited with code ${code}`)
      })
      // One handler for every pending wait, however many there are.
      for (const waiter of [...waiters.values()]) waiter.reject(gone)
      resolve()
    })
  )
  let ready = false
  createInterface({ input: child.stdout! }).on("line", (line) => {
    const id = ready ? (JSON.parse(line) as { id?: number }).id : 0
    ready = true
    if (id !== undefined) waiters.get(id)?.resolve(line)
  })
  const waitForLine = (id: number, what: string, timeoutMs: number) =>
    new Promise<string>((resolve, reject) => {
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
        resolve: (line) => settle(() => resolve(line)),
        reject: (error) => settle(() => reject(error))
      })
    })

  let nextId = 1
  return waitForLine(0, "ready line", options.timeoutMs ?? 20_000).then((line) => {
    const { port } = JSON.parse(line) as { port: number }
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
        const reply = waitForLine(id, "stats", 5_000)
        child.stdin!.write(`stats ${id}\n`)
        return (JSON.parse(await reply) as { stats: Awaited<ReturnType<EchoProcess["stats"]>> }).stats
      },
      kill: () => signal("SIGKILL"),
      stop: () => signal("SIGTERM")
    }
  })
}
