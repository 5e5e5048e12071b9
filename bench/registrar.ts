/**
 * npm run bench:registrar — how fast one Registrar acts against a real etcd
 * (started here, loopback), per trial:
 * 1. register: `make` to `awaitRegistered` (lease granted, record put);
 * 2. recover: the lease, held a little longer than its TTL of 1 s (as a
 *    lease that lived a while, re-granted at once), revoked behind the
 *    registrar's back by a second client, to the status `Registered` under
 *    a new lease (loss seen, lease re-granted, record put again);
 * 3. close: the scope's close (lease revoked).
 * With BENCH_REGISTRAR_BASELINE=<path of another Registrar module> the same
 * trials run on it too, interleaved with this one's (order alternating per
 * trial), and it prints both rows: for comparing a change with the code
 * before it. One trial of each first warms up, unrecorded. Nothing here
 * asserts.
 */
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as References from "effect/References"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Etcd from "../src/adapters/etcd/Etcd.js"
import * as Registrar from "../src/adapters/etcd/Registrar.js"
import { startEtcd } from "../test/support/etcd.js"
import { fmt, median, percentile, table } from "./support/load.js"

const TRIALS = Number(process.env.BENCH_TRIALS ?? 20)

interface Implementation {
  readonly name: string
  readonly make: typeof Registrar.make
}

interface Figures {
  readonly registerMs: Array<number>
  readonly recoverMs: Array<number>
  readonly closeMs: Array<number>
}

const implementations: Array<Implementation> = [{ name: "this", make: Registrar.make }]
const baseline = process.env.BENCH_REGISTRAR_BASELINE
if (baseline !== undefined && baseline !== "") {
  const module = (await import(pathToFileURL(path.resolve(baseline)).href)) as { make: typeof Registrar.make }
  implementations.push({ name: `baseline (${baseline})`, make: module.make })
}

const trial = (etcd: Etcd.Etcd.Shape, implementation: Implementation, n: number, into: Figures | undefined) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const t0 = performance.now()
    const registrar = yield* implementation.make({ service: "bench-registrar", address: `127.0.0.1:${10_000 + n}`, ttl: 1 }).pipe(Scope.provide(scope))
    const first = yield* registrar.awaitRegistered
    const t1 = performance.now()
    // Subscribed before the revoke, so the change cannot be missed.
    const back = yield* registrar.changes.pipe(
      Stream.filter((status) => status._tag === "Registered" && status.leaseId !== first.leaseId),
      Stream.runHead,
      Effect.forkChild
    )
    yield* Effect.sleep("1100 millis")
    const t2 = performance.now()
    yield* etcd.leaseRevoke(BigInt(`0x${first.leaseId}`))
    yield* Fiber.join(back)
    const t3 = performance.now()
    yield* Scope.close(scope, Exit.void)
    const t4 = performance.now()
    into?.registerMs.push(t1 - t0)
    into?.recoverMs.push(t3 - t2)
    into?.closeMs.push(t4 - t3)
  })

const server = await startEtcd()
try {
  const figures = implementations.map((): Figures => ({ registerMs: [], recoverMs: [], closeMs: [] }))
  const program = Effect.gen(function* () {
    const etcd = yield* Etcd.Etcd
    for (const [i, implementation] of implementations.entries()) yield* trial(etcd, implementation, 1_000 + i, undefined)
    for (let n = 0; n < TRIALS; n++) {
      const order = n % 2 === 0 ? implementations.keys() : [...implementations.keys()].reverse()
      for (const i of order) yield* trial(etcd, implementations[i]!, n * implementations.length + i, figures[i]!)
    }
  })
  await Effect.runPromise(
    program.pipe(
      Effect.provide(Etcd.layer({ hosts: server.endpoints })),
      // The registrar's warnings about the lost lease are the point of the trial, not news.
      Effect.provide(Layer.succeed(References.MinimumLogLevel, "Error"))
    )
  )
  const row = (name: string, what: string, values: ReadonlyArray<number>) => {
    const sorted = [...values].sort((a, b) => a - b)
    return [name, what, fmt(median(values), 1), fmt(percentile(sorted, 90), 1), fmt(sorted.at(-1)!, 1)]
  }
  const rows = implementations.flatMap((implementation, i) => [
    row(implementation.name, "register", figures[i]!.registerMs),
    row(implementation.name, "recover from a revoked lease", figures[i]!.recoverMs),
    row(implementation.name, "close (revoke)", figures[i]!.closeMs)
  ])
  console.log(`Registrar against one etcd, ${TRIALS} trials each (ms)`)
  console.log(table(["registrar", "measure", "p50", "p90", "max"], rows))
} finally {
  await server.stop()
}
