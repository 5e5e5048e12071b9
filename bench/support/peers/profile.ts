/**
 * Where a client's CPU goes: runs scenario (b) of bench:peers (1 server
 * capping 4 streams per connection, no delay, 200 in flight) with the
 * grpc-anchor client, grpc-gcp's pool and the rotated pool of 4 clients, each
 * under `node --cpu-prof`, cuts each profile to the measured window and
 * summarizes it: CPU per call by where the code lives (grpc-anchor, grpc-js,
 * Node's http2/net/streams, effect, grpc-gcp, V8 builtins, GC), the top
 * self-time functions, inclusive time of grpc-anchor's own functions, and the
 * functions on which grpc-anchor's client spends more per call than the peer.
 *
 *   node --import tsx bench/support/peers/profile.ts        (or BENCH_PROFILE=1 npm run bench:peers)
 *   node --import tsx bench/support/peers/profile.ts FILE.cpuprofile   (summarize one profile, whole)
 *
 * Knobs: BENCH_PROFILE_SECONDS (default 6), BENCH_PROFILE_REPEATS (default 2:
 * profiles per variant, added up), BENCH_PROFILE_DIR (default a
 * temporary directory, printed). Every process it starts is stopped at the end.
 */
import { findSourceMap } from "node:module"
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { basename, join } from "node:path"
import { fmt, median, table } from "../load.js"
import { installCleanup } from "./children.js"
import { startClient } from "./clientProcess.js"
import { startServer } from "./serverProcess.js"
import type { ClientRun, VariantSpec } from "./spec.js"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber: number
}
interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}
interface CpuProfile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly endTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

/** This repository's root as a file URL. */
const REPO = new URL("../../../", import.meta.url).href

/**
 * Loads this repository's library sources here through tsx, so their source
 * maps are registered (the same compilation the client processes ran).
 */
const loadSourceMaps = async (): Promise<void> => {
  await import("../../../src/main/index.js")
}

/** Where a function's code lives. */
export const category = (frame: CallFrame): string => {
  const { url, functionName } = frame
  if (url === "") {
    if (functionName === "(garbage collector)") return "GC"
    if (functionName === "(idle)") return "idle"
    if (functionName === "(program)") return "(program): V8/native, no JS frame"
    return "V8 builtins / native"
  }
  if (url.includes("/node_modules/@grpc/grpc-js/")) return "@grpc/grpc-js"
  if (url.includes("/node_modules/grpc-gcp/") || url.includes("/node_modules/protobufjs/")) return "grpc-gcp"
  if (url.includes("/node_modules/effect/")) return "effect"
  if (url.startsWith(`${REPO}bench/`) || url.startsWith(`${REPO}packages/`)) return "bench harness (load loop, echo call)"
  if (url.startsWith(`${REPO}src/core/`)) return "grpc-anchor core"
  if (url.startsWith(`${REPO}src/`)) return "grpc-anchor adapters"
  if (url.startsWith("node:internal/http2")) return "node http2"
  if (url.startsWith("node:net") || url.startsWith("node:internal/stream") || url.startsWith("node:internal/streams") || url.startsWith("node:stream"))
    return "node net/streams"
  if (url.startsWith("node:internal/timers") || url.startsWith("node:timers")) return "node timers"
  if (url.startsWith("node:")) return "node other"
  if (url.includes("/node_modules/")) return "other dependencies"
  return "other"
}

const sources = new Map<string, ReadonlyArray<string>>()
/**
 * An arrow function's name from its source line (`const step = (...) =>`),
 * which tsx's output drops. The line is read from the source the map was
 * made from (files may change while the benchmark runs), else from disk.
 */
const nameAt = (url: string, line: number): string => {
  let lines = sources.get(url)
  if (lines === undefined) {
    const payload = findSourceMap(url)?.payload as { readonly sourcesContent?: ReadonlyArray<string | null> } | undefined
    const content = payload?.sourcesContent?.[0]
    try {
      lines = (content ?? readFileSync(new URL(url), "utf8")).split("\n")
    } catch {
      lines = []
    }
    sources.set(url, lines)
  }
  const match = /(?:const|let|function)\s+([\w$]+)/.exec(lines[line] ?? "")
  return match ? `${match[1]} (arrow)` : "(anonymous)"
}

