/**
 * The peer benchmark's child processes (servers and clients): forked with
 * tsx and an IPC channel, every wait bounded, every process killed when the
 * benchmark ends, fails or is interrupted.
 */
import { fork, type ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"

/** Every child still running; killed with SIGKILL when this process exits. */
const live = new Set<ChildProcess>()

/** SIGKILLs every child still running (by its own pid). */
export const killAll = (): void => {
  for (const child of live) child.kill("SIGKILL")
  live.clear()
}

let installed = false
/**
 * Kills the children on exit, on an uncaught error and on SIGINT/SIGTERM
 * (then exits 130/143). Idempotent.
 */
export const installCleanup = (): void => {
  if (installed) return
  installed = true
  process.once("exit", killAll)
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: stopping the benchmark's processes\n`)
      killAll()
      process.exit(code)
    })
  }
}

/** A running child talking over IPC: messages carry a `type`, answers the `id` of their request. */
export interface Child {
  readonly name: string
  readonly process: ChildProcess
  /** Sends `message` with a fresh `id` and waits (at most `timeoutMs`) for the answer with that id. */
  readonly ask: <A>(message: { readonly type: string } & Record<string, unknown>, timeoutMs: number) => Promise<A>
  /** Sends a message that needs no answer. */
  readonly send: (message: { readonly type: string } & Record<string, unknown>) => void
  /** Waits (at most `timeoutMs`) for the next message of `type` that carries no id. */
  readonly expect: <A>(type: string, timeoutMs: number) => Promise<A>
  /** Asks the child to stop (`{ type: "stop" }` then SIGTERM), SIGKILL after `graceMs`; resolves once it is gone. */
  readonly stop: (graceMs?: number) => Promise<void>
}

/**
 * Forks `file` (a .ts file, run with tsx) and resolves once it sends
 * `{ type: readyType, ... }` (default "ready"; returned as `ready`), or rejects with its stderr
 * when it exits first or says nothing within `readyTimeoutMs`.
 */
export const startChild = <Ready>(options: {
  readonly name: string
  readonly file: URL
  readonly args?: ReadonlyArray<string>
  /** Extra node flags (e.g. --cpu-prof). */
  readonly nodeArgs?: ReadonlyArray<string>
  readonly readyTimeoutMs?: number
  readonly readyType?: string
}): Promise<{ readonly child: Child; readonly ready: Ready }> => {
  const child = fork(fileURLToPath(options.file), [...(options.args ?? [])], {
    execArgv: ["--import", "tsx", ...(options.nodeArgs ?? [])],
    stdio: ["ignore", "inherit", "pipe", "ipc"]
  })
  live.add(child)
  let stderr = ""
  child.stderr!.setEncoding("utf8")
  child.stderr!.on("data", (chunk: string) => {
    // Keep the tail only: enough to say why it failed.
    stderr = (stderr + chunk).slice(-4_000)
  })
  child.on("error", () => {})
  const waiters = new Map<number | string, { resolve: (message: any) => void; reject: (error: Error) => void }>()
  let gone: Error | undefined
  const exited = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      live.delete(child)
      gone = new Error(`${options.name} exited (${signal ?? `code ${code}`})${stderr.trim() === "" ? "" : `: ${stderr.trim()}`}`)
      for (const waiter of [...waiters.values()]) waiter.reject(gone)
      resolve()
    })
  )
  child.on("message", (message: { type: string; id?: number }) => {
    waiters.get(message.id ?? message.type)?.resolve(message)
  })
  const waitFor = <A>(key: number | string, what: string, timeoutMs: number) =>
    new Promise<A>((resolve, reject) => {
      if (gone !== undefined) return reject(gone)
      const timer = setTimeout(() => {
        waiters.delete(key)
        reject(new Error(`${options.name}: no ${what} within ${timeoutMs} ms${stderr.trim() === "" ? "" : `; stderr: ${stderr.trim()}`}`))
      }, timeoutMs)
      waiters.set(key, {
        resolve: (message) => {
          clearTimeout(timer)
          waiters.delete(key)
          resolve(message)
        },
        reject: (error) => {
          clearTimeout(timer)
          waiters.delete(key)
          reject(error)
        }
      })
    })
  let nextId = 1
  const handle: Child = {
    name: options.name,
    process: child,
    ask: <A>(message: { readonly type: string } & Record<string, unknown>, timeoutMs: number) => {
      const id = nextId++
      const answer = waitFor<A>(id, `answer to ${message.type}`, timeoutMs)
      if (child.connected) child.send({ ...message, id })
      return answer
    },
    send: (message) => {
      if (child.connected) child.send(message)
    },
    expect: <A>(type: string, timeoutMs: number) => waitFor<A>(type, `${type} message`, timeoutMs),
    stop: async (graceMs = 5_000) => {
      if (gone !== undefined) return
      if (child.connected) child.send({ type: "stop" })
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
      await exited
      clearTimeout(timer)
    }
  }
  const readyType = options.readyType ?? "ready"
  return waitFor<Ready>(readyType, `${readyType} message`, options.readyTimeoutMs ?? 30_000).then(
    (ready) => ({ child: handle, ready }),
    (error) => {
      child.kill("SIGKILL")
      throw error
    }
  )
}
