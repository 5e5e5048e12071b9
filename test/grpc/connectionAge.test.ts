/**
 * Servers that rotate their connections (issue 19): two grpc-js echo servers
 * with `grpc.max_connection_age_ms: 500` and a 200 ms grace send a GOAWAY on
 * every connection at 500 ms ± 10%, while 50 calls are in flight (replies in
 * 5-20 ms). A pool of #N connections gets N times the GOAWAYs of a plain
 * channel. A GOAWAY crossing new streams on the wire refuses them; grpc-js
 * retries a refused call once, at once (gRFC A6), and the call fails when
 * the retry lands on a connection whose own GOAWAY is on its way.
 *
 * The same run drives `pass:///A#4,B#4`, `pass:///A#8` and grpc-js's
 * `round_robin` on `ipv4:A,B`, one after another, and the same two pools on
 * servers without a connection age (for their p99). It prints the calls, the
 * failures, the p99, each address's share and the GOAWAYs (connections the
 * servers closed at their age limit), and checks: no failed call for either
 * pool (but see below), and the #4,#4 split within 2 points of 50/50. round_robin is
 * printed, not judged (it fails some calls on this machine).
 *
 * One kind of failure is outside any client's reach and is printed apart:
 * a call still running when a server's 200 ms grace after its GOAWAY ends
 * is cut by that server. It happens only when this machine is so busy that
 * 5-20 ms calls take over 200 ms, so such a failure must not be a refusal
 * and must have lasted longer than the grace.
 *
 * The servers run in their own process (test/fixtures/ageEchoServers.ts), so
 * that a stall of this busy process does not hold the servers' replies past
 * their grace period too. CONNECTION_AGE_RUN_MS sets each run's length
 * (default 10 s: about 150 GOAWAYs per pool), after a 2 s warm-up.
 */
import * as grpc from "@grpc/grpc-js"
import { fork, type ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { call, type Echo } from "../../packages/cli/src/echo/echo.js"
import { register } from "../../src/main/index.js"
import { echoClient } from "../support/stress.js"

register()

const FIXTURE = fileURLToPath(new URL("../fixtures/ageEchoServers.ts", import.meta.url))
const RUN_MS = Number(process.env.CONNECTION_AGE_RUN_MS ?? 10_000)
const IN_FLIGHT = 50
/** The servers' max connection age and grace after a GOAWAY, as the issue measured them. */
const AGE_MS = 500
const GRACE_MS = 200
const ROUND_ROBIN: grpc.ChannelOptions = { "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) }

type Server = "a" | "b" | "a0" | "b0"

interface Failure {
  /** `CODE: details` */
  readonly what: string
  readonly ms: number
}

interface Run {
  readonly calls: number
  readonly failed: ReadonlyArray<Failure>
  readonly p99: number
  /** Answers per server name, as percentages of the calls answered. */
  readonly shares: Readonly<Record<string, number>>
  /** Connections the servers closed during the run. */
  readonly goaways: number
}

let servers: ChildProcess | undefined
let address: Record<Server, string>

/** Asks the fixture process for one message: the first answer that has `key`. */
const ask = <A>(key: string, send?: string): Promise<A> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`echo servers: no ${key} within 30 s`)), 30_000)
    const onMessage = (message: Record<string, A>) => {
      if (!(key in message)) return
      clearTimeout(timer)
      servers!.off("message", onMessage)
      resolve(message[key]!)
    }
    servers!.on("message", onMessage)
    if (send !== undefined) servers!.send(send)
  })

const closed = () => ask<Record<Server, number>>("closed", "closed")

/** IN_FLIGHT calls at all times for RUN_MS (or `ms`), each asking for a 5-20 ms reply. */
const drive = async (target: string, options: grpc.ChannelOptions = {}, ms = RUN_MS): Promise<Run> => {
  const client: Echo = echoClient(target, options)
  try {
    await new Promise<void>((resolve, reject) =>
      client.waitForReady(Date.now() + 10_000, (error) => (error ? reject(error) : resolve()))
    )
    const before = await closed()
    const latencies: Array<number> = []
    const failed: Array<Failure> = []
    const answers: Record<string, number> = {}
    const until = Date.now() + ms
    const worker = async () => {
      while (Date.now() < until) {
        const started = performance.now()
        await call(client, { delayMs: 5 + Math.floor(Math.random() * 16), deadlineMs: 10_000 }).then(
          (server) => {
            latencies.push(performance.now() - started)
            answers[server] = (answers[server] ?? 0) + 1
          },
          (error: grpc.ServiceError) =>
            void failed.push({ what: `${grpc.status[error.code]}: ${error.details}`, ms: performance.now() - started })
        )
      }
    }
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
    const after = await closed()
    latencies.sort((x, y) => x - y)
    const shares: Record<string, number> = {}
    for (const [server, n] of Object.entries(answers)) shares[server] = (100 * n) / latencies.length
    let goaways = 0
    for (const server of Object.keys(after) as Array<Server>) goaways += after[server] - before[server]
    return { calls: latencies.length + failed.length, failed, p99: latencies[Math.floor(latencies.length * 0.99)] ?? Number.NaN, shares, goaways }
  } finally {
    client.close()
  }
}

