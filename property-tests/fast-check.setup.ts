/**
 * fast-check defaults for every test file, loaded through `setupFiles` in
 * vitest.config.ts: at least 1,000 runs per property.
 *
 * When a property fails, fast-check's report starts with the seed and the
 * shrink path of the counterexample, e.g.
 *
 *     Property failed after 12 tests
 *     { seed: -1819918769, path: "11:4:2", endOnFailure: true }
 *
 * Replay exactly that case (the path skips straight to the shrunk
 * counterexample) by passing both back, with -t to pick the property:
 *
 *     FC_SEED=-1819918769 FC_PATH="11:4:2" npx vitest run property-tests/Rotation.test.ts -t "within 1"
 *
 * FC_SEED alone reruns the whole run with that seed; FC_RUNS changes the
 * number of runs (e.g. FC_RUNS=100000 for a longer soak). Then pin the case
 * as a regular test in test/.
 */
import fc from "fast-check"

const seed = process.env.FC_SEED
const path = process.env.FC_PATH
const runs = process.env.FC_RUNS

fc.configureGlobal({
  numRuns: runs !== undefined ? Math.max(1, Number(runs)) : 1000,
  ...(seed !== undefined ? { seed: Number(seed) } : {}),
  ...(seed !== undefined && path !== undefined ? { path } : {})
})
