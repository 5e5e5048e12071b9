/**
 * The published entry points, as a user imports them by package name from
 * the build (`npm test` builds before running the tests): `grpc-anchor` has
 * the whole public API, `grpc-anchor/core` the pure core without pulling in
 * grpc-js or etcd3.
 */
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

// By name, as a user would; typed from the sources because the build may not
// exist yet when the typecheck runs.
const importPackage = (name: string): Promise<unknown> => import(name)

const dist = (path: string) => fileURLToPath(new URL(`../dist/${path}`, import.meta.url))

describe("package entry points", () => {
  it("exports the public API from grpc-anchor", async () => {
    const api = (await importPackage("grpc-anchor")) as typeof import("../src/main/index.js")
    for (const name of [
      "register", "createChannel", "registerEndpoint", "ConnectionObserver", "AnchoredChannel", "Etcd", "Registrar",
      "Discovery", "AnchorRoundRobin", "PassResolver", "EtcdResolver", "Target", "Expansion", "Schedule", "Picker",
      "EtcdRecord", "Address"
    ]) {
      expect(api, name).toHaveProperty(name)
    }
    expect(api.Target.format(api.Target.unsafeParse("pass:///A:1#2,a:1"))).toBe("pass:///a:1#3")
  })

  it("exports the pure core from grpc-anchor/core, with no I/O module in its import graph", async () => {
    const core = (await importPackage("grpc-anchor/core")) as typeof import("../src/main/core.js")
    expect(Object.keys(core).sort()).toEqual(["Address", "EtcdRecord", "Expansion", "Picker", "Schedule", "Target"])
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

  it("ships type declarations for both entry points", () => {
    const pkg = JSON.parse(readFileSync(fileURLToPath(new URL("../package.json", import.meta.url)), "utf8")) as {
      exports: Record<string, { types: string; import: string }>
    }
    for (const entry of [".", "./core"]) {
      expect(readFileSync(fileURLToPath(new URL(`../${pkg.exports[entry]!.types}`, import.meta.url)), "utf8")).toMatch(/export/)
    }
  })
})
