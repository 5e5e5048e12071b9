/**
 * Churn without leaks: 1,000 register/deregister cycles against a live
 * `etcd://HOST/churn#2` channel with steady traffic, in a child process
 * (test/fixtures/churn.ts, run with `node --expose-gc`) so that its heap can
 * be measured after forced GCs and its exit by itself observed.
 *
 * The heap bound: measured on 2 cores, the heap after forced GCs grows by
 * 0.9-1.2 MB from cycle 300 to cycle 1,000 (about half of it compiled code,
 * `code_space`), and the growth keeps shrinking (2,000 -> 3,000 cycles:
 * none). A fixture that keeps each cycle's closed Registrar and scope
 * alive grew 9.8 MB over those 700 cycles (about 14 KB a cycle). 4 MB (about
 * 5.8 KB a cycle) is 3.5x the measured growth and well under such a leak.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { expect, it } from "vitest"
import { etcdForFile } from "../support/etcdForFile.js"

const FIXTURE = fileURLToPath(new URL("../fixtures/churn.ts", import.meta.url))
const CYCLES = 1_000
const HEAP_BOUND = 4 * 1024 * 1024
/** The live endpoint (the steady one) needs #2; four other ports take turns. */
const LIVE_SOCKETS = 2
/**
 * Peak client sockets: the steady endpoint's 2, and for each of the 4 churned
 * ports 2 slots, each with at most one connection still draining (the pool
 * swept its subchannel while calls were in flight) beside a new one.
 */
const MAX_SOCKETS = LIVE_SOCKETS + 4 * 2 * 2
/**
 * How long the child may take after its last line to exit by itself: a hang
 * guard, not a speed goal (an unref'd timer never holds the process; a
 * referenced one would hold it for good). Usually under 300 ms; once 8 s on
 * a machine running other suites at the same time, hence the margin.
 */
const EXIT_BOUND_MS = 15_000
const RUN_BOUND_MS = 120_000

const etcd = etcdForFile({ checkHandles: true })

type Fact = Record<string, unknown>

it(`${CYCLES} register/deregister cycles under traffic: sockets back to 2 per live endpoint, heap settles, the process exits by itself`, async () => {
  const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", FIXTURE], {
    env: { ...process.env, CHURN_ETCD: etcd.endpoints[0]!, CHURN_CYCLES: String(CYCLES) },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const facts: Array<Fact> = []
  const other: Array<string> = []
  let stderr = ""
  let doneAt: number | undefined
  let buffered = ""
  child.stdout.on("data", (chunk: Buffer) => {
    buffered += chunk.toString()
    const lines = buffered.split("\n")
    buffered = lines.pop() ?? ""
    for (const line of lines) {
      if (!line.startsWith("churn: ")) {
        if (line.trim().length > 0) other.push(line)
        continue
      }
      const fact = JSON.parse(line.slice("churn: ".length)) as Fact
      if (fact["done"] === true) doneAt = Date.now()
      facts.push(fact)
    }
  })
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
  const started = Date.now()
  const code = await new Promise<number | string>((resolve) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      resolve(`still running after ${RUN_BOUND_MS} ms`)
    }, RUN_BOUND_MS)
    child.once("exit", (exitCode, signal) => {
      clearTimeout(timer)
      resolve(exitCode ?? `killed by ${signal}`)
    })
  })
  const exitedAt = Date.now()

  const checkpoints = facts.filter((f) => typeof f["checkpoint"] === "number")
  const at = (cycle: number) => checkpoints.find((f) => f["checkpoint"] === cycle)
  const mb = (bytes: unknown) => (typeof bytes === "number" ? (bytes / 1024 / 1024).toFixed(2) : "-")
  console.log(
    [
      `churn: ${CYCLES} cycles in ${((exitedAt - started) / 1000).toFixed(1)} s (child exit code ${code})`,
      "cycle  heap MB (GC)  heap MB (settled)  sockets now/settled (max)  settle ms  calls  failures  slowest cycle ms",
      ...checkpoints.map((f) =>
        [
          String(f["checkpoint"]).padStart(5),
          mb(f["heapUsed"]).padStart(13),
          mb(f["heapSettled"]).padStart(18),
          `${String(f["socketsNow"])}/${String(f["socketsSettled"] ?? "-")} (${String(f["maxSockets"])})`.padStart(26),
          String(f["settleMs"] ?? "-").padStart(10),
          String(f["calls"]).padStart(6),
          String(f["failures"]).padStart(9),
          String(f["slowestCycleMs"]).padStart(17)
        ].join(" ")
      ),
      `heap settled 1000 - 300: ${mb(Number(at(CYCLES)?.["heapSettled"]) - Number(at(300)?.["heapSettled"]))} MB (bound ${mb(HEAP_BOUND)} MB)`,
      `closed: ${JSON.stringify(facts.find((f) => f["closed"] !== undefined)?.["closed"])}; exited ${doneAt === undefined ? "?" : exitedAt - doneAt} ms after its last line`
    ].join("\n")
  )

  expect({ code, stderr, other }).toEqual({ code: 0, stderr: "", other: [] })
  expect(checkpoints.map((f) => f["checkpoint"])).toEqual([1, 100, 300, 500, 700, CYCLES])
  // Every cycle saw its slots appear and disappear (else the child had failed), with no failed call.
  expect(facts.find((f) => f["traffic"] !== undefined)?.["traffic"]).toMatchObject({ failureCount: 0 })
  for (const cycle of [300, CYCLES]) {
    expect(at(cycle)).toMatchObject({ socketsSettled: LIVE_SOCKETS, serverConnections: [2, 0, 0, 0, 0], slots: LIVE_SOCKETS })
  }
  // Sockets of removed endpoints linger until grpc-js's subchannel pool sweeps
  // (every 10 s), but the pool reuses one subchannel per address and slot: the
  // peak is bounded, and does not grow with the number of cycles.
  for (const f of checkpoints) expect(f["maxSockets"]).toBeLessThanOrEqual(MAX_SOCKETS)
  expect(Number(at(CYCLES)?.["heapSettled"]) - Number(at(300)?.["heapSettled"])).toBeLessThan(HEAP_BOUND)
  expect(facts.find((f) => f["closed"] !== undefined)?.["closed"]).toMatchObject({ sockets: 0 })
  expect(doneAt).toBeDefined()
  expect(exitedAt - doneAt!).toBeLessThan(EXIT_BOUND_MS)
}, RUN_BOUND_MS + 30_000)
