/**
 * The packages as users get them: `npm pack` of the library and of the
 * command, installed from the tarballs into temporary apps together with
 * @grpc/grpc-js and effect 4 from the registry, then run against real
 * servers on loopback (and a real etcd for the Effect app):
 * an ES module app, a CommonJS app, a TypeScript app checked with strict,
 * module nodenext and skipLibCheck false, an Effect 4 app with Etcd,
 * Registrar and AnchoredChannel, and the `grpc-anchor` bin. Also publint and
 * arethetypeswrong on the packed library, and a library-only install that
 * must bring none of the command's dependencies. The packed manifests hold
 * no install script and no development fields, and npm names neither
 * package among those with install scripts. Importing anything from the
 * library registers it in grpc-js, bundled with esbuild too. Every ```ts
 * block of both READMEs type-checks against the packed packages, and the
 * quick starts run against local servers and etcd.
 */
import { execFile } from "node:child_process"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startEchoServer, type EchoServer } from "../packages/cli/src/echo/echo.js"
import { type EtcdServer, startEtcd } from "./support/etcd.js"
import { backendsOf, expectedConnections, localize, preamble, RUN_EPILOGUE, runPreamble, tsBlocks } from "./support/readme.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const appSources = fileURLToPath(new URL("./consumer/app", import.meta.url))
const INSTALL_TIMEOUT_MS = 5 * 60_000

interface Ran {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs a command to completion (bounded); never throws on a non-zero exit. */
const run = (command: string, args: ReadonlyArray<string>, options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Ran> =>
  new Promise((resolve) => {
    execFile(
      command,
      args,
      {
        cwd: options.cwd,
        env: { ...process.env, npm_config_audit: "false", npm_config_fund: "false", npm_config_update_notifier: "false", ...options.env },
        timeout: options.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
        resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() })
      }
    )
  })

const ok = async (command: string, args: ReadonlyArray<string>, options: Parameters<typeof run>[2]): Promise<string> => {
  const ran = await run(command, args, options)
  if (ran.code !== 0) throw new Error(`\`${command} ${args.join(" ")}\` exited ${ran.code}\n${ran.stdout}\n${ran.stderr}`)
  return ran.stdout
}

const lastJsonLine = (stdout: string): Record<string, unknown> => {
  const line = stdout.trim().split("\n").filter((l) => l.startsWith("{")).at(-1)
  if (line === undefined) throw new Error(`no JSON line in:\n${stdout}`)
  return JSON.parse(line) as Record<string, unknown>
}

let work = ""
let app = ""
let libraryTarball = ""
let commandTarball = ""
let etcd: EtcdServer | undefined
/** What npm printed installing the packed packages into the app. */
let installed: Ran | undefined

/** A file's text inside a tarball (`package/...`). */
const fromTarball = (tarball: string, path: string): Promise<string> => ok("tar", ["-xzOf", tarball, path], { cwd: work })

/** npm's "added N packages" of an install's output. */
const addedPackages = (output: string): number => {
  const added = /added (\d+) packages?/.exec(output)
  if (added === null) throw new Error(`no "added N packages" in:\n${output}`)
  return Number(added[1])
}

