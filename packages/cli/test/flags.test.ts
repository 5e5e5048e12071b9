/**
 * Bad usage and failures of the built command: one line on stderr, no
 * stack trace, exit 2 for bad flags and values, 1 for failures at run time;
 * `--help` and `--version` work.
 */
import { readFileSync } from "node:fs"
import { afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import { hasAnsi, hasStackTrace, killAll, requireBuild, run } from "./run.js"

beforeAll(requireBuild)
afterEach(killAll)

const oneLine = (text: string) => text.trimEnd().split("\n")

describe("bad flags and values", () => {
  it.each([
    ["an unknown subcommand", ["bogus"], /Unknown subcommand "bogus" for "grpc-anchor" \(see grpc-anchor --help\)$/],
    ["an unknown flag", ["demo", "--bogus"], /Unrecognized flag: --bogus in command grpc-anchor demo \(see grpc-anchor demo --help\)$/],
    ["a misspelt flag", ["resolve", "--jsn", "x"], /Unrecognized flag: --jsn .*\(did you mean --json\?\)/],
    ["a duration that is not a number", ["demo", "--duration", "abc"], /Invalid value for flag --duration: "abc"/],
    ["a duration out of range", ["demo", "--duration", "0"], /--duration must be between 1 and 3600, got 0/],
    ["a TTL of 0", ["register", "--etcd", "127.0.0.1:2379", "--service", "s", "--address", "10.0.0.1:80", "--ttl", "0"], /--ttl must be a whole number of seconds >= 1, got 0/],
    ["missing options", ["register", "--etcd", "127.0.0.1:2379"], /Missing required flag: --service/],
    ["a missing target", ["resolve"], /Missing required argument: TARGET/],
    ["metadata that is not JSON", ["register", "--etcd", "127.0.0.1:1", "--service", "s", "--address", "10.0.0.1:80", "--metadata", "{x"], /--metadata is not valid JSON/],
    ["an address without a port", ["register", "--etcd", "127.0.0.1:1", "--service", "s", "--address", "10.0.0.1"], /--address: the address has no port/],
    ["an empty etcd list", ["register", "--etcd", ",", "--service", "s", "--address", "10.0.0.1:80"], /--etcd must list etcd endpoints/],
    ["watch on a pass target", ["watch", "pass:///10.0.0.1:80"], /watch needs an etcd target/],
    ["watch without etcd endpoints", ["watch", "etcd:///svc"], /names no etcd endpoints/]
  ])("%s: exit 2 with one line", async (_name, args, message) => {
    const result = await run(args, { env: { ETCD_ENDPOINTS: "" } })
    expect(result.code).toBe(2)
    expect(result.stdout).toBe("")
    const lines = oneLine(result.stderr)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^grpc-anchor: /)
    expect(lines[0]).toMatch(message)
    expect(hasStackTrace(result.stderr)).toBe(false)
    expect(hasAnsi(result.stderr)).toBe(false)
  })
})

describe("failures at run time", () => {
  it.each([
    ["register", ["register", "--etcd", "127.0.0.1:1", "--service", "s", "--address", "10.0.0.1:80"]],
    ["watch", ["watch", "etcd://127.0.0.1:1/svc"]],
    ["demo", ["demo", "--etcd", "127.0.0.1:1", "--duration", "1"]]
  ])("%s with an unreachable etcd: exit 1 with one line, a stack trace only with --verbose", async (_name, args) => {
    const result = await run(args)
    expect(result.code).toBe(1)
    expect(result.stdout).toBe("")
    const lines = oneLine(result.stderr)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^grpc-anchor: cannot reach etcd at 127\.0\.0\.1:1: .*ECONNREFUSED/)
    expect(hasStackTrace(result.stderr)).toBe(false)

    const verbose = await run([...args, "--verbose"])
    expect(verbose.code).toBe(1)
    expect(oneLine(verbose.stderr)[0]).toBe(lines[0])
    expect(oneLine(verbose.stderr).length).toBeGreaterThan(1)
  })

  it("never prints the etcd password", async () => {
    const secret = "hunter2-not-to-be-printed"
    const env = { ETCD_USERNAME: "root", ETCD_PASSWORD: secret }
    for (const args of [
      ["register", "--etcd", "127.0.0.1:1", "--service", "s", "--address", "10.0.0.1:80", "--verbose"],
      ["watch", "etcd://127.0.0.1:1/svc", "--verbose"]
    ]) {
      const result = await run(args, { env })
      expect(result.code).toBe(1)
      expect(result.stdout + result.stderr).not.toContain(secret)
    }
  })
})

describe("help and version", () => {
  it("--version prints the package version", async () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
    const result = await run(["--version"])
    expect(result.code).toBe(0)
    expect(result.stdout.trim()).toBe(pkg.version)
  })

  it("--help lists the subcommands, without styling when piped", async () => {
    const result = await run(["--help"])
    expect(result.code).toBe(0)
    for (const sub of ["demo", "resolve", "watch", "register"]) expect(result.stdout).toContain(sub)
    expect(hasAnsi(result.stdout)).toBe(false)
    const sub = await run(["register", "--help"])
    expect(sub.code).toBe(0)
    for (const flag of ["--etcd", "--service", "--address", "--ttl", "--metadata"]) expect(sub.stdout).toContain(flag)
  })

  it.each([
    ["demo", { "--duration": "(default: 10)", "--concurrency": "(default: 16)", "--service": "(default: demo)", "--ttl": "(default: 2)" }],
    ["register", { "--etcd": "(required)", "--service": "(required)", "--address": "(required)", "--ttl": "(default: 10)" }]
  ])("%s --help shows each flag's default and marks the required ones", async (command, ends) => {
    const help = await run([command, "--help"])
    expect(help.code).toBe(0)
    for (const [flag, end] of Object.entries(ends)) {
      const line = help.stdout.split("\n").find((l) => l.trimStart().startsWith(`${flag} `))
      expect(line, flag).toBeDefined()
      expect(line!.trimEnd().endsWith(end), `${line}`).toBe(true)
    }
  })
})
