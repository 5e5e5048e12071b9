/**
 * npm run bench:etcd — how fast discovery follows etcd, on loopback with a
 * real etcd (started here) and real gRPC servers.
 *
 * 1. Registration to first call: a client on `etcd://.../bench#1` runs
 *    steady traffic (8 calls in flight) to one backend; a second backend
 *    registers (Registrar: lease + Go-format record). Measured: from the
 *    start of the registration to the first call that backend serves.
 * 2. Deregistration to last call: the Registrar's scope closes (lease
 *    revoked). Measured: from the start of the close to the start of the
 *    last call that backend received.
 *    20 trials each; goal: p50 under 100 ms.
 * 3. Scale: 1,000 endpoints registered (one server process listening on
 *    1,000 loopback ports), a client on `#2`: time until it has discovered
 *    all 1,000 and until all 2,000 connections are READY. Goal: under 5 s.
 */
import * as grpc from "@grpc/grpc-js"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as References from "effect/References"
import * as Scope from "effect/Scope"
import * as Etcd from "../src/adapters/etcd/Etcd.js"
import * as Registrar from "../src/adapters/etcd/Registrar.js"
import { STATS_KEY } from "../src/adapters/grpc/internal/keys.js"
import { makeSink } from "../src/adapters/grpc/internal/stats.js"
import { call, EchoClient, startEchoServer, type Echo } from "../packages/cli/src/echo/echo.js"
import { register } from "../src/main/index.js"
import { startEtcd, type EtcdServer } from "../test/support/etcd.js"
import { fmt, percentile, table } from "./support/load.js"

register()

const TRIALS = Number(process.env.BENCH_TRIALS ?? 20)
const MANY = Number(process.env.BENCH_ENDPOINTS ?? 1000)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export interface EtcdBenchResult {
  readonly trials: number
  readonly registerMs: ReadonlyArray<number>
  readonly deregisterMs: ReadonlyArray<number>
  readonly endpoints: number
  readonly discoverMs: number
  readonly allReadyMs: number
}

const waitFor = async (what: string, check: () => boolean, timeoutMs: number): Promise<void> => {
  const deadline = performance.now() + timeoutMs
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(1)
  }
}

const churnTrials = async (etcd: EtcdServer): Promise<Pick<EtcdBenchResult, "registerMs" | "deregisterMs">> => {
  const service = "bench/churn"
  const etcdLayer = Etcd.layer({ hosts: etcd.endpoints })
  const runtimeScope = Effect.runSync(Scope.make())
  const etcdContext = await Effect.runPromise(Layer.buildWithScope(etcdLayer, runtimeScope))
  const registerIn = (scope: Scope.Scope, address: string) =>
    Effect.runPromise(
      Registrar.make({ service, address, ttl: 5 }).pipe(
        Effect.flatMap((registrar) => registrar.awaitRegistered),
        Effect.provide(etcdContext),
        // The registrar's per-registration info lines would drown the figures.
        Effect.provideService(References.MinimumLogLevel, "Warn"),
        Scope.provide(scope)
      )
    )

  const anchor = await startEchoServer({ name: "anchor" })
  const anchorScope = Effect.runSync(Scope.make())
  await registerIn(anchorScope, `127.0.0.1:${anchor.port}`)

  const client = new EchoClient(`etcd://${etcd.endpoints[0]}/${service}`, grpc.credentials.createInsecure()) as unknown as Echo
  // Every answer with the time its call started, newest last.
  const answers: Array<{ readonly server: string; readonly startedAt: number }> = []
  let running = true
  const traffic = Promise.all(
    Array.from({ length: 8 }, async () => {
      while (running) {
        const startedAt = performance.now()
        const server = await call(client, { deadlineMs: 5_000, waitForReady: true }).catch(() => "failed")
        answers.push({ server, startedAt })
        if (answers.length > 200_000) answers.splice(0, 100_000)
      }
    })
  )

  const registerMs: Array<number> = []
  const deregisterMs: Array<number> = []
  try {
    await waitFor("traffic", () => answers.some((a) => a.server === "anchor"), 10_000)
    for (let trial = 0; trial < TRIALS; trial++) {
      const name = `new-${trial}`
      const backend = await startEchoServer({ name })
      const scope = Effect.runSync(Scope.make())
      const t0 = performance.now()
      await registerIn(scope, `127.0.0.1:${backend.port}`)
      await waitFor(`${name} serving`, () => answers.some((a) => a.server === name && a.startedAt >= t0), 10_000)
      const first = answers.find((a) => a.server === name && a.startedAt >= t0)!
      // The call's own latency is part of "first call served": count to its start plus round trip is noise here.
      registerMs.push(first.startedAt - t0)

      await sleep(100)
      const t1 = performance.now()
      await Effect.runPromise(Scope.close(scope, Exit.void))
      // Quiet period: no call to it for 500 ms means the client has let it go.
      await waitFor(`${name} idle`, () => {
        const last = answers.findLast((a) => a.server === name)
        return last !== undefined && performance.now() - last.startedAt > 500
      }, 10_000)
      const last = answers.findLast((a) => a.server === name)!
      deregisterMs.push(Math.max(0, last.startedAt - t1))
      await backend.close()
    }
  } finally {
    running = false
    await traffic
    client.close()
    await Effect.runPromise(Scope.close(anchorScope, Exit.void))
    await anchor.close()
    await Effect.runPromise(Scope.close(runtimeScope, Exit.void))
  }
  return { registerMs, deregisterMs }
}

