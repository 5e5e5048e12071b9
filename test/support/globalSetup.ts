/**
 * Vitest global setup: makes sure `etcd` and `etcdctl` (and `openssl`, which
 * makes the TLS suites' certificates, and `tmux`, the pseudo-terminal the
 * demo's 80-column test runs in) are on the PATH before any suite runs,
 * because those suites start real servers and never skip. As root (CI, a
 * fresh machine) it installs the Debian packages; otherwise it fails with the
 * command to run.
 */
import { spawnSync } from "node:child_process"

const INSTALL_TIMEOUT_MS = 10 * 60_000

const onPath = (command: string): boolean =>
  spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0

/** Command -> the Debian package that provides it. */
const PACKAGES: Readonly<Record<string, string>> = { etcd: "etcd-server", etcdctl: "etcd-client", openssl: "openssl", tmux: "tmux" }

const missing = (): ReadonlyArray<string> => Object.keys(PACKAGES).filter((command) => !onPath(command))

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
  const packages = absent.map((command) => PACKAGES[command]!)
  const how = `sudo apt-get update && sudo apt-get install -y ${packages.join(" ")} (etcd must be >= 3.4)`
  if (typeof process.getuid !== "function" || process.getuid() !== 0) {
    throw new Error(`The integration tests need ${absent.join(" and ")} on the PATH. Install them with: ${how}`)
  }
  console.log(`[globalSetup] ${absent.join(" and ")} not found; installing ${packages.join(" ")} with apt-get`)
  run("apt-get", ["update"])
  run("apt-get", ["install", "-y", "--no-install-recommends", ...packages])
  const still = missing()
  if (still.length > 0) throw new Error(`${still.join(" and ")} still not on the PATH after apt-get install. Install with: ${how}`)
}
