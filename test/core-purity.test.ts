/**
 * src/core is pure: it may import only effect's data-type modules (`Data`,
 * `Result`, `Schema` for pure decoding, ...; never `Effect`, `Layer`,
 * `Stream` or anything else of Effect's runtime) and other files inside
 * src/core, and may not reach for I/O through globals (randomness, clocks,
 * timers, process, network, console). The checker is tested on samples
 * first, so a checker that never fails cannot pass.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const CORE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../src/core")

/** Every module specifier of a TypeScript source: static, type-only, re-export, dynamic, require. */
const specifiers = (source: string): ReadonlyArray<string> =>
  ts.preProcessFile(source, true, true).importedFiles.map((file) => file.fileName)

/**
 * The modules of `effect` the core may use: data types and pure functions
 * over them. Effect's runtime (Effect, Layer, Stream, Fiber, Scope, Clock,
 * Random, Schedule, Config, Logger, ...) stays in the adapters. Add a module
 * here only after checking that it does no I/O and runs no fibers.
 */
const EFFECT_DATA_MODULES: ReadonlySet<string> = new Set([
  "Array", "BigInt", "Boolean", "Brand", "Chunk", "Data", "Equal", "Equivalence", "Function", "Hash", "HashMap",
  "HashSet", "Number", "Option", "Order", "Predicate", "Record", "Result", "Schema", "SchemaAST", "SchemaGetter",
  "SchemaIssue", "SchemaTransformation", "String", "Struct", "Tuple"
])

/** Why `specifier`, imported by the file at `file`, is not allowed in the core, or undefined when it is. */
const importProblem = (specifier: string, file: string): string | undefined => {
  if (specifier === "effect") return undefined // the names taken from the barrel are checked by barrelProblems
  const effectModule = /^effect\/([A-Za-z]+)$/.exec(specifier)
  if (effectModule !== null) {
    return EFFECT_DATA_MODULES.has(effectModule[1]!) ? undefined : `${specifier} is not one of effect's data-type modules`
  }
  if (specifier.startsWith("./") || specifier.startsWith("../")) {
    const target = path.resolve(path.dirname(file), specifier)
    const relative = path.relative(CORE, target)
    return relative.startsWith("..") || path.isAbsolute(relative) ? `${specifier} leaves src/core` : undefined
  }
  return `${specifier} is not effect or a core file`
}

const BANNED_CALLS = new Set(["Math.random", "Date.now", "performance.now", "crypto.getRandomValues", "crypto.randomUUID"])
const BANNED_NAMES = new Set([
  "process", "require", "fetch", "console", "setTimeout", "setInterval", "setImmediate", "globalThis", "Buffer", "Date"
])

/** Uses of I/O through globals (not through imports): names and calls a pure module has no business with. */
const globalProblems = (source: string): ReadonlyArray<string> => {
  const file = ts.createSourceFile("sample.ts", source, ts.ScriptTarget.ES2022, true)
  const found: Array<string> = []
  const visit = (node: ts.Node): void => {
    if (ts.isPropertyAccessExpression(node) && BANNED_CALLS.has(node.getText(file))) found.push(node.getText(file))
    if (ts.isIdentifier(node) && BANNED_NAMES.has(node.text)) {
      const parent = node.parent
      // `x.process` or `{ process: 1 }` name a property, not the global.
      const isPropertyName =
        (ts.isPropertyAccessExpression(parent) && parent.name === node) ||
        (ts.isPropertyAssignment(parent) && parent.name === node) ||
        (ts.isPropertySignature(parent) && parent.name === node) ||
        (ts.isPropertyDeclaration(parent) && parent.name === node) ||
        (ts.isMethodDeclaration(parent) && parent.name === node)
      if (!isPropertyName) found.push(node.text)
    }
    ts.forEachChild(node, visit)
  }
  visit(file)
  return found
}

/** The modules taken from the `effect` barrel that are not data types (`import { Effect } from "effect"`). */
const barrelProblems = (source: string): ReadonlyArray<string> => {
  const file = ts.createSourceFile("sample.ts", source, ts.ScriptTarget.ES2022, true)
  const found: Array<string> = []
  for (const statement of file.statements) {
    const isImport = ts.isImportDeclaration(statement)
    if (!isImport && !ts.isExportDeclaration(statement)) continue
    const from = statement.moduleSpecifier
    if (from === undefined || !ts.isStringLiteral(from) || from.text !== "effect") continue
    const bindings = isImport ? statement.importClause?.namedBindings : statement.exportClause
    if (bindings === undefined || ts.isNamespaceImport(bindings) || ts.isNamespaceExport(bindings)) {
      if (!isImport || statement.importClause !== undefined) found.push(`the whole "effect" barrel; import its data-type modules by name`)
      continue
    }
    for (const element of bindings.elements) {
      const name = (element.propertyName ?? element.name).text
      if (!EFFECT_DATA_MODULES.has(name)) found.push(`${name} from "effect" is not one of effect's data-type modules`)
    }
  }
  return found
}

