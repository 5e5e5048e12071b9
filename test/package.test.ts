/**
 * The published entry points, as a user imports them by package name from
 * the build (`npm test` builds before running the tests): `grpc-anchor` has
 * the whole public API, `grpc-anchor/core` the pure core without pulling in
 * grpc-js or protobufjs (the etcd client's codec), and `require()` of either gives the same module instance
 * as `import`.
 */
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

// Through Node's own resolution of the package by name (the package's
// `exports`), not vitest's aliases, which map the name to the sources.
const requireFromRoot = createRequire(fileURLToPath(new URL("../package.json", import.meta.url)))
const resolved = (name: string): string => requireFromRoot.resolve(name)
const importBuilt = (name: string): Promise<unknown> => import(resolved(name).replace(/\/cjs\/(index|core)\.cjs$/, "/$1.js"))

const root = fileURLToPath(new URL("..", import.meta.url))
const dist = (path: string) => fileURLToPath(new URL(`../dist/${path}`, import.meta.url))

describe("package entry points", () => {
  it("exports the public API from grpc-anchor", async () => {
    const api = (await importBuilt("grpc-anchor")) as typeof import("../src/main/index.js")
    for (const name of [
      "register", "createChannel", "registerEndpoint", "ConnectionObserver", "AnchoredChannel", "Etcd", "Registrar",
      "Discovery", "AnchorRoundRobin", "PassResolver", "EtcdResolver", "Stats", "Target", "Metrics"
    ]) {
      expect(api, name).toHaveProperty(name)
    }
    // The rest of the core is grpc-anchor/core's, not re-exported here.
    for (const name of ["Address", "Expansion", "Rotation", "Balancer", "Subset", "EtcdRecord", "EndpointSet", "EtcdMembers"]) {
      expect(api, name).not.toHaveProperty(name)
    }
    const core = (await importBuilt("grpc-anchor/core")) as typeof import("../src/main/core.js")
    expect(api.Target).toBe(core.Target)
    expect(api.Target.format(api.Target.parseUnsafe("pass:///A:1#2,a:1"))).toBe("pass:///a:1#3")
  })

  it("require() of each entry point gives the ES module build's own namespace (one copy)", () => {
    // In a plain Node process: vitest's module runner has its own module instances.
    const script = `
      import { createRequire } from "node:module"
      const require = createRequire(process.cwd() + "/package.json")
      const report = {}
      for (const name of ["grpc-anchor", "grpc-anchor/core"]) {
        const required = require(name)
        const imported = await import(name)
        const keys = Object.keys(imported)
        report[name] = {
          file: require.resolve(name).split("/").slice(-2).join("/"),
          keys: keys.length,
          same: keys.every((key) => required[key] === imported[key]),
          missing: keys.filter((key) => !(key in required))
        }
      }
      console.log(JSON.stringify(report))`
    const ran = spawnSync(process.execPath, ["--input-type=module", "-e", script], { cwd: root, encoding: "utf8", timeout: 30_000 })
    expect(ran.stderr).toBe("")
    const report = JSON.parse(ran.stdout) as Record<string, { file: string; keys: number; same: boolean; missing: Array<string> }>
    expect(report["grpc-anchor"]).toMatchObject({ file: "cjs/index.cjs", same: true, missing: [] })
    expect(report["grpc-anchor/core"]).toMatchObject({ file: "cjs/core.cjs", same: true, missing: [] })
    expect(report["grpc-anchor"]!.keys).toBeGreaterThan(10)
  })

  it("exports the pure core from grpc-anchor/core, with no I/O module in its import graph", async () => {
    const core = (await importBuilt("grpc-anchor/core")) as typeof import("../src/main/core.js")
    expect(Object.keys(core)).toEqual(expect.arrayContaining(["Address", "Balancer", "EndpointSet", "EtcdRecord", "Expansion", "Rotation", "Subset", "Target"]))
    expect(core).not.toHaveProperty("Schedule")
    const seen = new Set<string>()
    const visit = (file: string) => {
      if (seen.has(file)) return
      seen.add(file)
      // Doc comments hold usage examples with import lines: read code only.
      const code = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "")
      for (const [, spec] of code.matchAll(/(?:from|import)\s*["']([^"']+)["']/g)) {
        if (spec!.startsWith(".")) visit(fileURLToPath(new URL(spec!, `file://${file}`)))
        else expect(spec, `${file} imports ${spec}`).toMatch(/^effect(\/|$)/)
      }
    }
    visit(dist("main/core.js"))
    expect(seen.size).toBeGreaterThan(5)
  })

  it("imports nothing from OpenTelemetry (an optional peer), statically or dynamically, anywhere in grpc-anchor's graph", () => {
    const seen = new Set<string>()
    const outside = new Set<string>()
    const visit = (file: string) => {
      if (seen.has(file)) return
      seen.add(file)
      const code = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "")
      for (const [, spec] of code.matchAll(/(?:from|import)\s*\(?\s*["']([^"']+)["']/g)) {
        if (spec!.startsWith(".")) visit(fileURLToPath(new URL(spec!, `file://${file}`)))
        else outside.add(spec!)
      }
    }
    visit(dist("main/index.js"))
    expect(seen).toContain(dist("adapters/metrics/Metrics.js"))
    expect([...outside].filter((spec) => spec.includes("opentelemetry"))).toEqual([])
  })

  it("ships type declarations for every entry point and condition", () => {
    const pkg = JSON.parse(readFileSync(fileURLToPath(new URL("../package.json", import.meta.url)), "utf8")) as {
      exports: Record<string, Record<"import" | "require", { types: string; default: string }>>
    }
    for (const entry of [".", "./core"]) {
      for (const condition of ["import", "require"] as const) {
        const { types, default: js } = pkg.exports[entry]![condition]
        expect(readFileSync(fileURLToPath(new URL(`../${types}`, import.meta.url)), "utf8"), types).toMatch(/export/)
        expect(readFileSync(fileURLToPath(new URL(`../${js}`, import.meta.url)), "utf8"), js).toMatch(/export|require/)
      }
    }
  })
})
