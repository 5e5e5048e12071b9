/**
 * Property-test defaults for every test file, loaded through `setupFiles` in
 * vitest.config.ts: at least 1,000 runs per property, for both engines the
 * property tests use:
 *
 * - `it.prop` (@effect/vitest), whose inputs are `effect/Arbitrary` values or
 *   Schemas: used where the inputs are plain data (bounded numbers, arrays);
 * - fast-check's `fc.assert`: used where a property needs fast-check's
 *   richer generators (domains, IPv6, JSON values, functions, `chain`).
 *
 * When an `it.prop` property fails, its report ends with a replay token:
 *
 *     Property falsified after 165 run(s) and 4 shrink(s)
 *     Shrunk input: [[228, 172]]
 *     Replay: [0,"427989675396199",164,2,[6,2,3,2],"PropertyError"]
 *
 * Replay exactly that case by passing the token back, with -t to pick the
 * property (the tests pass it on through `propOptions` in arbitraries.ts):
 *
 *     PROP_REPLAY='[0,"427989675396199",164,2,[6,2,3,2],"PropertyError"]' npx vitest run property-tests/Rotation.test.ts -t "weight times"
 *
 * When a fast-check property fails, its report starts with the seed and the
 * shrink path of the counterexample, e.g.
 *
 *     Property failed after 12 tests
 *     { seed: -1819918769, path: "11:4:2", endOnFailure: true }
 *
 * Replay exactly that case (the path skips straight to the shrunk
 * counterexample) by passing both back, with -t to pick the property:
 *
 *     FC_SEED=-1819918769 FC_PATH="11:4:2" npx vitest run property-tests/Balancer.test.ts -t "reference model"
 *
 * FC_SEED alone reruns the whole run with that seed (both engines); FC_RUNS
 * changes the number of runs (e.g. FC_RUNS=100000 for a longer soak). Then
 * pin the case as a regular test in test/.
 */
import * as Arbitrary from "effect/Arbitrary"
import fc from "fast-check"

const seed = process.env.FC_SEED
const path = process.env.FC_PATH
const runs = process.env.FC_RUNS
const numRuns = runs !== undefined ? Math.max(1, Number(runs)) : 1000

fc.configureGlobal({
  numRuns,
  ...(seed !== undefined ? { seed: Number(seed) } : {}),
  ...(seed !== undefined && path !== undefined ? { path } : {})
})

Arbitrary.configureGlobal({
  check: { runs: numRuns, ...(seed !== undefined ? { seed } : {}) }
})
