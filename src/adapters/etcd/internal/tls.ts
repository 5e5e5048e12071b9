/**
 * Reading the PEM files of an etcd TLS configuration. Internal to the etcd
 * adapters.
 */
import { readFile } from "node:fs/promises"
import * as Effect from "effect/Effect"
import { EtcdError, messageOf } from "./error.js"

/** PEM files: CA bundle, and for mutual TLS a client certificate and key. */
export interface TlsFiles {
  readonly caFile?: string
  readonly certFile?: string
  readonly keyFile?: string
}

/**
 * The path as it may be shown: a "path" holding PEM text (the key itself
 * pasted where its file name belongs, e.g. `ETCD_KEY="$(cat key.pem)"`) is a
 * secret and is never echoed.
 */
const showPath = (path: string): string =>
  path.includes("-----BEGIN") || path.length > 1_024 ? "(a value that looks like PEM content, not a file path)" : JSON.stringify(path)

const readTlsFile = (option: keyof TlsFiles, path: string): Effect.Effect<Buffer, EtcdError> =>
  Effect.tryPromise({
    try: () => readFile(path),
    catch: (error) => {
      const code = typeof (error as { code?: unknown }).code === "string" ? (error as { code: string }).code : messageOf(error)
      const detail = `cannot read tls.${option} ${showPath(path)}: ${code}`
      // Node's error repeats the path in its message and its `path` field, so
      // it is replaced rather than kept as the cause.
      return new EtcdError({ reason: "InvalidArgument", operation: "read TLS files", cause: new Error(detail), detail })
    }
  })

/** The PEM contents of the TLS files (read in this order: CA, key, certificate). */
export const readTls = (
  tls: TlsFiles
): Effect.Effect<{ readonly rootCertificate?: Buffer; readonly privateKey?: Buffer; readonly certChain?: Buffer }, EtcdError> =>
  Effect.gen(function* () {
    // Absent: the system's root certificates (grpc-js createSsl).
    const rootCertificate = tls.caFile === undefined ? undefined : yield* readTlsFile("caFile", tls.caFile)
    const privateKey = tls.keyFile === undefined ? undefined : yield* readTlsFile("keyFile", tls.keyFile)
    const certChain = tls.certFile === undefined ? undefined : yield* readTlsFile("certFile", tls.certFile)
    return {
      ...(rootCertificate === undefined ? {} : { rootCertificate }),
      ...(privateKey === undefined ? {} : { privateKey }),
      ...(certChain === undefined ? {} : { certChain })
    }
  })
