import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "property-tests/**/*.test.ts"],
    // etcd and gRPC integration suites start real servers on loopback;
    // two cores, so keep the worker count small and timeouts generous.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 60_000,
    hookTimeout: 120_000,
    globalSetup: ["test/support/globalSetup.ts"],
    // fast-check defaults (1,000 runs, FC_SEED/FC_PATH replay): see the file.
    setupFiles: ["property-tests/fast-check.setup.ts"],
    reporters: process.env.CI ? ["default"] : ["default"]
  }
})
