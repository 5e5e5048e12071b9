/**
 * Helpers for tests that drive real grpc-js servers and clients on loopback.
 */
import * as grpc from "@grpc/grpc-js"
import { afterEach } from "@effect/vitest"
import { call, EchoClient, startEchoServer, type Echo, type EchoServer } from "../../packages/cli/src/echo/echo.js"

export const insecure = grpc.credentials.createInsecure()

export const makeClient = (target: string, options: grpc.ChannelOptions = {}): Echo =>
  new EchoClient(target, insecure, options) as unknown as Echo

/** Runs `count` calls, at most `concurrency` at a time; returns who answered each, in call order. */
export const callMany = async (
  client: Echo,
  count: number,
  concurrency = 1,
  options: Parameters<typeof call>[1] = {}
): Promise<Array<string>> => {
  const answers = new Array<string>(count)
  let next = 0
  const worker = async () => {
    while (next < count) {
      const i = next++
      answers[i] = await call(client, options)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  return answers
}

export const tally = (names: ReadonlyArray<string>): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const name of names) counts[name] = (counts[name] ?? 0) + 1
  return counts
}

/** Re-exported: the one implementation is in eventually.ts (vitest-free). */
export { eventually } from "./eventually.js"

/** Waits until the client's channel is READY (connecting if idle). */
export const ready = (client: grpc.Client, timeoutMs = 10_000): Promise<void> =>
  new Promise((resolve, reject) => client.waitForReady(Date.now() + timeoutMs, (error) => (error ? reject(error) : resolve())))

/**
 * Cleanups for the calling test file: each registered function runs after
 * the current test, newest first. Call at the top level of a test file.
 */
export const cleanupAfterEach = (): ((cleanup: () => unknown) => void) => {
  const cleanups: Array<() => unknown> = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
  return (cleanup) => {
    cleanups.push(cleanup)
  }
}

/** Starts in-process echo servers on loopback, force-closed by `defer` after the test. */
export const echoServers =
  (defer: (cleanup: () => unknown) => void) =>
  async (...names: Array<string>): Promise<Array<EchoServer>> => {
    const started = await Promise.all(names.map((name) => startEchoServer({ name })))
    for (const server of started) defer(() => server.close({ force: true }))
    return started
  }
