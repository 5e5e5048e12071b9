/**
 * The suites StrykerJS runs against each mutant (`npm run test:mutation`):
 * the fast ones that exercise the core without a network (the balancer's
 * rules, its properties, admission, the policy over fake subchannels, and
 * the core's other unit and property tests). Property tests run 100 cases
 * per property here (FC_RUNS) instead of 1,000, and the reference model
 * (property-tests/BalancerModel.test.ts) 30 sequences (FC_MODEL_RUNS)
 * instead of 200, to keep a run in minutes.
 */
import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url))

process.env.FC_RUNS ??= "100"
process.env.FC_MODEL_RUNS ??= "30"

export default defineConfig({
  resolve: {
    alias: [
      { find: /^grpc-anchor\/core$/, replacement: here("./src/main/core.ts") },
      { find: /^grpc-anchor$/, replacement: here("./src/main/index.ts") }
    ]
  },
  test: {
    include: [
      // The balancer.
      "test/Balancer.test.ts",
      "test/balancer-*.test.ts",
      "property-tests/Balancer.test.ts",
      "property-tests/BalancerSettings.test.ts",
      "property-tests/BalancerModel.test.ts",
      "property-tests/BalancerLatency.test.ts",
      "test/grpc/policy.test.ts",
      // The rest of the core.
      "test/{Target,EtcdRecord,Expansion,Rotation,Subset,EndpointSet}.test.ts",
      "property-tests/{Target,EtcdRecord,Expansion,Rotation,Subset,EndpointSet,EtcdMembers}.test.ts",
      "test/{Address,EtcdMembers}.test.ts"
    ],
    pool: "forks",
    testTimeout: 60_000,
    setupFiles: ["property-tests/fast-check.setup.ts"]
  }
})
