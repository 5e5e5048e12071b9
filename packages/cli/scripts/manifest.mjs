// Rewrites the command package's dependency on the library for packing:
// in this repository it is `file:../..` (the library at the root, linked by
// npm), in the published package it is `^<the library's version>`.
//   node scripts/manifest.mjs publish   (prepack)
//   node scripts/manifest.mjs develop   (postpack)
import { readFileSync, writeFileSync } from "node:fs"

const mode = process.argv[2]
const manifestUrl = new URL("../package.json", import.meta.url)
const manifest = JSON.parse(readFileSync(manifestUrl, "utf8"))
const library = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8"))
if (mode === "publish") manifest.dependencies["grpc-anchor"] = `^${library.version}`
else if (mode === "develop") manifest.dependencies["grpc-anchor"] = "file:../.."
else throw new Error(`usage: manifest.mjs publish|develop (got ${mode})`)
writeFileSync(manifestUrl, JSON.stringify(manifest, null, 2) + "\n")
