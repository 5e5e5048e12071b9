/**
 * Runs the echo server (`echoServerMain`) as a child process, with bounded
 * waits and guaranteed cleanup. From TypeScript sources (tests, benchmarks)
 * it runs the .ts file through tsx; from the build, the .js file.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"
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

const live = new Set<ChildProcess>()
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL")
})

const lines = (child: ChildProcess, onLine: (line: string) => void): void => {
  let buffered = ""
  child.stdout!.setEncoding("utf8")
  child.stdout!.on("data", (chunk: string) => {
    buffered += chunk
    let newline = buffered.indexOf("\n")
    while (newline !== -1) {
      onLine(buffered.slice(0, newline))
      buffered = buffered.slice(newline + 1)
      newline = buffered.indexOf("\n")
    }
  })
}

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
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  void exited.then(() => live.delete(child))
  let stderr = ""
  child.stderr!.setEncoding("utf8")
  child.stderr!.on("data", (chunk: string) => {
    stderr += chunk
  })
  // The first line is the ready line; later lines answer `stats <id>` requests by id.
  let onReady: ((line: string) => void) | undefined
  const pending = new Map<number, (line: string) => void>()
  lines(child, (line) => {
    if (onReady !== undefined) {
      const resolve = onReady
      onReady = undefined
      return resolve(line)
    }
    const id = (JSON.parse(line) as { id?: number }).id
    if (id !== undefined) pending.get(id)?.(line)
  })
  // Writing to a child that just died must not crash this process.
  child.stdin!.on("error", () => {})
  const withTimeout = (timeoutMs: number, what: string, register: (resolve: (line: string) => void) => () => void) =>
    new Promise<string>((resolve, reject) => {
      const unregister = register((line) => {
        clearTimeout(timer)
        unregister()
        resolve(line)
      })
      const timer = setTimeout(() => {
        unregister()
        reject(new Error(`echo ${options.name}: no ${what} within ${timeoutMs} ms; stderr: ${stderr}`))
      }, timeoutMs)
      void exited.then(() => {
        clearTimeout(timer)
        unregister()
        reject(new Error(`echo ${options.name} exited: ${stderr}`))
      })
    })
  let nextId = 1
  return withTimeout(options.timeoutMs ?? 20_000, "ready line", (resolve) => {
    onReady = resolve
    return () => {
      onReady = undefined
    }
  }).then((line) => {
    const ready = JSON.parse(line) as { port: number }
    const gone = async (signal: NodeJS.Signals) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      await exited
    }
    return {
      name: options.name,
      port: ready.port,
      child,
      stats: async () => {
        const id = nextId++
        const reply = withTimeout(5_000, "stats", (resolve) => {
          pending.set(id, resolve)
          return () => pending.delete(id)
        })
        child.stdin!.write(`stats ${id}\n`)
        return (JSON.parse(await reply) as { stats: Awaited<ReturnType<EchoProcess["stats"]>> }).stats
      },
      kill: () => gone("SIGKILL"),
      stop: () => gone("SIGTERM")
    }
  })
}
