/**
 * The command on a real 3-member etcd cluster (issue 14, item 5):
 * `grpc-anchor watch etcd://m1,m2,m3/svc` and `grpc-anchor register --etcd
 * m1,m2,m3` keep working while one member is hung (SIGSTOP): the watch sees
 * a registration made during the hang, and the removal when register exits
 * on SIGTERM; register revokes its lease and exits 0.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import { type EtcdCluster, startCluster } from "../../../test/support/etcd.js"
import { killAll, requireBuild, start } from "./run.js"

beforeAll(requireBuild)
afterEach(killAll)

let cluster: EtcdCluster
beforeAll(async () => {
  cluster = await startCluster(3)
}, 60_000)
afterAll(async () => {
  for (const member of cluster.members) member.resume()
  await cluster.stop()
})

describe("register and watch on a 3-member cluster", () => {
  it.each([0, 1, 2])("with member %i hung: watch sees a registration and its removal; register exits 0", async (hung) => {
    const hosts = cluster.endpoints.join(",")
    const service = `cluster-cli-${hung}`
    const watch = start(["watch", "--json", `etcd://${hosts}/${service}`])
    await watch.waitForLine("the first snapshot", (l) => l.includes('"snapshot"'))

    cluster.members[hung]!.pause()
    try {
      const startedAt = Date.now()
      const register = start(["register", "--etcd", hosts, "--service", service, "--address", "127.0.0.1:7101", "--ttl", "5"])
      await register.waitForLine("the registered line", (l) => l.startsWith("registered "))
      const registerMs = Date.now() - startedAt
      await watch.waitForLine("the added event", (l) => l.includes('"added"') && l.includes("127.0.0.1:7101"))
      const addedMs = Date.now() - startedAt

      register.signal("SIGTERM")
      const done = await register.exited(10_000)
      expect(done.code).toBe(0)
      expect(done.stdout).toContain("deregistered 127.0.0.1:7101: lease revoked")
      await watch.waitForLine("the removed event", (l) => l.includes('"removed"') && l.includes("127.0.0.1:7101"))
      const removedMs = Date.now() - startedAt
      console.log(
        `member ${hung} hung: register printed "registered" after ${registerMs} ms (process start included), ` +
          `watch saw it at ${addedMs} ms, saw the removal at ${removedMs} ms`
      )
      expect((await cluster.ctlOk(["get", "--prefix", `${service}/`], {})).trim()).toBe("")
    } finally {
      cluster.members[hung]!.resume()
    }
    watch.signal("SIGINT")
    expect((await watch.exited(10_000)).code).toBe(0)
  })
})
