import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url))

export default defineConfig({
  resolve: {
    // Tests run the library's sources: `grpc-anchor` (as imported by the
    // command's echo servers) is the same module instance as `src/`.
    alias: [
      { find: /^grpc-anchor\/core$/, replacement: here("./src/main/core.ts") },
      { find: /^grpc-anchor$/, replacement: here("./src/main/index.ts") }
    ]
  },
  test: {
    include: ["test/**/*.test.ts", "property-tests/**/*.test.ts", "packages/cli/test/**/*.test.ts"],
    // etcd and gRPC integration suites start real servers on loopback;
    // two cores, so keep the worker count small and timeouts generous.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    globalSetup: ["test/support/globalSetup.ts"],
    // fast-check defaults (1,000 runs, FC_SEED/FC_PATH replay): see the file.
    setupFiles: ["property-tests/fast-check.setup.ts"]
  }
})
