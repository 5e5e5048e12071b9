// The package.json a consumer gets, for both packages of this repository
// (the library at the root, the command in packages/cli). `npm pack` and
// `npm publish` run a package's `prepack` script (this one, `publish`)
// before they read the manifest they pack and send, and `postpack`
// (`develop`) after:
//
//   node scripts/manifest.mjs publish [PACKAGE_DIR]
//     keeps the development manifest in PACKAGE_DIR/.package.develop.json
//     and writes the published one: no `scripts` (npm 11 warns on every
//     install about a package with an install script, and `prepare` is
//     one), no `devDependencies`, no `workspaces`; a `file:` dependency on a
//     package of this repository becomes `^<its version>`.
//   node scripts/manifest.mjs develop [PACKAGE_DIR]
//     puts the development manifest back.
//
// PACKAGE_DIR defaults to the current directory (npm runs scripts there).
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"

/** Fields only this repository's development uses. */
const DEV_ONLY = ["scripts", "devDependencies", "workspaces"]

const [mode, dir = "."] = process.argv.slice(2)
const manifestPath = join(dir, "package.json")
const backupPath = join(dir, ".package.develop.json")

if (mode === "publish") {
  if (existsSync(backupPath)) {
    throw new Error(`${backupPath} exists: a pack did not finish; run \`node scripts/manifest.mjs develop ${dir}\` first`)
  }
  const text = readFileSync(manifestPath, "utf8")
  const manifest = JSON.parse(text)
  for (const field of DEV_ONLY) delete manifest[field]
  for (const [name, range] of Object.entries(manifest.dependencies ?? {})) {
    if (typeof range === "string" && range.startsWith("file:")) {
      const linked = JSON.parse(readFileSync(join(resolve(dir, range.slice("file:".length)), "package.json"), "utf8"))
      manifest.dependencies[name] = `^${linked.version}`
    }
  }
  writeFileSync(backupPath, text)
  writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + "\n")
} else if (mode === "develop") {
  if (existsSync(backupPath)) renameSync(backupPath, manifestPath)
} else {
  throw new Error(`usage: node scripts/manifest.mjs publish|develop [PACKAGE_DIR] (got ${mode})`)
}
