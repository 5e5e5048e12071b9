/**
 * README examples as tests (used by test/consumer.test.ts): every ```ts
 * block of a markdown file, the preamble that makes a fragment a module
 * (declared stand-ins and the imports it leaves out, never in the README
 * itself), and, for the quick starts, the same block rewritten to run
 * against local servers and a local etcd.
 */
import { Result } from "effect"
import { Target } from "../../src/main/core.js"

/** One ```ts block: the file it is in, the line its code starts on, and the `##` section it sits under. */
export interface Block {
  readonly file: string
  readonly line: number
  readonly heading: string
  readonly code: string
}

/** Every ```ts (or ```typescript) block of `markdown`. */
export const tsBlocks = (file: string, markdown: string): ReadonlyArray<Block> => {
  const blocks: Array<Block> = []
  const lines = markdown.split("\n")
  let heading = ""
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    const title = /^#{1,3} (.*)$/.exec(line)
    if (title !== null) heading = title[1]!
    const fence = /^(\s*)```(ts|typescript)\s*$/.exec(line)
    if (fence === null) continue
    const indent = fence[1]!.length
    const code: Array<string> = []
    let j = i + 1
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j]!); j++) code.push(lines[j]!.slice(indent))
    blocks.push({ file, line: i + 2, heading, code: code.join("\n") })
    i = j
  }
  return blocks
}

/** Names a README fragment may use without declaring: what a reader's app has. */
const STAND_INS: Readonly<Record<string, string>> = {
  EchoClient: "declare const EchoClient: new (address: string, credentials: __grpc.ChannelCredentials, options?: __grpc.ClientOptions) => __grpc.Client",
  BillingClient: "declare const BillingClient: new (address: string, credentials: __grpc.ChannelCredentials, options?: __grpc.ClientOptions) => __grpc.Client",
  insecure: "declare const insecure: __grpc.ChannelCredentials"
}

/** Effect modules a fragment may use without importing them. */
const EFFECT_MODULES = ["Effect", "Layer", "Config", "ConfigProvider", "Duration", "Schedule", "Stream", "Scope", "Context", "Redacted"]

/** Whether `code` declares or imports `name` itself. */
const declares = (code: string, name: string): boolean =>
  new RegExp(`\\b(const|let|var|class|function|type|interface)\\s+${name}\\b`).test(code) ||
  new RegExp(`import\\s+(type\\s+)?\\{[^}]*\\b${name}\\b[^}]*\\}\\s+from`).test(code) ||
  new RegExp(`import\\s+(type\\s+)?\\*\\s+as\\s+${name}\\s+from`).test(code)

/** `code` without its string literals' contents and its comments (template literals lose their `${}` too). */
const codeOnly = (code: string): string => {
  let out = ""
  for (let i = 0; i < code.length; i++) {
    const c = code[i]!
    if (c === "/" && code[i + 1] === "/") {
      while (i < code.length && code[i] !== "\n") i++
      out += "\n"
    } else if (c === "/" && code[i + 1] === "*") {
      i = code.indexOf("*/", i + 2)
      if (i === -1) break
      i++
    } else if (c === '"' || c === "'" || c === "`") {
      for (i++; i < code.length && code[i] !== c; i++) if (code[i] === "\\") i++
      out += `${c}${c}`
    } else out += c
  }
  return out
}

/** Whether `code` uses `name` as a free identifier (not as a property, not inside a string or comment). */
const uses = (code: string, name: string): boolean => new RegExp(`(?<![.\\w$])${name}\\b`).test(codeOnly(code))

/**
 * The lines to put before `block` so that it compiles as a module on its
 * own: stand-ins for the reader's client classes and credentials, and the
 * imports of grpc-anchor (any of `exports`, the library's export names) and
 * effect modules it uses without importing. A name it declares itself is
 * left alone.
 */
