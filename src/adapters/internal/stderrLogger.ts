/**
 * The logger grpc-anchor uses when it runs effects outside an app's own
 * Effect runtime (the etcd resolver of a plain grpc-js channel,
 * registerEndpoint): every line goes to stderr (console.error, logfmt),
 * never to stdout, which may carry the host program's output.
 */
import type * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"

/** Replaces the loggers of the effect it is provided to with one logfmt logger on stderr. */
export const stderrLogger: Layer.Layer<never> = Logger.layer([Logger.withConsoleError(Logger.formatLogFmt)])
