/**
 * The published entry points, as a user imports them by package name from
 * the build (`npm test` builds before running the tests): `grpc-anchor` has
 * the whole public API, `grpc-anchor/core` the pure core without pulling in
 * grpc-js or etcd3, and `require()` of either gives the same module instance
 * as `import`.
 */
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

// Through Node's own resolution of the package by name (the package's
// `exports`), not vitest's aliases, which map the name to the sources.
const requireFromRoot = createRequire(fileURLToPath(new URL("../package.json", import.meta.url)))
const resolved = (name: string): string => requireFromRoot.resolve(name)
const importBuilt = (name: string): Promise<unknown> => import(resolved(name).replace(/\/cjs\/(index|core)\.cjs$/, "/$1.js"))

const dist = (path: string) => fileURLToPath(new URL(`../dist/${path}`, import.meta.url))

describe("package entry points", () => {
  it("exports the public API from grpc-anchor", async () => {
    const api = (await importBuilt("grpc-anchor")) as typeof import("../src/main/index.js")
    for (const name of [
      "register", "createChannel", "registerEndpoint", "ConnectionObserver", "AnchoredChannel", "Etcd", "Registrar",
      "Discovery", "AnchorRoundRobin", "PassResolver", "EtcdResolver", "Target", "Expansion", "Rotation", "Picker",
      "EtcdRecord", "EndpointSet", "Address"
    ]) {
      expect(api, name).toHaveProperty(name)
    }
    expect(api.Target.format(api.Target.unsafeParse("pass:///A:1#2,a:1"))).toBe("pass:///a:1#3")
  })

  it("require() of each entry point gives the ES module build's own namespace (one copy)", async () => {
    for (const name of ["grpc-anchor", "grpc-anchor/core"]) {
      expect(resolved(name), name).toMatch(/\.cjs$/)
      const required = requireFromRoot(name) as Record<string, unknown>
      const imported = (await importBuilt(name)) as Record<string, unknown>
      expect(Object.keys(required).filter((k) => k !== "__esModule").sort(), name).toEqual(Object.keys(imported).sort())
      for (const key of Object.keys(imported)) expect(required[key], `${name}: ${key}`).toBe(imported[key])
    }
  })

  it("exports the pure core from grpc-anchor/core, with no I/O module in its import graph", async () => {
    const core = (await importBuilt("grpc-anchor/core")) as typeof import("../src/main/core.js")
    expect(Object.keys(core)).toEqual(expect.arrayContaining(["Address", "EndpointSet", "EtcdRecord", "Expansion", "Picker", "Rotation", "Target"]))
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
