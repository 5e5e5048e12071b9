/**
 * The README's **Metrics** section as a reader uses it: its table lists
 * every metric exactly as `Metrics.definitions` defines it, every
 * Prometheus name it mentions (the alerts included) exists, and its code
 * block runs: against two local servers, the Prometheus text it serves
 * shows the pool's #2/#1 READY connections.
 */
import { spawn } from "node:child_process"
import { readFileSync, rmSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { Metrics } from "../../src/main/index.js"
import { freePort } from "../support/etcd.js"
import { cleanupAfterEach, echoServers, eventually } from "../support/grpc.js"
import { tsBlocks } from "../support/readme.js"
import { sample } from "./support.js"

const README = fileURLToPath(new URL("../../README.md", import.meta.url))
const markdown = readFileSync(README, "utf8")
const section = markdown.slice(markdown.indexOf("\n## Metrics\n"), markdown.indexOf("\n## Benchmarks\n"))
const defer = cleanupAfterEach()
const servers = echoServers(defer)

const prometheusName = (d: Metrics.Definition) => d.name.replace(/\./g, "_") + (d.kind === "counter" ? "_total" : "")
const LABELS = ["grpc_anchor_target", "grpc_anchor_address", "grpc_anchor_state", "grpc_anchor_service", "grpc_anchor_reason"]

describe("README: Metrics", () => {
  it("lists every metric with its Prometheus name, kind, unit and attributes, and no other", () => {
    const rows = section.split("\n").filter((line) => line.startsWith("| `grpc_anchor."))
    const cells = rows.map((row) => row.split(" | ").map((cell) => cell.replace(/^\| /, "").trim()))
    expect(cells.map((c) => c[0])).toEqual(Metrics.definitions.map((d) => `\`${d.name}\``))
    for (const [i, d] of Metrics.definitions.entries()) {
      expect(cells[i]!.slice(1, 5)).toEqual([`\`${prometheusName(d)}\``, d.kind, `\`${d.unit}\``, d.attributes.map((a) => `\`${a}\``).join(", ")])
    }
  })

  it("names only metrics that exist, in the alerts and the prose", () => {
    const known = new Set([...Metrics.definitions.map(prometheusName), ...LABELS])
    const mentioned = new Set(section.match(/\bgrpc_anchor_[a-z_]+\b/g) ?? [])
    expect([...mentioned].filter((name) => !known.has(name))).toEqual([])
    const promql = /```promql\n([^]*?)```/.exec(section)?.[1] ?? ""
    expect(promql).toContain('grpc_anchor_connections{grpc_anchor_state="READY"} == 0')
    expect(promql).toContain("grpc_anchor_grace_addresses > 0")
  })

  it("runs its example: the Prometheus text it serves shows the #2/#1 READY connections", async () => {
    const [block] = tsBlocks(README, section)
    expect(block).toBeDefined()
    const [a, b] = await servers("a", "b")
    const port = await freePort()
    const code = block!.code
      .replace("10.0.0.1:9080", a!.address)
      .replace("10.0.0.2:9090", b!.address)
      .replace("port: 9464", `port: ${port}`)
      .replace('from "grpc-anchor"', `from ${JSON.stringify(fileURLToPath(new URL("../../src/main/index.ts", import.meta.url)))}`)
    expect(code).not.toContain("10.0.0.")
    const file = fileURLToPath(new URL(`./.readme-example-${process.pid}.mts`, import.meta.url))
    writeFileSync(
      file,
      `import { EchoClient } from ${JSON.stringify(fileURLToPath(new URL("../../packages/cli/src/echo/echo.ts", import.meta.url)))}\n` +
        code +
        "\n// Appended by the test: connect, then wait to be stopped.\n" +
        'client.waitForReady(Date.now() + 10_000, (error) => console.log(error ? String(error) : "README-EXAMPLE-READY"))\n' +
        "setInterval(() => {}, 1_000)\n"
    )
    defer(() => rmSync(file, { force: true }))
    const child = spawn(process.execPath, ["--import", "tsx", file], { stdio: ["ignore", "pipe", "pipe"] })
    defer(() => child.kill("SIGKILL"))
    let output = ""
    child.stdout.on("data", (chunk) => (output += chunk))
    child.stderr.on("data", (chunk) => (output += chunk))
    await eventually("the example's client is ready", () => output.includes("README-EXAMPLE-READY"), { timeoutMs: 20_000 }).catch((error: Error) => {
      throw new Error(`${error.message}; output: ${output}`)
    })
    const target = `pass:///${a!.address}#2,${b!.address}`
    await eventually("READY 2 and 1 in the scrape", async () => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2_000) })).text()
      const ready = (address: string) => sample(text, "grpc_anchor_connections", { grpc_anchor_target: target, grpc_anchor_address: address, grpc_anchor_state: "READY" })
      return ready(a!.address) === 2 && ready(b!.address) === 1
    }, { timeoutMs: 10_000 })
  })
})
