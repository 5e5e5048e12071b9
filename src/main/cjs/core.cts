/**
 * The `require("grpc-anchor/core")` entry point for CommonJS apps: the pure
 * core, loaded from the one ES module build (see `./index.cts`).
 *
 * @example
 * ```js
 * const { Target } = require("grpc-anchor/core")
 * Target.format(Target.parseUnsafe("pass:///10.0.0.1:9080#2"))
 * ```
 *
 * @since 0.2.0
 */
export * from "../core.js"
