/**
 * How the demo shows itself: the live view redrawn on a terminal, one plain
 * progress line a second when stdout is not one, and the summary as text.
 * (`--json` prints the summary as it is.)
 */
import { stripVTControlCharacters } from "node:util"
import * as Effect from "effect/Effect"
import { percent } from "../internal/common.js"
import type { Summary } from "./judge.js"
import { addressOf, currentPhase, ms, now, type Phase, type State, thousands } from "./state.js"

/** How the run is shown: a redrawn table, plain progress lines, or only the JSON summary. */
export type Output = "tty" | "plain" | "json"

/** The summary as text lines. */
export const renderSummary = (summary: Summary): ReadonlyArray<string> => {
  const out: Array<string> = []
  out.push("")
  out.push(`summary  ${summary.target}`)
  out.push(`         ${thousands(summary.calls.ok)} calls answered, ${thousands(summary.calls.failed)} failed, in ${ms(summary.durationMs)}`)
  out.push("")
  const names = summary.servers.map((s) => s.name)
  out.push(`  ${"phase".padEnd(20)} ${"time".padEnd(11)} ${"calls".padStart(8)} ${"failed".padStart(6)}   ${names.map((n) => `${n} share (expected)`.padEnd(20)).join(" ")}`)
  for (const p of summary.phases) {
    const cells = p.shares.map((s) => (p.judged ? `${percent(s.share).padStart(6)} (${percent(s.expected ?? 0).padStart(6)})` : `${percent(s.share).padStart(6)}`).padEnd(20))
    out.push(
      `  ${p.name.padEnd(20)} ${`${ms(p.startMs)}-${ms(p.endMs)}`.padEnd(11)} ${thousands(p.calls).padStart(8)} ${String(p.failed).padStart(6)}   ${cells.join(" ")}`
    )
  }
  out.push("")
  for (const s of summary.servers) {
    out.push(
      `  ${s.name}  ${s.address.padEnd(21)} connections ${s.connections ?? "?"}/${s.expectedConnections}` +
        `  calls per connection ${s.callsPerConnection.length === 0 ? "-" : s.callsPerConnection.map(thousands).join(" / ")}` +
        `  answered ${thousands(s.answered)}`
    )
  }
  out.push("")
  for (const c of summary.checks) out.push(`  ${c.ok ? "ok  " : "FAIL"}  ${c.name}: ${c.detail}`)
  out.push("")
  out.push(summary.ok ? "PASS: every check holds" : `FAIL: ${summary.checks.filter((c) => !c.ok).length} check(s) failed`)
  return out.map((l) => l.trimEnd())
}

const BAR = 28

/** A bar of `share` (0..1), `width` cells, with a mark where the expected share ends. */
const bar = (share: number, expected: number | undefined, width: number): string => {
  const cells: Array<string> = Array.from({ length: width }, (_, i) => (i < Math.round(share * width) ? "█" : " "))
  if (expected !== undefined) {
    const at = Math.min(width - 1, Math.round(expected * width))
    if (cells[at] === " ") cells[at] = "│"
  }
  return cells.join("")
}

/** The shares of the current phase (or of everything so far in a transition). */
const liveShares = (state: State, phase: Phase): Map<string, number> => {
  const total = [...phase.answers.values()].reduce((a, b) => a + b, 0)
  return new Map(state.backends.map((b) => [b.name, total === 0 ? 0 : (phase.answers.get(b.name) ?? 0) / total]))
}

/** One frame of the terminal view, laid out for a terminal `columns` wide. */
export const frame = (state: State, color: boolean, columns: number): ReadonlyArray<string> => {
  const paint = (code: string, text: string) => (color ? `\u001b[${code}m${text}\u001b[0m` : text)
  const phase = currentPhase(state)
  const shares = liveShares(state, phase)
  // Narrow terminals lose the per-connection column, then the address, then bar width.
  const wide = columns >= 150
  const withAddress = columns >= 100
  const barWidth = Math.max(8, Math.min(BAR, columns - (withAddress ? 76 : 53)))
  const out: Array<string> = []
  out.push(`${paint("1", "grpc-anchor demo")}  ${state.target}`)
  out.push(
    `${ms(now(state)).padStart(6)} / ${ms(state.durationMs)}   phase ${paint("1", phase.name)}   ` +
      `${thousands(state.okTotal)} answered   ${state.failedTotal === 0 ? "0 failed" : paint("33", `${state.failedTotal} failed`)}` +
      `${state.killSeenMs === undefined ? "" : ` (${state.failedAfterKillSeen} after the kill was seen)`}   ${state.inFlight} in flight`
  )
  out.push("")
  out.push(
    `  server  ${withAddress ? "address".padEnd(21) + "  " : ""}conns   ready   served   ${"share of this phase".slice(0, barWidth).padEnd(barWidth)}     now  expected` +
      (wide ? "   calls per connection" : "")
  )
  for (const b of state.backends) {
    const share = shares.get(b.name) ?? 0
    const expected = phase.expected?.get(b.name)
    const conns = b.process !== undefined ? `${b.serverConnections ?? "?"}/${b.expectedConnections}`.padStart(5) : paint("31", " down")
    const served = b.serverCalls === undefined ? "-" : thousands(b.serverCalls)
    out.push(
      `  ${b.name.padEnd(6)}  ${withAddress ? addressOf(b).padEnd(21) + "  " : ""}${conns}  ${`${b.ready}/${b.expectedConnections}`.padStart(6)}  ${served.padStart(7)}   ` +
        `${paint("36", bar(share, expected, barWidth))}  ${percent(share).padStart(6)}  ${expected === undefined ? "     -" : percent(expected).padStart(6)}` +
        (wide && b.process !== undefined ? `     ${b.perConnection.map(thousands).join(" / ")}` : "")
    )
  }
  out.push("")
  out.push("  events")
  for (const e of state.events.slice(-8)) out.push(`  ${ms(e.atMs).padStart(6)}  ${e.text}`)
  return out
}

/** One plain progress line (stdout not a terminal). */
export const progress = (state: State): string => {
  const phase = currentPhase(state)
  const shares = liveShares(state, phase)
  const servers = state.backends.map((b) => {
    const expected = phase.expected?.get(b.name)
    const conns = b.process !== undefined ? `${b.serverConnections ?? "?"}/${b.expectedConnections} conns` : "down"
    return `${b.name} ${conns} ${percent(shares.get(b.name) ?? 0)}${expected === undefined ? "" : ` (exp ${percent(expected)})`}`
  })
  return `${ms(now(state)).padStart(6)}  ${phase.name.padEnd(19)}  answered ${thousands(state.okTotal)} failed ${state.failedTotal}  | ${servers.join(" | ")}`
}

/**
 * The live view on a terminal `columns` wide, redrawn in place: each call
 * moves the cursor back over the previous frame (by rows, since a line wider
 * than the terminal wraps) and draws the new one.
 */
export const makeView = (state: State, color: boolean) => {
  let drawn = 0
  return Effect.sync(() => {
    const columns = Math.max(20, process.stdout.columns ?? 160)
    const lines = frame(state, color, columns)
    const text = lines.map((l) => `${l}\u001b[K`).join("\n")
    process.stdout.write(`${drawn > 0 ? `\u001b[${drawn}F` : ""}${text}\n\u001b[J`)
    drawn = lines.reduce((rows, l) => rows + Math.max(1, Math.ceil(stripVTControlCharacters(l).length / columns)), 0)
  })
}
