/**
 * Vitest global setup: makes sure `etcd` and `etcdctl` are on the PATH before
 * any suite runs, because the etcd suites start real servers and never skip.
 * As root (CI, a fresh machine) it installs Debian's `etcd-server` and
 * `etcd-client`; otherwise it fails with the command to run.
 */
import { spawnSync } from "node:child_process"

const INSTALL_TIMEOUT_MS = 10 * 60_000

const onPath = (command: string): boolean =>
  spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0

const missing = (): ReadonlyArray<string> => ["etcd", "etcdctl"].filter((command) => !onPath(command))

const run = (command: string, args: ReadonlyArray<string>): void => {
  const result = spawnSync(command, args, {
    stdio: "inherit",
    timeout: INSTALL_TIMEOUT_MS,
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
  })
  if (result.status !== 0) {
    throw new Error(`\`${command} ${args.join(" ")}\` failed (${result.error?.message ?? `exit ${result.status}`})`)
  }
}

export default function setup(): void {
  const absent = missing()
  if (absent.length === 0) return
  const how = "sudo apt-get update && sudo apt-get install -y etcd-server etcd-client (or put etcd >= 3.4 on the PATH)"
  if (typeof process.getuid !== "function" || process.getuid() !== 0) {
    throw new Error(`The etcd integration tests need ${absent.join(" and ")} on the PATH. Install them with: ${how}`)
  }
  console.log(`[globalSetup] ${absent.join(" and ")} not found; installing etcd-server and etcd-client with apt-get`)
  run("apt-get", ["update"])
  run("apt-get", ["install", "-y", "--no-install-recommends", "etcd-server", "etcd-client"])
  const still = missing()
  if (still.length > 0) throw new Error(`${still.join(" and ")} still not on the PATH after apt-get install. Install with: ${how}`)
}