export const preamble = (code: string, exports: ReadonlyArray<string>): string => {
  const out = ['import type * as __grpc from "@grpc/grpc-js"']
  for (const [name, declaration] of Object.entries(STAND_INS)) if (uses(code, name) && !declares(code, name)) out.push(declaration)
  const library = exports.filter((name) => uses(code, name) && !declares(code, name))
  if (library.length > 0) out.push(`import { ${library.join(", ")} } from "grpc-anchor"`)
  const effect = EFFECT_MODULES.filter((name) => uses(code, name) && !declares(code, name))
  if (effect.length > 0) out.push(`import { ${effect.join(", ")} } from "effect"`)
  // `export {}` makes even an import-free fragment a module (top-level await, no global clashes).
  out.push("export {}")
  return out.join("\n") + "\n"
}

/** Addresses of backends in a README example: the 10.0.0.x documentation addresses, etcd's port 2379 excepted. */
const BACKEND = /\b10\.0\.0\.\d{1,3}:(?!2379\b)\d{1,5}\b/g
/** A string or array literal listing only documentation etcd members (10.0.0.x:2379). */
const ETCD_STRING = /"10\.0\.0\.\d{1,3}:2379(?:,10\.0\.0\.\d{1,3}:2379)*"/g
const ETCD_ARRAY = /\[\s*"10\.0\.0\.\d{1,3}:2379"(?:\s*,\s*"10\.0\.0\.\d{1,3}:2379")*\s*\]/g

/** The backend addresses a quick start names, in order of first use. */
export const backendsOf = (code: string): ReadonlyArray<string> => [...new Set(code.match(BACKEND) ?? [])]

/**
 * How many connections each backend of a quick start should get: its `#N`
 * in the block's `pass:` targets, else the `#N` of its `etcd:` target (the
 * backends it registers).
 */
export const expectedConnections = (code: string): ReadonlyMap<string, number> => {
  const expected = new Map<string, number>()
  let etcdCount: number | undefined
  for (const [, text] of code.matchAll(/"((?:pass|etcd):\/\/[^"]*)"/g)) {
    const parsed = Target.parse(text!)
    if (Result.isFailure(parsed)) continue
    const target = parsed.success
    if (target._tag === "Pass") for (const e of target.endpoints) expected.set(`${e.address.host}:${e.address.port}`, e.count)
    else etcdCount = target.count
  }
  for (const backend of backendsOf(code)) if (!expected.has(backend) && etcdCount !== undefined) expected.set(backend, etcdCount)
  return expected
}

/**
 * A quick start rewritten to run here: each backend address becomes a local
 * server's, every etcd member list the local etcd, and the service name one
 * of its own (runs do not share records). Nothing else changes.
 */
export const localize = (
  code: string,
  servers: ReadonlyMap<string, string>,
  etcd: string,
  service: { readonly from: string; readonly to: string }
): string =>
  code
    .replace(BACKEND, (address) => servers.get(address) ?? address)
    .replace(ETCD_STRING, JSON.stringify(etcd))
    .replace(ETCD_ARRAY, JSON.stringify([etcd]))
    .replace(new RegExp(`(["/])${service.from}(["#])`, "g"), `$1${service.to}$2`)

/**
 * What a running quick start gets before its code: its client classes are
 * real (the echo service of the test's servers) and credentials insecure,
 * with the imports it leaves out.
 */
export const runPreamble = (code: string, exports: ReadonlyArray<string>): string =>
  preamble(code, exports)
    .split("\n")
    .filter((line) => !line.startsWith("declare const"))
    .join("\n") +
  'import { EchoClient, EchoClient as BillingClient, callMany as __callMany } from "./readmeEcho.mjs"\n' +
  (declares(code, "insecure") ? "" : 'import { credentials as __credentials } from "@grpc/grpc-js"\nconst insecure = __credentials.createInsecure()\n')

/** After a running quick start's code: calls on its `client`, if it made one, then the word the test waits for. */
export const RUN_EPILOGUE = `
// Appended by the test: calls on the example's client, if it made one, then the process waits to be stopped.
if (typeof client !== "undefined") console.log(JSON.stringify({ answers: await __callMany(client, 30) }))
console.log("README-EXAMPLE-RUNNING")
setInterval(() => {}, 60_000)
`