/** All problems of one core file's source. */
const problems = (source: string, file: string): ReadonlyArray<string> => [
  ...specifiers(source).flatMap((specifier) => importProblem(specifier, file) ?? []),
  ...barrelProblems(source),
  ...globalProblems(source).map((name) => `uses ${name}`)
]

const sourceFiles = (dir: string): ReadonlyArray<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(full)
    return /\.(?:ts|mts|cts|js|mjs|cjs)$/.test(entry.name) ? [full] : []
  })

describe("core purity checker", () => {
  const sample = path.join(CORE, "Sample.ts")

  it.each([
    [`import * as fs from "node:fs"`, ["node:fs is not effect or a core file"]],
    [`import { readFile } from "fs"`, ["fs is not effect or a core file"]],
    [`import type { ChannelOptions } from "@grpc/grpc-js"`, ["@grpc/grpc-js is not effect or a core file"]],
    [`import {\n  Type,\n} from "protobufjs"`, ["protobufjs is not effect or a core file"]],
    [`export { x } from "../adapters/etcd/Etcd.js"`, ["../adapters/etcd/Etcd.js leaves src/core"]],
    [`export * from "../main/core.js"`, ["../main/core.js leaves src/core"]],
    [`import "node:net"`, ["node:net is not effect or a core file"]],
    [`const os = await import("node:os")`, ["node:os is not effect or a core file"]],
    [`const cp = require("child_process")`, ["child_process is not effect or a core file", "uses require"]],
    [`import { Effect } from "effect-extra"`, ["effect-extra is not effect or a core file"]],
    [`import * as Effect from "effect/Effect"`, ["effect/Effect is not one of effect's data-type modules"]],
    [`import type { Layer } from "effect/Layer"`, ["effect/Layer is not one of effect's data-type modules"]],
    [`export * from "effect/Stream"`, ["effect/Stream is not one of effect's data-type modules"]],
    [`import { Effect, Result } from "effect"`, [`Effect from "effect" is not one of effect's data-type modules`]],
    [`import { Schedule as S } from "effect"`, [`Schedule from "effect" is not one of effect's data-type modules`]],
    [`import * as E from "effect"`, [`the whole "effect" barrel; import its data-type modules by name`]],
    [`import * as Clock from "effect/Clock"`, ["effect/Clock is not one of effect's data-type modules"]],
    [`import * as Arbitrary from "effect/Arbitrary"`, ["effect/Arbitrary is not one of effect's data-type modules"]],
    [`export const offset = () => Math.floor(Math.random() * 10)`, ["uses Math.random"]],
    [`export const now = () => Date.now()`, ["uses Date.now", "uses Date"]],
    [`export const env = process.env.X`, ["uses process"]],
    [`setTimeout(() => {}, 1)`, ["uses setTimeout"]],
    [`console.log("hi")`, ["uses console"]]
  ])("flags %j", (source, expected) => {
    expect(problems(source, sample)).toEqual(expected)
  })

  it.each([
    `import * as Data from "effect/Data"`,
    `import { Result } from "effect"`,
    `import { Data, Schema as S } from "effect"`,
    `import * as Schema from "effect/Schema"`,
    `import type * as SchemaIssue from "effect/SchemaIssue"`,
    `import * as Address from "./Address.js"`,
    `import type * as Target from "./Target.js"`,
    `export * as X from "./internal/x.js"`,
    `// import * as fs from "node:fs"\nconst text = "import x from 'fs'"`,
    `const o = { process: 1, console: 2 }; o.process; interface I { readonly Date: number }`
  ])("accepts %j", (source) => {
    expect(problems(source, sample)).toEqual([])
  })

  it("flags a relative import from internal/ that climbs out of src/core", () => {
    expect(problems(`import "../../adapters/x.js"`, path.join(CORE, "internal", "x.ts"))).toEqual([
      "../../adapters/x.js leaves src/core"
    ])
    expect(problems(`import "../Address.js"`, path.join(CORE, "internal", "x.ts"))).toEqual([])
  })
})

describe("src/core", () => {
  const files = sourceFiles(CORE)

  it("has the core modules", () => {
    const names = files.map((file) => path.relative(CORE, file))
    for (const name of ["Address.ts", "Target.ts", "Expansion.ts", "Rotation.ts", "Balancer.ts", "EtcdRecord.ts", "EndpointSet.ts"]) expect(names).toContain(name)
  })

  it.each(files.map((file) => [path.relative(CORE, file), file] as const))(
    "%s imports only effect and core files, and no I/O globals",
    (_, file) => {
      expect(problems(fs.readFileSync(file, "utf8"), file)).toEqual([])
    }
  )
})
