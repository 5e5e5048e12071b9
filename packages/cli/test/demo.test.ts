/**
 * `grpc-anchor demo` from the build: three echo processes weighted 3/2/1,
 * the third killed and restarted; the JSON summary must say what the
 * servers saw (3/2/1 connections), the shares per phase, and no failed call
 * after the kill was seen. Piped, its progress lines must move and show the
 * kill; in an 80-column pseudo-terminal (tmux) no line may be wider than
 * the terminal, and the live view must be redrawn in place. Each way it is
 * shown, it must pass its own checks.
 */
import { afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import { hasAnsi, killAll, requireBuild, run, start } from "./run.js"
import { columnsOf, runInTerminal } from "./terminal.js"

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
    await demo.waitForLine("the servers-up line", (l) => l.includes("servers up:"), 30_000)
    await demo.waitForLine("the traffic line", (l) => l.includes("calls in flight from now on"))
    // The servers-up event wraps at 80 columns, possibly inside "(pid N)".
    const pids = [...demo.stdout().matchAll(/\(pid\s+(\d+)\)/g)].map((m) => Number(m[1]))
    expect(pids).toHaveLength(3)
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

  it("piped: progress lines whose numbers move and that show the kill, every line within 80 columns, and the summary", async () => {
    const result = await run(["demo", "--duration", "6"], { timeoutMs: 60_000 })
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0)
    expect(hasAnsi(result.stdout)).toBe(false)
    const lines = result.stdout.trimEnd().split("\n")
    expect(lines.filter((l) => columnsOf(l) > 80), "lines wider than 80 columns").toEqual([])
    expect(result.stdout).toMatch(/^grpc-anchor demo {2}pass:\/\/\//)
    expect(result.stdout).toMatch(/SIGKILL s3 \(pid \d+\)/)
    expect(result.stdout).toMatch(/the channel sees every connection to s3 down/)
    expect(result.stdout).toMatch(/s3 rejoined: all 6 connections READY/)
    expect(result.stdout).toMatch(/ok {4}connections seen by the servers at the end: s1 3\/3, s2 2\/2, s3 1\/1/)
    expect(lines.at(-1)).toBe("PASS: every check holds")

    // Progress, once a second: `  2.0s  1,234 answered, 7 failed | s1 3/3 60.1% | s2 2/2 39.9% | s3 down`.
    const progress = lines.flatMap((line, at) => {
      const m = /^ *(\d+\.\d)s {2}([\d,]+) answered, ([\d,]+) failed \| (.*)$/.exec(line)
      return m === null ? [] : [{ at, seconds: Number(m[1]), answered: Number(m[2]!.replace(/,/g, "")), servers: m[4]! }]
    })
    expect(progress.length, result.stdout).toBeGreaterThanOrEqual(3)
    // The numbers move: time and answered calls grow from line to line.
    for (let i = 1; i < progress.length; i++) {
      expect(progress[i]!.seconds, result.stdout).toBeGreaterThan(progress[i - 1]!.seconds)
      expect(progress[i]!.answered, result.stdout).toBeGreaterThan(progress[i - 1]!.answered)
    }
    // The kill shows: s3 is up before the SIGKILL line and down in a line after it.
    const kill = lines.findIndex((l) => /SIGKILL s3/.test(l))
    expect(progress.filter((p) => p.at < kill).every((p) => /s3 1\/1 /.test(p.servers)), result.stdout).toBe(true)
    expect(progress.some((p) => p.at > kill && p.servers.endsWith("s3 down")), result.stdout).toBe(true)
  }, 90_000)

  it("in an 80x24 terminal: every line within 80 columns, the live view redrawn in place, the kill shown, the summary passes", async () => {
    const ran = await runInTerminal(["demo", "--duration", "6"], { columns: 80, rows: 24, timeoutMs: 75_000 })
    const final = ran.final.join("\n")
    expect(ran.code, final).toBe(0)
    for (const screen of [...ran.screens, ran.final]) {
      expect(screen.filter((l) => columnsOf(l) > 80), `lines wider than 80 columns in:\n${screen.join("\n")}`).toEqual([])
    }
    // The live view: its table and legend were on screen, and s3's row showed it down after the kill.
    const views = ran.screens.filter((screen) => screen.some((l) => l.includes("share of this phase")))
    expect(views.length, final).toBeGreaterThan(0)
    expect(views.some((screen) => screen.some((l) => /^ {2}s3 +down /.test(l))), "a frame with s3 down").toBe(true)
    expect(views.every((screen) => screen.some((l) => l.startsWith("  conns: live connections the server sees")))).toBe(true)
    // Redrawn in place: the frame's title is in the scrollback once, followed by the summary.
    expect(ran.final.filter((l) => l.startsWith("grpc-anchor demo  pass:///")), final).toHaveLength(1)
    expect(ran.final.filter((l) => l.startsWith("summary  pass:///")), final).toHaveLength(1)
    expect(final).toMatch(/ok {4}connections seen by the servers at the end: s1 3\/3, s2 2\/2, s3 1\/1/)
    expect(ran.final.filter((l) => l !== "").at(-1)).toBe("PASS: every check holds")
  }, 90_000)
})
