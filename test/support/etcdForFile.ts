/**
 * A per-file etcd for vitest suites (kept apart from the harness in
 * etcd.ts, which benchmarks use outside vitest).
 */
import { afterAll, beforeAll } from "vitest"
import { type EtcdServer, expectNoOpenHandles, startEtcd, type StartEtcdOptions } from "./etcd.js"

/**
 * One etcd for the calling test file: started before its first test and
 * stopped after its last; with `checkHandles`, no socket or child process
 * may be left open then. The returned object stands for the server once it
 * has started (using it earlier throws).
 */
export const etcdForFile = (options: StartEtcdOptions & { readonly checkHandles?: boolean } = {}): EtcdServer => {
  const { checkHandles = false, ...startOptions } = options
  let server: EtcdServer | undefined
  beforeAll(async () => {
    server = await startEtcd(startOptions)
  })
  afterAll(async () => {
    await server?.stop()
    if (checkHandles) await expectNoOpenHandles()
  })
  return new Proxy({} as EtcdServer, {
    get: (_target, key) => {
      if (server === undefined) throw new Error("etcdForFile: the server was used before beforeAll started it")
      return Reflect.get(server, key)
    }
  })
}

