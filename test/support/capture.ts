/**
 * Capturing what a test process prints, and everything an error can show of
 * itself, so that suites can grep it (for secrets, or for one warning per bad
 * record). The etcd resolver logs through Effect's default logger, which
 * writes with `console.*`: patching the console captures it.
 */
import * as util from "node:util"

type ConsoleMethod = "log" | "info" | "warn" | "error" | "debug" | "trace"
const METHODS: ReadonlyArray<ConsoleMethod> = ["log", "info", "warn", "error", "debug", "trace"]

/** What {@link captureOutput} recorded so far. */
export interface CapturedOutput {
  /** Every console call (formatted as Node would print it) and every stdout/stderr write. */
  readonly lines: ReadonlyArray<string>
  /** Puts the console and the streams back. Idempotent. */
  readonly restore: () => void
}

/**
 * Records every `console.*` call and every `process.stdout`/`stderr` write
 * until `restore()`. With `quiet` (the default) nothing is printed meanwhile.
 */
export const captureOutput = (options?: { readonly quiet?: boolean }): CapturedOutput => {
  const quiet = options?.quiet ?? true
  const lines: Array<string> = []
  const savedConsole = new Map<ConsoleMethod, (...args: Array<unknown>) => void>()
  for (const method of METHODS) {
    const original = console[method] as (...args: Array<unknown>) => void
    savedConsole.set(method, original)
    console[method] = (...args: Array<unknown>) => {
      lines.push(util.format(...args))
      if (!quiet) original.apply(console, args)
    }
  }
  const savedStdout = process.stdout.write
  const savedStderr = process.stderr.write
  const tap = (original: typeof process.stdout.write) =>
    function (this: NodeJS.WriteStream, chunk: unknown, ...rest: Array<unknown>): boolean {
      lines.push(typeof chunk === "string" ? chunk : Buffer.isBuffer(chunk) ? chunk.toString("utf8") : String(chunk))
      if (!quiet) return (original as (...args: Array<unknown>) => boolean).call(this, chunk, ...rest)
      const callback = rest.find((r) => typeof r === "function") as (() => void) | undefined
      callback?.()
      return true
    }
  process.stdout.write = tap(savedStdout) as typeof process.stdout.write
  process.stderr.write = tap(savedStderr) as typeof process.stderr.write
  let restored = false
  return {
    lines,
    restore: () => {
      if (restored) return
      restored = true
      for (const [method, original] of savedConsole) console[method] = original
      process.stdout.write = savedStdout
      process.stderr.write = savedStderr
    }
  }
}

/**
 * Every way an error shows itself: `message`, `String(error)`, JSON (what a
 * structured logger writes) and `util.inspect` with its causes (what
 * `console.log(error)` prints).
 */
export const renderings = (error: unknown): ReadonlyArray<string> => {
  const out: Array<string> = [String(error), util.inspect(error, { depth: 8, showHidden: false })]
  if (error instanceof Error) out.push(error.message, error.stack ?? "")
  try {
    out.push(JSON.stringify(error) ?? "")
  } catch (e) {
    out.push(`(JSON.stringify threw: ${String(e)})`)
  }
  return out
}

/**
 * The pieces of a secret worth looking for: the secret itself and, for a PEM
 * block, every base64 line of its body (a line alone already gives it away).
 */
export const secretNeedles = (secret: string | Buffer): ReadonlyArray<string> => {
  const text = typeof secret === "string" ? secret : secret.toString("utf8")
  if (!text.includes("-----BEGIN")) return [text]
  const body = text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith("-----"))
  return [body.join(""), ...body.filter((line) => line.length >= 16)]
}

/** Where each needle occurs in `haystacks` (empty when none does), with a little context. */
export const findSecrets = (
  haystacks: ReadonlyArray<{ readonly source: string; readonly text: string }>,
  needles: ReadonlyArray<string>
): ReadonlyArray<string> => {
  const found: Array<string> = []
  for (const { source, text } of haystacks) {
    // JSON and inspect escape newlines; a PEM line never holds one, but compare both forms anyway.
    const flat = text.replace(/\\n/g, "\n")
    for (const needle of needles) {
      const at = flat.indexOf(needle)
      if (at >= 0) found.push(`${source}: …${flat.slice(Math.max(0, at - 60), at + needle.length + 20)}…`)
    }
  }
  return found
}