/** `du -sk` of a directory, in MB. */
const megabytes = async (dir: string): Promise<number> => Number((await ok("du", ["-sk", dir], { cwd: work })).split("\t")[0]) / 1024

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "grpc-anchor-consumer-"))
  // `npm test` has built both packages: pack them as they are, as a release
  // does but from a copy, without the packages' build scripts (which would
  // rewrite dist/ while other test files run it). In the copy the manifest
  // script of `prepack` (scripts/manifest.mjs) writes the published
  // manifests, so the working tree's package.json files are never touched.
  const copy = join(work, "repo")
  const cliCopy = join(copy, "packages", "cli")
  mkdirSync(cliCopy, { recursive: true })
  for (const entry of ["package.json", "LICENSE", "README.md", "dist", "src", "scripts"]) {
    cpSync(join(root, entry), join(copy, entry), { recursive: true })
  }
  for (const entry of ["package.json", "LICENSE", "README.md", "dist", "src"]) {
    cpSync(join(root, "packages", "cli", entry), join(cliCopy, entry), { recursive: true })
  }
  // The command first: its `file:../..` dependency is read from the library's development manifest.
  await ok("node", ["../../scripts/manifest.mjs", "publish"], { cwd: cliCopy })
  await ok("node", ["scripts/manifest.mjs", "publish"], { cwd: copy })
  await ok("npm", ["pack", "--silent", "--ignore-scripts", "--pack-destination", work], { cwd: copy, timeoutMs: INSTALL_TIMEOUT_MS })
  await ok("npm", ["pack", "--silent", "--ignore-scripts", "--pack-destination", work], { cwd: cliCopy, timeoutMs: INSTALL_TIMEOUT_MS })
  const tarballs = readdirSync(work)
  libraryTarball = join(work, tarballs.find((f) => /^grpc-anchor-\d/.test(f))!)
  commandTarball = join(work, tarballs.find((f) => f.startsWith("grpc-anchor-cli-"))!)
  app = join(work, "app")
  mkdirSync(app)
  cpSync(appSources, app, { recursive: true })
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "consumer-app", private: true, version: "1.0.0" }, null, 2))
  installed = await run(
    "npm",
    ["install", "--prefer-offline", libraryTarball, commandTarball, "@grpc/grpc-js@~1.14.7", "effect@^4.1.0", "@types/node@^24"],
    { cwd: app, timeoutMs: INSTALL_TIMEOUT_MS }
  )
  if (installed.code !== 0) throw new Error(`npm install exited ${installed.code}\n${installed.stdout}\n${installed.stderr}`)
  etcd = await startEtcd()
}, 2 * INSTALL_TIMEOUT_MS)

afterAll(async () => {
  await etcd?.stop()
  if (work !== "") rmSync(work, { recursive: true, force: true })
})

