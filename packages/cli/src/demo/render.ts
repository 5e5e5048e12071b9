/**
 * How the demo shows itself: the live view redrawn on a terminal, one plain
 * progress line a second when stdout is not one, and the summary as text.
 * (`--json` prints the summary as it is.)
 *
 * Every line fits the width it is laid out for: the terminal's columns, or
 * 80 when stdout is not a terminal. Tables are sized for 80 columns; any
 * text that could be longer (targets, events, check details) is wrapped at
 * spaces with a hanging indent. Each figure's label says what it counts:
 * who counted it (the client, the channel, a server) and over what span.
 */
import { stripVTControlCharacters } from "node:util"
import * as Effect from "effect/Effect"
import { percent } from "../internal/common.js"
import type { Summary } from "./judge.js"
import { addressOf, currentPhase, ms, now, type Phase, type State, thousands } from "./state.js"

/** How the run is shown: a redrawn table, plain progress lines, or only the JSON summary. */
export type Output = "tty" | "plain" | "json"

/** The width plain output (a pipe, a CI log) is laid out for. */
export const PLAIN_COLUMNS = 80

/** The visible width of a text: ANSI escapes take none. */
const widthOf = (text: string): number => stripVTControlCharacters(text).length

/**
 * `text` as lines of at most `columns` visible characters, broken at spaces
 * (the spacing inside a line is kept); continuation lines start with
 * `indent` spaces. A word longer than a whole line is cut.
 *
 * @example
 * ```ts
 * wrap("  1.0s  a long event text", 16, 8) // ["  1.0s  a long", "        event", "        text"]
 * ```
 */
export const wrap = (text: string, columns: number, indent: number): ReadonlyArray<string> => {
  if (widthOf(text) <= columns) return [text]
  const pad = " ".repeat(Math.min(indent, Math.max(0, columns - 10)))
  const lines: Array<string> = []
  let current = ""
  const push = (line: string) => {
    let rest = line
    // A word wider than a line (a long target without spaces): cut it, plain text only.
    while (widthOf(rest) > columns && rest.length === widthOf(rest)) {
      lines.push(rest.slice(0, columns))
      rest = pad + rest.slice(columns)
    }
    lines.push(rest)
  }
  for (const token of text.match(/ *[^ ]+/g) ?? []) {
    if (current === "") current = lines.length === 0 ? token : pad + token.trimStart()
    else if (widthOf(current + token) <= columns) current += token
    else {
      push(current)
      current = pad + token.trimStart()
    }
  }
  if (current !== "") push(current)
  return lines
}

/** An event line, `  TIME  text`, wrapped under its text. */
const eventLines = (atMs: number, text: string, columns: number): ReadonlyArray<string> =>
  wrap(`${ms(atMs).padStart(6)}  ${text}`, columns, 8)

/** A plain output line (the text of an event, a progress line), wrapped for {@link PLAIN_COLUMNS}. */
export const plainEvent = (atMs: number, text: string): string => eventLines(atMs, text, PLAIN_COLUMNS).join("\n")

