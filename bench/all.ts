/**
 * npm run bench — every benchmark in one go (pool cost at size,
 * adaptive counts and pick modes, subsetting, peers side by side, gRPC
 * throughput, failover, etcd discovery), side by side on this machine, written to
 * bench/RESULTS.md with the machine's description and each figure next to
 * the comparison it belongs to.
 */
import { execFileSync } from "node:child_process"
import { cpus, freemem, loadavg, totalmem, type as osType, release } from "node:os"
import { writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { printEtcd, runEtcdBench } from "./etcd.js"
import { printFailover, runFailoverBench } from "./failover.js"
import { printScenario, runGrpcBench } from "./grpc.js"
import { fmt, median, percentile } from "./support/load.js"

const started = Date.now()
const p50 = (values: ReadonlyArray<number>) => percentile([...values].sort((a, b) => a - b), 50)
const section = (title: string, body: string) => `## ${title}\n\n\`\`\`\n${body.trimEnd()}\n\`\`\`\n`

/** Runs a benchmark script that prints its own report, in its own process (a clean heap and event loop). */
const runScript = (file: string): string =>
  execFileSync(process.execPath, ["--import", "tsx", fileURLToPath(new URL(file, import.meta.url))], { encoding: "utf8" })

console.log("bench: pool cost at size ...")
const pool = runScript("./pool.ts")
console.log(pool)
console.log("bench: adaptive counts and load-aware picking ...")
const adaptive = runScript("./adaptive.ts")
console.log(adaptive)
console.log("bench: subsetting ...")
const subset = runScript("./subset.ts")
console.log(subset)
console.log("bench: side by side with peers ...")
const peers = runScript("./peers.ts")
console.log(peers)
console.log("bench: gRPC throughput ...")
const grpc = await runGrpcBench()
for (const s of grpc) console.log(printScenario(s))
console.log("bench: failover ...")
const failover = await runFailoverBench()
console.log(printFailover(failover))
console.log("bench: etcd ...")
const etcd = await runEtcdBench()
console.log(printEtcd(etcd))

const cpu = cpus()
const machine = [
  `CPU: ${cpu.length} x ${cpu[0]?.model ?? "unknown"}`,
  `memory: ${fmt(totalmem() / 2 ** 30, 1)} GiB (${fmt(freemem() / 2 ** 30, 1)} GiB free at the end)`,
  `OS: ${osType()} ${release()}; node ${process.version}; load average at the end ${loadavg().map((l) => l.toFixed(2)).join(" ")}`,
  `date: ${new Date().toISOString()}; whole run ${fmt((Date.now() - started) / 1000)} s`
].join("\n")

const limited = grpc.find((s) => s.scenario === "stream-limited")
const noGain = grpc.find((s) => s.scenario === "no gain possible")
const naive = limited?.rows.find((r) => r.variant.startsWith("naive"))
const anchor4 = limited?.rows.find((r) => r.variant === "grpc-anchor #4")
const headlines = [
  limited && `- Stream-limited server (4 streams per connection), 200 calls in flight: grpc-anchor #4 does **${fmt(limited.goal.ratio, 2)}x** the calls/s of plain grpc-js round_robin (goal >= 1.4x)` +
    (naive && anchor4 ? `, and ${fmt(anchor4.median.callsPerSecond / naive.median.callsPerSecond, 2)}x a naive pool of 4 clients rotated by the caller.` : "."),
  noGain && `- No gain possible (2 servers, #1 each): grpc-anchor does **${fmt(noGain.goal.ratio, 2)}x** round_robin's calls/s (goal >= 0.97x): the policy's own cost.`,
  `- Failover (one of 2 backends SIGKILLed under traffic): calls started after the kill that failed, median per trial: ` +
    failover.rows.map((r) => `${r.variant} ${fmt(median(r.trials.map((t) => t.failedAfter)))} (max ${Math.max(...r.trials.map((t) => t.failedAfter))})`).join(", ") + ".",
  `- etcd: registration to first call p50 **${fmt(p50(etcd.registerMs), 1)} ms**, deregistration to last call p50 **${fmt(p50(etcd.deregisterMs), 1)} ms** (goal < 100 ms); ${etcd.endpoints} endpoints x 2 connections all READY in **${fmt(etcd.allReadyMs)} ms** (goal < 5,000 ms).`
].filter(Boolean).join("\n")

const report = [
  "# grpc-anchor benchmark results",
  "",
  "Written by `npm run bench` (bench/all.ts); every figure was measured in the same run on the machine below, side by side with the comparison it belongs to. The machine is shared and noisy: read the ratios and medians, not single numbers.",
  "",
  "## Machine",
  "",
  "```",
  machine,
  "```",
  "",
  "## Headlines",
  "",
  headlines,
  "",
  section("Pool cost at size (npm run bench:pool)", pool),
  section("Side by side with grpc-gcp and a client pool (npm run bench:peers)", peers),
  section("Adaptive connection counts and load-aware picking (npm run bench:adaptive)", adaptive),
  section("Deterministic subsetting (npm run bench:subset)", subset),
  section("gRPC throughput (npm run bench:grpc)", grpc.map(printScenario).join("\n")),
  section("Failover (npm run bench:failover)", printFailover(failover)),
  section("etcd discovery (npm run bench:etcd)", printEtcd(etcd))
].join("\n")

const out = fileURLToPath(new URL("./RESULTS.md", import.meta.url))
writeFileSync(out, report)
console.log(`wrote ${out}`)
