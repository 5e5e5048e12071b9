/**
 * Closing a channel closes every connection, and nothing grpc-anchor
 * created keeps the process alive afterwards.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { expect, it } from "@effect/vitest"

const FIXTURE = fileURLToPath(new URL("../fixtures/closeExits.ts", import.meta.url))

it("closes every connection and lets the process exit by itself", async () => {
  const child = spawn(process.execPath, ["--import", "tsx", FIXTURE], { stdio: ["ignore", "pipe", "pipe"] })
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
  const code = await new Promise<number | string>((resolve) => {
    // 20 s is far beyond the fixture's own work; reaching it means a handle kept the process alive.
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      resolve("still running after 20 s")
    }, 20_000)
    child.once("exit", (exitCode) => {
      clearTimeout(timer)
      resolve(exitCode ?? -1)
    })
  })
  expect({ code, stderr }).toEqual({ code: 0, stderr: "" })
  expect(stdout).toContain("plain: all connections closed")
  expect(stdout).toContain("effect: all connections closed")
  expect(stdout).toContain("done")
}, 30_000)
