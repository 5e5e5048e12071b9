/**
 * Runs the built `grpc-anchor` command in a real pseudo-terminal, as a user
 * sees it: a detached tmux session of a given size (tmux is provisioned by
 * test/support/globalSetup.ts), its screen read with `capture-pane` while
 * the command runs and, with the scrollback, once it has exited. Each tmux
 * server has its own socket in a temporary directory, so the tests never
 * touch a user's tmux.
 */
import { execFile } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { BIN } from "./run.js"

const tmux = (socket: string, args: ReadonlyArray<string>): Promise<string> =>
  new Promise((resolve, reject) =>
    execFile("tmux", ["-S", socket, ...args], { timeout: 10_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) =>
      error === null ? resolve(stdout) : reject(new Error(`tmux ${args.join(" ")}: ${error.message} ${stderr}`))
    )
  )

/** What a terminal run showed. */
export interface TerminalRun {
  /** The exit code of the command. */
  readonly code: number
  /** The screens seen while it ran, wrapped lines joined (`capture-pane -J`), trailing spaces cut. */
  readonly screens: ReadonlyArray<ReadonlyArray<string>>
  /** Everything the terminal holds at the end, scrollback included, wrapped lines joined. */
  readonly final: ReadonlyArray<string>
}

const lines = (captured: string): ReadonlyArray<string> => captured.replace(/\n$/, "").split("\n").map((l) => l.trimEnd())

/** The width a terminal gives a line of plain text: one column per code point (the demo prints no wide characters). */
export const columnsOf = (line: string): number => [...line].length

/**
 * Runs `grpc-anchor ...args` in a `columns` x `rows` terminal until it exits
 * (at most `timeoutMs`), capturing the screen every `everyMs`.
 */
export const runInTerminal = async (
  args: ReadonlyArray<string>,
  options: { readonly columns: number; readonly rows: number; readonly timeoutMs: number; readonly everyMs?: number }
): Promise<TerminalRun> => {
  const dir = mkdtempSync(join(tmpdir(), "grpc-anchor-tty-"))
  const socket = join(dir, "tmux.sock")
  const codeFile = join(dir, "code")
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`
  // The pane stays open after the command so its scrollback can be read.
  const script = `${[process.execPath, BIN, ...args].map(quote).join(" ")}; echo $? > ${quote(codeFile)}; sleep 600`
  const screens: Array<ReadonlyArray<string>> = []
  try {
    await tmux(socket, ["-f", "/dev/null", "new-session", "-d", "-x", String(options.columns), "-y", String(options.rows), "-s", "demo", script])
    const deadline = Date.now() + options.timeoutMs
    while (!existsSync(codeFile) || readFileSync(codeFile, "utf8").trim() === "") {
      if (Date.now() > deadline) throw new Error(`the command did not exit within ${options.timeoutMs} ms; screen:\n${screens.at(-1)?.join("\n")}`)
      screens.push(lines(await tmux(socket, ["capture-pane", "-p", "-J", "-t", "demo"])))
      await new Promise((resolve) => setTimeout(resolve, options.everyMs ?? 250))
    }
    const final = lines(await tmux(socket, ["capture-pane", "-p", "-J", "-S", "-", "-t", "demo"]))
    return { code: Number(readFileSync(codeFile, "utf8").trim()), screens, final }
  } finally {
    await tmux(socket, ["kill-server"]).catch(() => undefined)
    rmSync(dir, { recursive: true, force: true })
  }
}