describe("the packed library in a consumer app", () => {
  it("installs one effect and one @grpc/grpc-js, shared with the library's own etcd client and the command, and no etcd3", async () => {
    for (const name of ["effect", "@grpc/grpc-js"]) {
      const paths = (await ok("npm", ["ls", name, "--all", "--parseable"], { cwd: app })).trim().split("\n").filter(Boolean)
      expect(new Set(paths), name).toEqual(new Set([join(app, "node_modules", name)]))
    }
    // The etcd client speaks etcd's gRPC API on the app's own @grpc/grpc-js: no etcd3 (nor its grpc-js copy) comes along.
    const etcd3 = await run("npm", ["ls", "etcd3", "--all", "--parseable"], { cwd: app })
    expect(etcd3.stdout.trim()).toBe("")
    expect(existsSync(join(app, "node_modules", "etcd3"))).toBe(false)
  })

  it("runs as an ES module app: pass:///...#2 gives the server 2 connections", async () => {
    const result = lastJsonLine(await ok("node", ["esm.mjs"], { cwd: app }))
    expect(result).toMatchObject({ answers: { esm: 40 }, connections: 2 })
    expect(result.format).toMatch(/^pass:\/\/\/127\.0\.0\.1:\d+#2$/)
  })

  it("runs as a CommonJS app with require()", async () => {
    const result = lastJsonLine(await ok("node", ["cjs.cjs"], { cwd: app }))
    expect(result).toMatchObject({ answers: { cjs: 40 }, connections: 2 })
  })

  it("type-checks as a TypeScript app (strict, module nodenext, skipLibCheck false) and runs", async () => {
    const tsc = join(root, "node_modules", "typescript", "bin", "tsc")
    const checked = await run("node", [tsc, "-p", "tsconfig.json"], { cwd: app, timeoutMs: 120_000 })
    expect(checked.stdout + checked.stderr, "tsc output").toBe("")
    expect(checked.code).toBe(0)
    const result = lastJsonLine(await ok("node", ["typed.mts"], { cwd: app }))
    expect(result).toMatchObject({ format: "pass:///localhost:9080#2,localhost:9090", rotation: "object", balancer: "object" })
    expect(result.message).toMatch(/count is 0; expected a whole number 1\.\.256/)
  })

  it("runs an Effect 4 app: Registrar publishes the server in etcd, AnchoredChannel on etcd:///SERVICE#2 reaches it", async () => {
    const result = lastJsonLine(
      await ok("node", ["effect.mjs"], { cwd: app, env: { ETCD_ENDPOINTS: etcd!.endpoints.join(",") }, timeoutMs: 60_000 })
    )
    expect(result).toMatchObject({ answers: { effect: 40 }, connections: 2, slots: 2 })
  })

  it("runs the grpc-anchor bin of the packed command", async () => {
    const bin = join(app, "node_modules", ".bin", "grpc-anchor")
    expect(existsSync(bin)).toBe(true)
    const resolved = await run(bin, ["resolve", "pass:///:9080#2,:9090"], { cwd: app })
    expect(resolved.code).toBe(0)
    expect(resolved.stdout).toContain("pass:///localhost:9080#2,localhost:9090")
    const refused = await run(bin, ["resolve", "pass:///10.0.0.1:9080#0"], { cwd: app })
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain("count is 0; expected a whole number 1..256")
    // Both READMEs show this very run: their samples must be the real text.
    for (const file of ["README.md", "packages/cli/README.md"]) {
      const readme = readFileSync(join(root, file), "utf8")
      const sample = /\$ grpc-anchor resolve 'pass:\/\/\/10\.0\.0\.1:9080#0'\n([\s\S]*?)```/.exec(readme)
      expect(sample, `${file}: sample of a refused target`).not.toBeNull()
      expect(refused.stdout + refused.stderr, file).toBe(sample![1])
    }
  })

  it("registers on import: without register(), a client on pass:///...#2 reaches a plain grpc-js server over 2 connections", async () => {
    const result = lastJsonLine(await ok("node", ["implicit.mjs"], { cwd: app }))
    expect(result).toMatchObject({ answered: 40, connections: 2 })
    expect(result.error).toBeUndefined()
  })

  it("registers on import in an esbuild bundle too (the package's sideEffects keep the registering entry point)", async () => {
    const esbuild = join(root, "node_modules", ".bin", "esbuild")
    const bundled = join(work, "bundle")
    await ok(esbuild, ["implicit.mjs", "--bundle", "--platform=node", "--format=cjs", `--outfile=${join(bundled, "implicit.cjs")}`, "--log-level=warning"], {
      cwd: app,
      timeoutMs: 120_000
    })
    // Run outside the app: the bundle alone, no node_modules to fall back on.
    const result = lastJsonLine(await ok("node", ["implicit.cjs"], { cwd: bundled }))
    expect(result).toMatchObject({ answered: 40, connections: 2 })
  })

  it("never imported, grpc-anchor cannot register: grpc-js's DNS error, which the README explains", async () => {
    const result = lastJsonLine(await ok("node", ["noImport.mjs"], { cwd: app }))
    expect(result.answered).toBe(0)
    const error = String(result.error)
    expect(error).toMatch(/^Name resolution failed for target dns:pass:\/\/\/127\.0\.0\.1:\d+#2$/)
    const readme = readFileSync(join(root, "README.md"), "utf8")
    expect(readme).toContain("Name resolution failed for target dns:pass:///")
  })
})

describe("the packed library's metadata", () => {
  it("the published manifests hold what a consumer needs: no scripts, no development fields; the command's README ships", async () => {
    const library = JSON.parse(await fromTarball(libraryTarball, "package/package.json")) as Record<string, unknown>
    const command = JSON.parse(await fromTarball(commandTarball, "package/package.json")) as Record<string, unknown>
    for (const [name, manifest] of [["grpc-anchor", library], ["grpc-anchor-cli", command]] as const) {
      for (const field of ["scripts", "devDependencies", "workspaces"]) expect(manifest[field], `${name}: ${field}`).toBeUndefined()
    }
    const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version
    expect(command.dependencies).toMatchObject({ "grpc-anchor": `^${version}` })
    // The entry points that register on import are the ones the manifest declares as having side effects.
    expect(library.sideEffects).toEqual(["./dist/main/index.js", "./dist/main/cjs/index.cjs"])
    const files = (await ok("tar", ["-tzf", commandTarball], { cwd: work })).split("\n")
    expect(files).toContain("package/README.md")
    expect(await fromTarball(commandTarball, "package/README.md")).toBe(readFileSync(join(root, "packages", "cli", "README.md"), "utf8"))
  })

  it("npm names neither package among those with install scripts", () => {
    const output = `${installed!.stdout}\n${installed!.stderr}`
    expect(output.split("\n").filter((line) => /install-scripts\s+grpc-anchor(-cli)?@/.test(line))).toEqual([])
  })

  it("passes publint --strict", async () => {
    const linted = await run(join(root, "node_modules", ".bin", "publint"), ["--strict", libraryTarball], { cwd: work, timeoutMs: 120_000 })
    expect(linted.stdout + linted.stderr).not.toMatch(/warning|error|suggestion/i)
    expect(linted.code).toBe(0)
  })

  it("has types that resolve for node16 (ESM and CommonJS) and bundlers (arethetypeswrong)", async () => {
    const checked = await run(join(root, "node_modules", ".bin", "attw"), [libraryTarball, "--profile", "node16", "--format", "json"], {
      cwd: work,
      timeoutMs: 120_000
    })
    const report = JSON.parse(checked.stdout) as { analysis: { problems: ReadonlyArray<{ resolutionKind?: string }> } }
    // node10 resolution (TypeScript's pre-`exports` `moduleResolution: node`)
    // cannot see subpath exports such as grpc-anchor/core: deliberately
    // unsupported (README, Install), so its problems are left out.
    expect(report.analysis.problems.filter((problem) => problem.resolutionKind !== "node10")).toEqual([])
  })

  it("a library user's install brings none of the command's dependencies", async () => {
    const lean = join(work, "lean")
    mkdirSync(lean)
    writeFileSync(join(lean, "package.json"), JSON.stringify({ name: "lean-app", private: true, version: "1.0.0" }))
    const install = await ok("npm", ["install", "--prefer-offline", libraryTarball, "@grpc/grpc-js@~1.14.7", "effect@^4.1.0"], {
      cwd: lean,
      timeoutMs: INSTALL_TIMEOUT_MS
    })
    const installed = (await ok("npm", ["ls", "--all", "--parseable"], { cwd: lean })).trim().split("\n").slice(1)
    const names = installed.map((path) => path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length))
    for (const commandOnly of ["grpc-anchor-cli", "@effect/platform-node", "@effect/platform-node-shared", "undici"]) {
      expect(names, commandOnly).not.toContain(commandOnly)
    }
    // OpenTelemetry is an optional peer: not installed, and the library (Metrics included) loads and collects without it.
    expect(names.filter((name) => name.startsWith("@opentelemetry/"))).toEqual([])
    const metrics = await ok(
      process.execPath,
      ["--input-type=module", "-e", 'const { Metrics } = await import("grpc-anchor"); console.log(JSON.stringify({ definitions: Metrics.definitions.length, points: Metrics.collect().length }))'],
      { cwd: lean }
    )
    expect(JSON.parse(metrics.trim())).toEqual({ definitions: 21, points: 0 })
    // The README's figures, as a user measures them: npm's "added N packages" and `du -sh node_modules`,
    // for the library with its peers and for the peers alone.
    const peersOnly = join(work, "peers-only")
    mkdirSync(peersOnly)
    writeFileSync(join(peersOnly, "package.json"), JSON.stringify({ name: "peers-app", private: true, version: "1.0.0" }))
    const peers = await ok("npm", ["install", "--prefer-offline", "@grpc/grpc-js@~1.14.7", "effect@^4.1.0"], {
      cwd: peersOnly,
      timeoutMs: INSTALL_TIMEOUT_MS
    })
    const measured = {
      added: addedPackages(install),
      mb: await megabytes(join(lean, "node_modules")),
      peersAdded: addedPackages(peers),
      peersMb: await megabytes(join(peersOnly, "node_modules"))
    }
    console.log(`[consumer] library-only install: ${JSON.stringify(measured)}`)
    const readme = readFileSync(join(root, "README.md"), "utf8")
    const stated = /npm prints `added (\d+) packages` and `du -sh node_modules` shows (\d+)M[^]*?the peers alone: `added (\d+) packages`, (\d+)M/.exec(readme)
    expect(stated, "the README's install figures").not.toBeNull()
    const [, added, mb, peersAdded, peersMb] = stated!.map(Number)
    expect({ added, peersAdded }, "update the README's install figures").toEqual({ added: measured.added, peersAdded: measured.peersAdded })
    expect(Math.abs(mb! - measured.mb) / measured.mb, `README ${mb}M, measured ${measured.mb.toFixed(1)} MB`).toBeLessThanOrEqual(0.1)
    expect(Math.abs(peersMb! - measured.peersMb) / measured.peersMb, `README ${peersMb}M, measured ${measured.peersMb.toFixed(1)} MB`).toBeLessThanOrEqual(0.1)
  }, INSTALL_TIMEOUT_MS)
})

describe("the READMEs' TypeScript examples", () => {
  const readmes = ["README.md", "packages/cli/README.md"]
  const blocks = readmes.flatMap((file) => tsBlocks(file, readFileSync(join(root, file), "utf8")))

  /** The library's export names, as the packed package has them. */
  const libraryExports = async (): Promise<ReadonlyArray<string>> =>
    JSON.parse(await ok("node", ["--input-type=module", "-e", 'console.log(JSON.stringify(Object.keys(await import("grpc-anchor"))))'], { cwd: app })) as ReadonlyArray<string>

  it("every ```ts block of both READMEs type-checks against the packed packages (strict, module nodenext, skipLibCheck false)", async () => {
    expect(blocks.length).toBeGreaterThan(0)
    const exports = await libraryExports()
    const dir = join(app, "readme")
    mkdirSync(dir, { recursive: true })
    const names = blocks.map((block, i) => {
      const name = `block${i}.mts`
      writeFileSync(join(dir, name), preamble(block.code, exports) + block.code + "\n")
      return name
    })
    const tsconfig = JSON.parse(readFileSync(join(app, "tsconfig.json"), "utf8")) as { compilerOptions: Record<string, unknown> }
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: tsconfig.compilerOptions, files: names }, null, 2))
    const tsc = join(root, "node_modules", "typescript", "bin", "tsc")
    const checked = await run("node", [tsc, "-p", "tsconfig.json", "--pretty", "false"], { cwd: dir, timeoutMs: 180_000 })
    // Each error names the README line it comes from.
    const errors = (checked.stdout + checked.stderr).split("\n").filter(Boolean).map((line) => {
      const at = /^block(\d+)\.mts\((\d+),(\d+)\): (.*)$/.exec(line)
      if (at === null) return line
      const block = blocks[Number(at[1])]!
      const preambleLines = preamble(block.code, exports).split("\n").length - 1
      return `${block.file}:${block.line + Number(at[2]) - 1 - preambleLines} (${block.heading}): ${at[4]}`
    })
    expect(errors).toEqual([])
    expect(checked.code).toBe(0)
  }, 240_000)

  const quickStarts = blocks.filter((block) => block.heading.startsWith("Quick start"))

  it("has quick starts to run", () => {
    expect(quickStarts.map((b) => b.heading)).toEqual(expect.arrayContaining(["Quick start: plain grpc-js", "Quick start: Effect"]))
  })

  it.each(quickStarts.map((block, i) => [`${block.heading} (README.md line ${block.line})`, block, i] as const))(
    "%s runs: each backend's server sees the connections the example asks for",
    async (_name, block, i) => {
      const exports = await libraryExports()
      const backends = backendsOf(block.code)
      const expected = expectedConnections(block.code)
      const servers = new Map<string, EchoServer>()
      try {
        for (const backend of backends) servers.set(backend, await startEchoServer({ name: backend }))
        const code = localize(
          block.code,
          new Map([...servers].map(([backend, server]) => [backend, server.address])),
          etcd!.endpoints[0]!,
          { from: "billing", to: `billing-readme-${i}` }
        )
        writeFileSync(join(app, `readme-run-${i}.mts`), runPreamble(code, exports) + code + "\n" + RUN_EPILOGUE)
        const child = execFile("node", [`readme-run-${i}.mts`], {
          cwd: app,
          env: { ...process.env, ETCD_ENDPOINTS: etcd!.endpoints.join(",") },
          timeout: 60_000
        })
        let output = ""
        child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()))
        child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()))
        const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
        try {
          // The servers' own count of the connections they were opened, live or since closed.
          const seen = () => [...servers].map(([backend, server]) => [backend, server.observer.connections({ includeClosed: true }).length])
          const want = backends.map((backend) => [backend, expected.get(backend)])
          const deadline = Date.now() + 40_000
          while (Date.now() < deadline && (JSON.stringify(seen()) !== JSON.stringify(want) || !output.includes("README-EXAMPLE-RUNNING"))) {
            if (child.exitCode !== null) break
            await new Promise((resolve) => setTimeout(resolve, 100))
          }
          expect(seen(), output).toEqual(want)
          // Settled: no more connections come.
          await new Promise((resolve) => setTimeout(resolve, 500))
          expect(seen(), output).toEqual(want)
          expect(output).not.toMatch(/error/i)
        } finally {
          child.kill("SIGKILL")
          await exited
        }
      } finally {
        for (const server of servers.values()) await server.close({ force: true })
      }
    },
    90_000
  )
})