/** The summary as text lines, none wider than `columns`. */
export const renderSummary = (summary: Summary, columns = PLAIN_COLUMNS): ReadonlyArray<string> => {
  const out: Array<string> = []
  const text = (line: string, indent = 2) => out.push(...wrap(line, columns, indent))
  const names = summary.servers.map((s) => s.name)
  out.push("")
  text(`summary  ${summary.target}`, 9)
  text(`         ${thousands(summary.calls.ok)} calls answered, ${thousands(summary.calls.failed)} failed, in ${ms(summary.durationMs)}`, 9)

  out.push("")
  text(`  ${"phase".padEnd(20)} ${"from-to".padEnd(13)} ${"calls".padStart(7)} ${"failed".padStart(7)}`)
  for (const p of summary.phases) {
    text(`  ${p.name.padEnd(20)} ${`${ms(p.startMs)}-${ms(p.endMs)}`.padEnd(13)} ${thousands(p.calls).padStart(7)} ${thousands(p.failed).padStart(7)}`)
  }
  text("  calls: answered or failed, each counted in the phase it started in (so a call in flight at the kill counts in all up)", 2)

  out.push("")
  text("  each server's share of the calls answered in a phase (expected)")
  text(`  ${"phase".padEnd(20)} ${names.map((n) => n.padStart(6).padEnd(16)).join("")}`)
  for (const p of summary.phases) {
    const cells = p.shares.map((s) => `${percent(s.share).padStart(6)}${p.judged ? ` (${percent(s.expected ?? 0)})` : ""}`.padEnd(16))
    text(`  ${p.name.padEnd(20)} ${cells.join("")}`)
  }

  out.push("")
  text(`  server  ${"address".padEnd(16)} ${"conns".padStart(5)} ${"answered".padStart(9)}  calls per connection`)
  for (const s of summary.servers) {
    const perConnection = s.callsPerConnection.length === 0 ? "-" : s.callsPerConnection.map(thousands).join(" / ")
    text(
      `  ${s.name.padEnd(6)}  ${s.address.padEnd(16)} ${`${s.connections ?? "?"}/${s.expectedConnections}`.padStart(5)} ${thousands(s.answered).padStart(9)}  ${perConnection}`,
      44
    )
  }
  const restarted = summary.servers.at(-1)?.name ?? "the last server"
  text(
    "  conns: live connections the server sees at the end (of those expected); answered: calls the client got an answer " +
      `from it for over the whole run; calls per connection: the server's own count since its process started (${restarted} restarted midway)`
  )

  out.push("")
  for (const c of summary.checks) text(`  ${c.ok ? "ok  " : "FAIL"}  ${c.name}: ${c.detail}`, 8)
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

/** Each server's share of the calls answered in `phase` so far; none before its first answer. */
const liveShares = (state: State, phase: Phase): Map<string, number> | undefined => {
  const total = [...phase.answers.values()].reduce((a, b) => a + b, 0)
  return total === 0 ? undefined : new Map(state.backends.map((b) => [b.name, (phase.answers.get(b.name) ?? 0) / total]))
}

/** Calls answered and failed so far; the failures started after the kill was seen, once it was. */
const callCounts = (state: State): string =>
  `${thousands(state.okTotal)} answered, ${thousands(state.failedTotal)} failed` +
  (state.killSeenMs === undefined ? "" : ` (${thousands(state.failedAfterKillSeen)} of them started after the kill was seen)`)

/**
 * One frame of the terminal view, laid out for a terminal `columns` wide and
 * `rows` high: no line is wider than the terminal, and the frame leaves the
 * last row free, so redrawing it in place never scrolls (the oldest events
 * give way first).
 */
export const frame = (state: State, color: boolean, columns: number, rows = 24): ReadonlyArray<string> => {
  const paint = (code: string, text: string) => (color ? `\u001b[${code}m${text}\u001b[0m` : text)
  const phase = currentPhase(state)
  const shares = liveShares(state, phase)
  // Narrow terminals lose the per-connection column, then the address, then bar width.
  const wide = columns >= 150
  const withAddress = columns >= 100
  const barWidth = Math.max(8, Math.min(BAR, columns - (withAddress ? 74 : 51)))
  const head: Array<string> = []
  const text = (line: string, indent = 2) => head.push(...wrap(line, columns, indent))
  text(`${paint("1", "grpc-anchor demo")}  ${state.target}`, 18)
  text(`  ${ms(now(state))} of about ${ms(state.durationMs)}   phase ${paint("1", phase.name)}   ${state.inFlight} calls in flight`)
  const counts = callCounts(state)
  text(`  calls: ${state.failedTotal === 0 ? counts : counts.replace(/\d[\d,]* failed/, (f) => paint("33", f))}`, 9)
  head.push("")
  head.push(
    `  server  ${withAddress ? "address".padEnd(21) + "  " : ""}conns  ready   served  ${"share of this phase".slice(0, barWidth).padEnd(barWidth)}     now  expected` +
      (wide ? "   calls per connection" : "")
  )
  for (const b of state.backends) {
    const share = shares?.get(b.name)
    const expected = phase.expected?.get(b.name)
    const conns = b.process !== undefined ? `${b.serverConnections ?? "?"}/${b.expectedConnections}`.padStart(5) : paint("31", " down")
    const served = b.process === undefined || b.serverCalls === undefined ? "-" : thousands(b.serverCalls)
    head.push(
      `  ${b.name.padEnd(6)}  ${withAddress ? addressOf(b).padEnd(21) + "  " : ""}${conns}  ${`${b.ready}/${b.expectedConnections}`.padStart(5)}  ${served.padStart(7)}  ` +
        `${paint("36", bar(share ?? 0, expected, barWidth))}  ${(share === undefined ? "-" : percent(share)).padStart(6)}  ${expected === undefined ? "       -" : percent(expected).padStart(8)}` +
        (wide && b.process !== undefined ? `   ${b.perConnection.map(thousands).join(" / ")}` : "")
    )
  }
  text(
    "  conns: live connections the server sees (of those expected); ready: the channel's READY connections to it; " +
      "served: calls the server answered since its process started; share: of the calls answered in this phase, now and expected"
  )
  head.push("")
  head.push("  events")
  // The newest events that fit, oldest first.
  const room = Math.max(1, rows - 1 - head.length)
  const events: Array<ReadonlyArray<string>> = []
  let used = 0
  for (const e of state.events.slice(-8).reverse()) {
    const lines = eventLines(e.atMs, e.text, columns - 2).map((l) => `  ${l}`)
    if (used + lines.length > room && events.length > 0) break
    events.unshift(lines)
    used += lines.length
  }
  return [...head, ...events.flat()].slice(0, Math.max(1, rows - 1))
}

/**
 * The legend printed once above the plain progress lines, wrapped for
 * {@link PLAIN_COLUMNS}.
 */
export const progressLegend = (): string =>
  wrap(
    "progress, every second: calls answered and failed so far (client's count); then per server the live connections " +
      "it sees (of those expected) and its share of the calls answered in this phase",
    PLAIN_COLUMNS,
    0
  ).join("\n")

/** One plain progress line (stdout not a terminal), read from the state when it is called. */
export const progress = (state: State): string => {
  const phase = currentPhase(state)
  const shares = liveShares(state, phase)
  const servers = state.backends.map((b) =>
    b.process === undefined
      ? `${b.name} down`
      : `${b.name} ${b.serverConnections ?? "?"}/${b.expectedConnections} ${shares === undefined ? "-" : percent(shares.get(b.name) ?? 0)}`
  )
  return plainEvent(now(state), `${thousands(state.okTotal)} answered, ${thousands(state.failedTotal)} failed | ${servers.join(" | ")}`)
}

/**
 * The live view on a terminal `columns` wide, redrawn in place: each call
 * moves the cursor back over the previous frame (by rows, since a line wider
 * than the terminal wraps) and draws the new one.
 */
export const makeView = (state: State, color: boolean) => {
  let drawn = 0
  return Effect.sync(() => {
    const columns = Math.max(20, process.stdout.columns ?? 80)
    const rows = Math.max(8, process.stdout.rows ?? 24)
    const lines = frame(state, color, columns, rows)
    const text = lines.map((l) => `${l}\u001b[K`).join("\n")
    process.stdout.write(`${drawn > 0 ? `\u001b[${drawn}F` : ""}${text}\n\u001b[J`)
    drawn = lines.reduce((rows, l) => rows + Math.max(1, Math.ceil(widthOf(l) / columns)), 0)
  })
}
