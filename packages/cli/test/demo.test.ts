/**
 * `grpc-anchor demo` from the build: three echo processes weighted 3/2/1,
 * the third killed and restarted; the JSON summary must say what the
 * servers saw (3/2/1 connections), the shares per phase, and no failed call
 * after the kill was seen.
 */
import { afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import { hasAnsi, killAll, requireBuild, run, start } from "./run.js"

beforeAll(requireBuild)
afterEach(killAll)

interface Summary {
  ok: boolean
  mode: string
  target: string
  calls: { ok: number; failed: number }
  servers: Array<{ name: string; address: string; weight: number; expectedConnections: number; connections: number | null; callsPerConnection: Array<number>; answered: number }>
  phases: Array<{ name: string; judged: boolean; calls: number; failed: number; shares: Array<{ server: string; share: number; expected: number | null }> }>
  failures: { total: number; afterKillSeen: number; beforeKill: number }
  checks: Array<{ name: string; ok: boolean; detail: string }>
}

describe("demo", () => {
  it("--json --duration 3: exit 0, servers see 3/2/1 connections, shares per phase, no failure after the kill was seen", async () => {
    const result = await run(["demo", "--json", "--duration", "3"], { timeoutMs: 45_000 })
    expect(result.stderr).toBe("")
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0)
    const summary = JSON.parse(result.stdout) as Summary
    expect(summary.checks.filter((c) => !c.ok)).toEqual([])
    expect(summary.ok).toBe(true)
    expect(summary.mode).toBe("pass")
    const ports = summary.servers.map((s) => s.address.split(":")[1])
    expect(summary.target).toBe(`pass:///127.0.0.1:${ports[0]}#3,127.0.0.1:${ports[1]}#2,127.0.0.1:${ports[2]}`)

    expect(summary.servers.map((s) => [s.name, s.connections])).toEqual([["s1", 3], ["s2", 2], ["s3", 1]])
    // The restarted s3 is a new process: it reports only the calls since it rejoined.
    for (const server of summary.servers) {
      expect(server.callsPerConnection).toHaveLength(server.expectedConnections)
      const least = Math.min(...server.callsPerConnection)
      const most = Math.max(...server.callsPerConnection)
      // Round robin over a server's own connections: they carry (nearly) the same number of calls.
      expect(most - least).toBeLessThanOrEqual(Math.max(3, most * 0.02))
    }

    const judged = Object.fromEntries(summary.phases.filter((p) => p.judged).map((p) => [p.name, p]))
    expect(Object.keys(judged)).toEqual(["all up", "third down", "rejoined"])
    const expected: Record<string, Array<number>> = {
      "all up": [3 / 6, 2 / 6, 1 / 6],
      "third down": [3 / 5, 2 / 5, 0],
      rejoined: [3 / 6, 2 / 6, 1 / 6]
    }
    for (const [name, shares] of Object.entries(expected)) {
      const phase = judged[name]!
      expect(phase.calls).toBeGreaterThanOrEqual(200)
      expect(phase.shares).toHaveLength(3)
      phase.shares.forEach((s, i) => {
        expect(s.expected).toBeCloseTo(shares[i]!, 10)
        expect(Math.abs(s.share - shares[i]!)).toBeLessThanOrEqual(0.02)
      })
    }
    expect(judged["third down"]!.failed).toBe(0)
    expect(judged["rejoined"]!.failed).toBe(0)
    expect(summary.failures.afterKillSeen).toBe(0)
    expect(summary.failures.beforeKill).toBe(0)
  }, 60_000)

  it("SIGINT midway: the servers are stopped, no summary, exit 130", async () => {
    const demo = start(["demo", "--duration", "60"])
    const up = await demo.waitForLine("the servers-up line", (l) => l.includes("servers up:"), 30_000)
    const pids = [...up.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1]))
    expect(pids).toHaveLength(3)
    await demo.waitForLine("the traffic line", (l) => l.includes("calls in flight from now on"))
    demo.signal("SIGINT")
    const done = await demo.exited(20_000)
    expect(done.code, done.stderr).toBe(130)
    expect(done.stderr.trimEnd().split("\n")).toEqual(["grpc-anchor: demo interrupted; servers stopped, no summary"])
    expect(done.stdout).not.toContain("summary")
    const alive = pids.filter((pid) => {
      try {
        process.kill(pid, 0)
        return true
      } catch {
        return false
      }
    })
    expect(alive).toEqual([])
  }, 60_000)

  it("prints plain progress lines and the summary when stdout is not a terminal", async () => {
    const result = await run(["demo", "--duration", "2"], { timeoutMs: 45_000 })
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0)
    expect(hasAnsi(result.stdout)).toBe(false)
    expect(result.stdout).toMatch(/^grpc-anchor demo {2}pass:\/\/\//)
    expect(result.stdout).toMatch(/SIGKILL s3 \(pid \d+\)/)
    expect(result.stdout).toMatch(/the channel sees every connection to s3 down/)
    expect(result.stdout).toMatch(/s3 rejoined: all 6 connections READY/)
    expect(result.stdout).toMatch(/ok {4}connections seen by the servers at the end: s1 3\/3, s2 2\/2, s3 1\/1/)
    expect(result.stdout.trimEnd().split("\n").at(-1)).toBe("PASS: every check holds")
  }, 60_000)
})
