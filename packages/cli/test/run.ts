/**
 * Runs the built `grpc-anchor` command (packages/cli/dist/bin.js) as a
 * subprocess for the CLI suites: every wait is bounded, and every process
 * started here is killed by {@link killAll} (call it in afterEach).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

export const BIN = fileURLToPath(new URL("../dist/bin.js", import.meta.url))

/** Fails with the command to run when the build is missing (`npm test` builds first). */
export const requireBuild = (): void => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`npm run build\` first (npm test does)`)
}

export interface Finished {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** A running command: its output so far, and bounded waits on it. */
export interface Running {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  /** Waits until stdout has a line for which `match` holds; returns it. */
  readonly waitForLine: (what: string, match: (line: string) => boolean, timeoutMs?: number) => Promise<string>
  /** Resolves when the process exits, or rejects after `timeoutMs`. */
  readonly exited: (timeoutMs?: number) => Promise<Finished>
  readonly signal: (signal: NodeJS.Signals) => void
}

const running = new Set<ChildProcess>()

/** SIGKILLs every command still running (afterEach). */
export const killAll = async (): Promise<void> => {
  const children = [...running]
  running.clear()
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve()
          const timer = setTimeout(resolve, 5_000)
          child.once("exit", () => {
            clearTimeout(timer)
            resolve()
          })
          child.kill("SIGKILL")
        })
    )
  )
}

/** Starts `node packages/cli/dist/bin.js ...args` with stdout and stderr piped. */
export const start = (args: ReadonlyArray<string>, options: { readonly env?: NodeJS.ProcessEnv } = {}): Running => {
  const child = spawn(process.execPath, [BIN, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "", ...options.env }
  })
  running.add(child)
  let stdout = ""
  let stderr = ""
  const listeners = new Set<() => void>()
  child.stdout!.setEncoding("utf8")
  child.stderr!.setEncoding("utf8")
  child.stdout!.on("data", (chunk: string) => {
    stdout += chunk
    for (const listener of listeners) listener()
  })
  child.stderr!.on("data", (chunk: string) => {
    stderr += chunk
  })
  const done = new Promise<Finished>((resolve) =>
    child.once("close", (code, signal) => {
      running.delete(child)
      for (const listener of listeners) listener()
      resolve({ code, signal, stdout, stderr })
    })
  )
  const ended = () => child.exitCode !== null || child.signalCode !== null

  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    signal: (signal) => {
      child.kill(signal)
    },
    waitForLine: (what, match, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined
        const check = () => {
          const found = stdout.split("\n").slice(0, -1).find(match)
          if (found !== undefined) {
            finish()
            resolve(found)
          } else if (ended()) {
            finish()
            reject(new Error(`the command exited before printing ${what}; stdout: ${stdout}; stderr: ${stderr}`))
          }
        }
        const finish = () => {
          clearTimeout(timer)
          listeners.delete(check)
        }
        timer = setTimeout(() => {
          finish()
          reject(new Error(`no ${what} within ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`))
        }, timeoutMs)
        listeners.add(check)
        check()
      }),
    exited: (timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill("SIGKILL")
          reject(new Error(`the command did not exit within ${timeoutMs} ms (killed); stdout: ${stdout}; stderr: ${stderr}`))
        }, timeoutMs)
        void done.then((finished) => {
          clearTimeout(timer)
          resolve(finished)
        })
      })
  }
}

/** Runs a command to its end (at most `timeoutMs`). */
export const run = (args: ReadonlyArray<string>, options: { readonly timeoutMs?: number; readonly env?: NodeJS.ProcessEnv } = {}): Promise<Finished> =>
  start(args, options.env === undefined ? {} : { env: options.env }).exited(options.timeoutMs ?? 15_000)

/** Whether text has an ANSI escape sequence. */
export const hasAnsi = (text: string): boolean => text.includes("\u001b[")

/** Whether text looks like it holds a stack trace. */
export const hasStackTrace = (text: string): boolean => /^\s+at .+[(:]\d+/m.test(text)
