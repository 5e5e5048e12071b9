/**
 * The logger grpc-anchor uses when it runs effects outside an app's own
 * Effect runtime (the etcd resolver of a plain grpc-js channel,
 * registerEndpoint): warnings and errors go to stderr (console.warn /
 * console.error), never to stdout, which may carry the host program's output.
 */
import * as Logger from "effect/Logger"

export const stderrLogger = Logger.replace(Logger.defaultLogger, Logger.withLeveledConsole(Logger.logfmtLogger))