/**
 * `function file:line` in the source: tsx compiles each .ts file to one line
 * (whitespace minified), so positions in this repository's files go through
 * the source map tsx registered when this process loaded the same files.
 */
const frameKey = (frame: CallFrame): string => {
  const name = frame.functionName || "(anonymous)"
  if (frame.url.startsWith("file://") && !frame.url.includes("/node_modules/")) {
    const entry = findSourceMap(frame.url)?.findEntry(frame.lineNumber, frame.columnNumber)
    if (entry !== undefined && "originalLine" in entry) {
      return `${frame.functionName || nameAt(entry.originalSource, entry.originalLine)} ${shortUrl(entry.originalSource)}:${entry.originalLine + 1}`
    }
    return `${name} ${shortUrl(frame.url)}:${frame.lineNumber + 1}:${frame.columnNumber + 1}`
  }
  return `${name} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`
}
const shortUrl = (url: string) => {
  const at = url.lastIndexOf("/node_modules/")
  if (at >= 0) return url.slice(at + "/node_modules/".length)
  const src = url.match(/\/(src|bench|packages)\/.*$/)
  return src ? src[0].slice(1) : url
}

export interface ProfileSummary {
  readonly label: string
  readonly calls: number
  /** Sampled CPU (not idle) over the window, µs. */
  readonly busyUs: number
  readonly categories: ReadonlyMap<string, number>
  /** Self time per function, µs. */
  readonly self: ReadonlyMap<string, { readonly us: number; readonly category: string }>
  /** Inclusive time of grpc-anchor's own functions, µs (each sample counted once per function). */
  readonly anchorInclusive: ReadonlyMap<string, number>
}

/** Self and inclusive time of the samples inside `windowUs` (the whole profile without one). */
export const summarize = (label: string, profile: CpuProfile, calls: number, windowUs?: readonly [number, number]): ProfileSummary => {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const categories = new Map<string, number>()
  const self = new Map<string, { us: number; category: string }>()
  const anchorInclusive = new Map<string, number>()
  let busyUs = 0
  let time = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    time += profile.timeDeltas[i] ?? 0
    // A sample's weight is the time until the next one (the last: the mean interval).
    const next = profile.timeDeltas[i + 1]
    const weight = next ?? (profile.endTime - profile.startTime) / Math.max(1, profile.samples.length)
    if (windowUs !== undefined && (time < windowUs[0] || time > windowUs[1])) continue
    const node = byId.get(profile.samples[i]!)
    if (node === undefined) continue
    const cat = category(node.callFrame)
    if (cat === "idle") continue
    busyUs += weight
    categories.set(cat, (categories.get(cat) ?? 0) + weight)
    const key = frameKey(node.callFrame)
    const entry = self.get(key) ?? { us: 0, category: cat }
    entry.us += weight
    self.set(key, entry)
    // Inclusive time of grpc-anchor's frames on this sample's stack, once each.
    const seen = new Set<string>()
    for (let id: number | undefined = node.id, depth = 0; id !== undefined && depth < 1_000; id = parent.get(id), depth++) {
      const frame = byId.get(id)!.callFrame
      if (!category(frame).startsWith("grpc-anchor")) continue
      const k = frameKey(frame)
      if (seen.has(k)) continue
      seen.add(k)
      anchorInclusive.set(k, (anchorInclusive.get(k) ?? 0) + weight)
    }
  }
  return { label, calls, busyUs, categories, self, anchorInclusive }
}

const perCall = (us: number, calls: number) => fmt(us / Math.max(1, calls), 1)
const pct = (us: number, total: number) => `${fmt((100 * us) / Math.max(1, total), 1)}%`

