/**
 * npm run bench:failover — two backend processes under steady traffic
 * (16 calls in flight, 2 ms server time per call); one is killed with
 * SIGKILL. Measured per variant, side by side, over several trials:
 * - failed calls, split into those in flight at the kill (started before
 *   the process was gone: these may fail) and those started after it
 *   (these should not);
 * - reroute time: from the kill until the start of the last call that did
 *   not succeed on the survivor (0 when none started after the kill failed).
 * Variants: grpc-anchor `#2` each, plain grpc-js round_robin, and a naive
 * pool of 2 round_robin clients rotated by the caller. No retry policy, so
 * the figures show the channel's own behaviour.
 */
import { call } from "../packages/cli/src/echo/echo.js"
import { startEchoProcess } from "../packages/cli/src/echo/echoProcess.js"
import { register } from "../src/main/index.js"
import { fmt, median, table } from "./support/load.js"
import { anchored, naivePool, roundRobin, type Variant } from "./support/variants.js"

register()

const TRIALS = Number(process.env.BENCH_TRIALS ?? 5)
/** The compared clients, each built over the ports of a trial's two backends. */
const variants: ReadonlyArray<(ports: ReadonlyArray<number>) => Variant> = [
  (ports) => roundRobin(ports),
  (ports) => anchored(ports, 2),
  (ports) => naivePool(ports, 2)
]
const nameOf = (variant: (ports: ReadonlyArray<number>) => Variant) => variant([]).name

interface Trial {
  readonly failedInFlight: number
  readonly failedAfter: number
  readonly rerouteMs: number
}

const trial = async (variant: (ports: ReadonlyArray<number>) => Variant): Promise<Trial> => {
  const survivor = await startEchoProcess({ name: "survivor" })
  const victim = await startEchoProcess({ name: "victim" })
  const built = variant([survivor.port, victim.port])
  const made = built.make()
  const calls: Array<{ readonly startedAt: number; readonly ok: boolean; readonly server: string }> = []
  let running = true
  const traffic = Promise.all(
    Array.from({ length: 16 }, async () => {
      while (running) {
        const startedAt = performance.now()
        await call(made.pick(), { delayMs: 2, deadlineMs: 5_000 }).then(
          (server) => calls.push({ startedAt, ok: true, server }),
          () => calls.push({ startedAt, ok: false, server: "" })
        )
      }
    })
  )
  try {
    // Both serving, then 500 ms of steady traffic.
    const deadline = performance.now() + 10_000
    while (!(calls.some((c) => c.server === "victim") && calls.some((c) => c.server === "survivor"))) {
      if (performance.now() > deadline) throw new Error(`${built.name}: backends never both served`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    await new Promise((resolve) => setTimeout(resolve, 500))
    // The kill "happens" when the process is gone and this process has had
    // one event-loop turn to read what the kernel already delivered (the
    // exit notice can be handled before the sockets' close in the same turn).
    await victim.kill()
    await new Promise((resolve) => setImmediate(resolve))
    const killedAt = performance.now()
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    running = false
    await traffic
    const bad = calls.filter((c) => !c.ok)
    const after = bad.filter((c) => c.startedAt > killedAt)
    return {
      failedInFlight: bad.length - after.length,
      failedAfter: after.length,
      rerouteMs: after.length === 0 ? 0 : Math.max(...after.map((c) => c.startedAt)) - killedAt
    }
  } finally {
    running = false
    await traffic
    made.close()
    await survivor.kill()
    await victim.kill()
  }
}

export interface FailoverResult {
  readonly trials: number
  readonly rows: ReadonlyArray<{ readonly variant: string; readonly trials: ReadonlyArray<Trial> }>
}

export const runFailoverBench = async (): Promise<FailoverResult> => {
  const results = new Map<string, Array<Trial>>(variants.map((v) => [nameOf(v), []]))
  for (let i = 0; i < TRIALS; i++) {
    for (const variant of i % 2 === 0 ? variants : [...variants].reverse()) {
      results.get(nameOf(variant))!.push(await trial(variant))
    }
  }
  return { trials: TRIALS, rows: variants.map((v) => ({ variant: nameOf(v), trials: results.get(nameOf(v))! })) }
}

export const printFailover = (result: FailoverResult): string =>
  [
    `failover: 2 backends, 16 calls in flight, one SIGKILLed; ${result.trials} trials per variant (medians; max in brackets)`,
    table(
      ["variant", "failed in flight at kill", "failed started after kill", "reroute ms"],
      result.rows.map((r) => [
        r.variant,
        `${fmt(median(r.trials.map((t) => t.failedInFlight)))} [${Math.max(...r.trials.map((t) => t.failedInFlight))}]`,
        `${fmt(median(r.trials.map((t) => t.failedAfter)))} [${Math.max(...r.trials.map((t) => t.failedAfter))}]`,
        `${fmt(median(r.trials.map((t) => t.rerouteMs)), 1)} [${fmt(Math.max(...r.trials.map((t) => t.rerouteMs)), 1)}]`
      ])
    ),
    ""
  ].join("\n")

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`bench:failover — node ${process.version}\n`)
  console.log(printFailover(await runFailoverBench()))
}
