/**
 * The `require("grpc-anchor")` entry point for CommonJS apps. It loads the
 * one ES module build (Node >= 22.12 can `require` ES modules), so an app
 * that both requires and imports grpc-anchor still has one copy of it: one
 * registration in grpc-js, one default etcd client.
 *
 * @example
 * ```js
 * const { register, createChannel } = require("grpc-anchor")
 * register()
 * ```
 *
 * @since 0.2.0
 */
export * from "../index.js"