/** The report: categories side by side, top functions per profile, grpc-anchor's own functions, and the difference to the peers. */
export const printProfiles = (summaries: ReadonlyArray<ProfileSummary>, top = 15): string => {
  const out: Array<string> = []
  const cats = [...new Set(summaries.flatMap((s) => [...s.categories.keys()]))].sort(
    (a, b) => (summaries[0]!.categories.get(b) ?? 0) - (summaries[0]!.categories.get(a) ?? 0)
  )
  out.push("sampled client CPU per call (µs) by where the code lives (% of the profile's busy samples)")
  out.push(
    table(
      ["where", ...summaries.map((s) => s.label)],
      [
        ...cats.map((c) => [c, ...summaries.map((s) => `${perCall(s.categories.get(c) ?? 0, s.calls)} (${pct(s.categories.get(c) ?? 0, s.busyUs)})`)]),
        ["total busy", ...summaries.map((s) => `${perCall(s.busyUs, s.calls)} (${fmt(s.calls)} calls)`)]
      ]
    )
  )
  for (const s of summaries) {
    out.push(`\ntop ${top} self-time functions: ${s.label}`)
    const rows = [...s.self].sort((a, b) => b[1].us - a[1].us).slice(0, top)
    out.push(table(["function (file:line)", "where", "% busy", "µs/call"], rows.map(([k, v]) => [k, v.category, pct(v.us, s.busyUs), perCall(v.us, s.calls)])))
  }
  const anchor = summaries.find((s) => s.anchorInclusive.size > 0)
  if (anchor !== undefined) {
    out.push(`\ngrpc-anchor's own functions, inclusive (callees counted): ${anchor.label}`)
    const rows = [...anchor.anchorInclusive].sort((a, b) => b[1] - a[1]).slice(0, top)
    out.push(table(["function (file:line)", "% busy", "µs/call"], rows.map(([k, us]) => [k, pct(us, anchor.busyUs), perCall(us, anchor.calls)])))
    for (const peer of summaries.filter((s) => s !== anchor)) {
      out.push(`\nself time per call grpc-anchor spends beyond ${peer.label} (top ${top} differences, µs/call)`)
      const keys = new Set([...anchor.self.keys(), ...peer.self.keys()])
      const rows = [...keys]
        .map((k) => {
          const a = (anchor.self.get(k)?.us ?? 0) / Math.max(1, anchor.calls)
          const p = (peer.self.get(k)?.us ?? 0) / Math.max(1, peer.calls)
          return { k, a, p, where: anchor.self.get(k)?.category ?? peer.self.get(k)!.category }
        })
        .sort((x, y) => y.a - y.p - (x.a - x.p))
        .slice(0, top)
      out.push(table(["function (file:line)", "where", "anchor", "peer", "diff"], rows.map((r) => [r.k, r.where, fmt(r.a, 2), fmt(r.p, 2), fmt(r.a - r.p, 2)])))
    }
  }
  return out.join("\n")
}

const PROFILE_SECONDS = Number(process.env.BENCH_PROFILE_SECONDS ?? 6)
const PROFILE_REPEATS = Number(process.env.BENCH_PROFILE_REPEATS ?? 2)

/** Several profiles of one variant as one: times and calls added up. */
const merge = (label: string, list: ReadonlyArray<ProfileSummary>): ProfileSummary => {
  const add = <V>(maps: ReadonlyArray<ReadonlyMap<string, V>>, value: (v: V) => number, make: (us: number, v: V) => V) => {
    const out = new Map<string, V>()
    for (const map of maps) {
      for (const [k, v] of map) {
        const previous = out.get(k)
        out.set(k, make((previous === undefined ? 0 : value(previous)) + value(v), v))
      }
    }
    return out
  }
  return {
    label,
    calls: list.reduce((sum, s) => sum + s.calls, 0),
    busyUs: list.reduce((sum, s) => sum + s.busyUs, 0),
    categories: add(list.map((s) => s.categories), (v) => v, (us) => us),
    self: add(list.map((s) => s.self), (v) => v.us, (us, v) => ({ us, category: v.category })),
    anchorInclusive: add(list.map((s) => s.anchorInclusive), (v) => v, (us) => us)
  }
}