const scaleTrial = async (etcd: EtcdServer): Promise<Pick<EtcdBenchResult, "discoverMs" | "allReadyMs" | "endpoints">> => {
  const service = "bench/many"
  const script = fileURLToPath(new URL("./support/manyPortsServer.ts", import.meta.url))
  const child = spawn(process.execPath, ["--import", "tsx", script, "--ports", String(MANY)], { stdio: ["pipe", "pipe", "inherit"] })
  try {
    const ports = await new Promise<ReadonlyArray<number>>((resolve, reject) => {
      let buffered = ""
      child.stdout.setEncoding("utf8")
      child.stdout.on("data", (chunk: string) => {
        buffered += chunk
        if (buffered.includes("\n")) resolve((JSON.parse(buffered.slice(0, buffered.indexOf("\n"))) as { ports: Array<number> }).ports)
      })
      child.once("exit", () => reject(new Error("many-ports server exited")))
    })
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const etcdService = yield* Etcd.make({ hosts: etcd.endpoints })
          // Go-format records, written 100 at a time.
          for (let i = 0; i < ports.length; i += 100) {
            yield* Effect.forEach(
              ports.slice(i, i + 100),
              (port) =>
                etcdService.put("put", {
                  key: `${service}/127.0.0.1:${port}`,
                  value: JSON.stringify({ Op: 0, Addr: `127.0.0.1:${port}`, Metadata: null })
                }),
              { concurrency: "unbounded", discard: true }
            )
          }
        })
      )
    )
    const target = `etcd://${etcd.endpoints[0]}/${service}#2`
    const sink = makeSink(target)
    const t0 = performance.now()
    const client = new EchoClient(target, grpc.credentials.createInsecure(), { [STATS_KEY]: sink }) as unknown as Echo
    client.getChannel().getConnectivityState(true)
    let discoverMs = Number.NaN
    try {
      await waitFor("all endpoints discovered", () => sink.read().connections.length === ports.length * 2, 30_000)
      discoverMs = performance.now() - t0
      await waitFor("all connections READY", () => sink.read().connections.every((c) => c.state === "READY"), 60_000)
    } finally {
      client.close()
    }
    const allReadyMs = performance.now() - t0
    await etcd.ctlOk(["del", "--prefix", `${service}/`])
    return { endpoints: ports.length, discoverMs, allReadyMs }
  } finally {
    child.kill("SIGTERM")
  }
}

export const runEtcdBench = async (): Promise<EtcdBenchResult> => {
  const etcd = await startEtcd()
  try {
    const churn = await churnTrials(etcd)
    const scale = await scaleTrial(etcd)
    return { trials: TRIALS, ...churn, ...scale }
  } finally {
    await etcd.stop()
  }
}

export const printEtcd = (r: EtcdBenchResult): string => {
  const row = (name: string, values: ReadonlyArray<number>, goal: string) => {
    const sorted = [...values].sort((a, b) => a - b)
    return [name, fmt(percentile(sorted, 50), 1), fmt(percentile(sorted, 90), 1), fmt(sorted[sorted.length - 1] ?? Number.NaN, 1), goal, percentile(sorted, 50) < 100 ? "met" : "NOT met"]
  }
  return [
    `registration and deregistration, ${r.trials} trials each (ms)`,
    table(["measure", "p50", "p90", "max", "goal", ""], [
      row("registration -> first call served", r.registerMs, "p50 < 100"),
      row("deregistration -> last call", r.deregisterMs, "p50 < 100")
    ]),
    "",
    `${r.endpoints} endpoints with #2 (${r.endpoints * 2} connections)`,
    table(["measure", "ms", "goal", ""], [
      ["discovered all endpoints", fmt(r.discoverMs), "", ""],
      ["all connections READY", fmt(r.allReadyMs), "< 5000", r.allReadyMs < 5000 ? "met" : "NOT met"]
    ]),
    ""
  ].join("\n")
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`bench:etcd — real etcd and gRPC servers on loopback, node ${process.version}\n`)
  console.log(printEtcd(await runEtcdBench()))
}
