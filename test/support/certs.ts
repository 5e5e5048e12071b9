/**
 * Certificates made at test time with the `openssl` command: a CA and leaf
 * certificates with the subject alternative names a test needs. Nothing is
 * checked in; every file lives in a temporary directory removed by `cleanup`.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

export interface KeyPair {
  readonly key: Buffer
  readonly cert: Buffer
  readonly keyPath: string
  readonly certPath: string
}

export interface Authority extends KeyPair {
  /** A leaf certificate for the given names (`DNS:localhost`, `IP:127.0.0.1`), signed by this CA. */
  readonly issue: (name: string, altNames: ReadonlyArray<string>, usage?: "server" | "client" | "both") => KeyPair
}

const openssl = (args: ReadonlyArray<string>, cwd: string): void => {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] })
}

export const makeCertificates = (): { readonly authority: (name: string) => Authority; readonly dir: string; readonly cleanup: () => void } => {
  const dir = mkdtempSync(join(tmpdir(), "grpc-anchor-certs-"))
  let serial = 0
  const authority = (caName: string): Authority => {
    const caKey = join(dir, `${caName}.key`)
    const caCert = join(dir, `${caName}.crt`)
    openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", caKey, "-out", caCert, "-days", "2", "-subj", `/CN=${caName}`], dir)
    return {
      key: readFileSync(caKey),
      cert: readFileSync(caCert),
      keyPath: caKey,
      certPath: caCert,
      issue: (name, altNames, usage = "server") => {
        const id = `${caName}-${name}-${++serial}`
        const key = join(dir, `${id}.key`)
        const csr = join(dir, `${id}.csr`)
        const cert = join(dir, `${id}.crt`)
        const ext = join(dir, `${id}.ext`)
        const eku = usage === "server" ? "serverAuth" : usage === "client" ? "clientAuth" : "serverAuth,clientAuth"
        writeFileSync(ext, `subjectAltName=${altNames.join(",")}\nextendedKeyUsage=${eku}\n`)
        openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr, "-subj", `/CN=${name}`], dir)
        openssl(["x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", caKey, "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext], dir)
        return { key: readFileSync(key), cert: readFileSync(cert), keyPath: key, certPath: cert }
      }
    }
  }
  return { authority, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/**
 * The certificates the etcd TLS suites share: a CA, etcd's server pair (for
 * localhost and 127.0.0.1; etcd 3.4 dials itself with it, so it is usable as
 * a client too), a client pair from the same CA, and one from another CA.
 */
export const etcdCertificates = () => {
  const certs = makeCertificates()
  const ca = certs.authority("etcd-ca")
  const otherCa = certs.authority("other-ca")
  const serverPair = ca.issue("etcd", ["DNS:localhost", "IP:127.0.0.1"], "both")
  const clientPair = ca.issue("anchor-client", ["DNS:localhost"], "client")
  const foreignPair = otherCa.issue("anchor-client", ["DNS:localhost"], "client")
  return {
    certs,
    ca,
    otherCa,
    serverPair,
    clientPair,
    foreignPair,
    /** etcd client TLS options with the trusted client pair. */
    goodTls: { caFile: ca.certPath, certFile: clientPair.certPath, keyFile: clientPair.keyPath },
    /** etcd client TLS options with the pair from another CA. */
    foreignTls: { caFile: ca.certPath, certFile: foreignPair.certPath, keyFile: foreignPair.keyPath }
  } as const
}