/** Scenario (b) under the profiler: grpc-anchor #4, grpc-gcp (max 4, watermark 4), 4 rotated clients. */
export const runProfiles = async (): Promise<ReadonlyArray<ProfileSummary>> => {
  await loadSourceMaps()
  if (!(PROFILE_SECONDS > 0 && PROFILE_SECONDS <= 60)) throw new Error(`BENCH_PROFILE_SECONDS must be 0 < s <= 60`)
  if (!(Number.isInteger(PROFILE_REPEATS) && PROFILE_REPEATS >= 1 && PROFILE_REPEATS <= 10)) throw new Error(`BENCH_PROFILE_REPEATS must be 1..10`)
  const root = process.env.BENCH_PROFILE_DIR ?? mkdtempSync(join(tmpdir(), "grpc-anchor-peers-prof-"))
  mkdirSync(root, { recursive: true })
  const server = await startServer({ name: "capped", maxStreams: 4 })
  const summaries: Array<ProfileSummary> = []
  try {
    const port = server.port
    const variants: ReadonlyArray<VariantSpec> = [
      { kind: "anchor", ports: [port], count: 4 },
      { kind: "grpc-gcp", ports: [port], policy: "pick_first", maxSize: 4, lowWatermark: 4 },
      { kind: "pool", clients: [[port], [port], [port], [port]], policy: "pick_first" }
    ]
    const profiles = new Map<string, Array<{ readonly summary: ProfileSummary; readonly run: ClientRun }>>()
    const accepted = async () => (await server.stats()).reduce((sum, w) => sum + w.connections, 0)
    for (let repeat = 0; repeat < PROFILE_REPEATS; repeat++) {
      // Rotated each repetition, like the benchmark's rounds.
      for (const spec of variants.map((_, i) => variants[(i + repeat) % variants.length]!)) {
        const dir = mkdtempSync(join(root, `${spec.kind}-`))
        const before = await accepted()
        const client = await startClient(spec, { inFlight: 200, delayMs: 0, warmupMs: 2_000 }, [
          "--cpu-prof",
          "--cpu-prof-dir",
          dir,
          "--cpu-prof-interval",
          "250"
        ])
        let run: ClientRun
        let opened: number
        let openedMeasuring: number
        try {
          const warm = await accepted()
          run = await client.run(PROFILE_SECONDS * 1_000)
          // A pool that churns connections shows here.
          const after = await accepted()
          opened = after - before
          openedMeasuring = after - warm
        } finally {
          await client.stop()
        }
        const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"))
        if (file === undefined) throw new Error(`${client.name}: no .cpuprofile written in ${dir}`)
        const profile = JSON.parse(readFileSync(join(dir, file), "utf8")) as CpuProfile
        const summary = summarize(client.name, profile, run.calls, run.windowUs)
        profiles.set(client.name, [...(profiles.get(client.name) ?? []), { summary, run }])
        process.stderr.write(
          `profile ${join(dir, file)}: ${fmt(run.callsPerSecond)} calls/s, ${fmt(run.cpuUsPerCall)} µs CPU/call, ` +
            `${opened} connections (${openedMeasuring} while measured)\n`
        )
      }
    }
    for (const [name, list] of profiles) {
      const cps = median(list.map((p) => p.run.callsPerSecond))
      const cpu = median(list.map((p) => p.run.cpuUsPerCall))
      summaries.push(merge(`${name} (${list.length} x ${PROFILE_SECONDS} s; ${fmt(cps)} calls/s, ${fmt(cpu)} µs CPU/call)`, list.map((p) => p.summary)))
    }
  } finally {
    await server.stop()
  }
  return summaries
}

if (import.meta.url === `file://${process.argv[1]}`) {
  installCleanup()
  const file = process.argv[2]
  if (file !== undefined) {
    await loadSourceMaps()
    const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile
    console.log(printProfiles([summarize(basename(file), profile, 1)]))
  } else {
    console.log(
      `profiles of scenario (b)'s clients, ${PROFILE_REPEATS} x ${PROFILE_SECONDS} s measured windows each (after a 2 s warm-up; order rotated), 250 µs sampling\n`
    )
    console.log(printProfiles(await runProfiles()))
  }
  process.exit(0)
}