/** Cut by a server at the end of its grace: no refusal, and running longer than the grace. */
const cutByServer = (failure: Failure): boolean => !/refused/i.test(failure.what) && failure.ms > GRACE_MS

const line = (name: string, run: Run, noAge?: Run): string => {
  const shares = Object.entries(run.shares).sort().map(([server, share]) => `${server} ${share.toFixed(1)}%`).join(", ")
  const kinds = new Map<string, number>()
  for (const failure of run.failed) {
    const kind = `${failure.what}${cutByServer(failure) ? ` (after over ${GRACE_MS} ms: cut by the server)` : ""}`
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
  }
  return `${name.padEnd(34)} ${String(run.failed.length).padStart(4)} failed of ${String(run.calls).padStart(6)}, ` +
    `p99 ${run.p99.toFixed(1)} ms${noAge !== undefined ? ` (no connection age: ${noAge.p99.toFixed(1)} ms)` : ""}, ` +
    `${run.goaways} GOAWAYs, shares ${shares}` +
    [...kinds].map(([failure, n]) => `\n    ${n} x ${failure}`).join("")
}

/** The failed calls a client could have saved. */
const lost = (run: Run): ReadonlyArray<Failure> => run.failed.filter((failure) => !cutByServer(failure))

const failures = (run: Run): string =>
  `${lost(run).length} failed: ${lost(run).map((failure) => `${failure.what} after ${failure.ms.toFixed(0)} ms`).join("; ")}`

describe("servers with a max connection age (GOAWAY every 500 ms ± 10%)", () => {
  beforeAll(async () => {
    servers = fork(FIXTURE, [], {
      execArgv: ["--import", "tsx"],
      env: { ...process.env, AGE_MS: String(AGE_MS), GRACE_MS: String(GRACE_MS) },
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    const ports = await ask<Record<Server, number>>("ports")
    address = Object.fromEntries(Object.entries(ports).map(([server, port]) => [server, `127.0.0.1:${port}`])) as Record<Server, string>
    // Not measured: the first run of a fresh process is slower (compiling, first connections),
    // and the p99s printed are compared with each other.
    await drive(`pass:///${address.a0}#4,${address.b0}#4`, {}, 2_000)
  }, 60_000)
  afterAll(() => {
    servers?.disconnect()
  })

  it("fails no call with #4,#4, keeps the split within 2 points, and compares with grpc-js round_robin", async () => {
    const pool = await drive(`pass:///${address.a}#4,${address.b}#4`)
    const roundRobin = await drive(`ipv4:${address.a},${address.b}`, ROUND_ROBIN)
    const noAge = await drive(`pass:///${address.a0}#4,${address.b0}#4`, {}, RUN_MS / 2)
    console.log(
      `connection age: ${IN_FLIGHT} calls in flight for ${RUN_MS / 1000} s each\n` +
        `${line("grpc-anchor pass:///A#4,B#4", pool, noAge)}\n${line("grpc-js round_robin ipv4:A,B", roundRobin)}`
    )
    // ~16 per second (8 connections, 500 ms each), fewer when this machine is starved: the servers did rotate.
    expect(pool.goaways).toBeGreaterThan(RUN_MS / 200)
    expect(lost(pool), failures(pool)).toEqual([])
    expect(Math.abs(pool.shares.a! - 50)).toBeLessThanOrEqual(2)
    expect(Math.abs(pool.shares.b! - 50)).toBeLessThanOrEqual(2)
  }, 4 * RUN_MS + 60_000)

  it("fails no call with #8 on one server", async () => {
    const pool = await drive(`pass:///${address.a}#8`)
    const noAge = await drive(`pass:///${address.a0}#8`, {}, RUN_MS / 2)
    console.log(`connection age: ${line("grpc-anchor pass:///A#8", pool, noAge)}`)
    expect(pool.goaways).toBeGreaterThan(RUN_MS / 200)
    expect(lost(pool), failures(pool)).toEqual([])
    expect(pool.shares).toEqual({ a: 100 })
  }, 3 * RUN_MS + 60_000)
})
