/**
 * `grpc-anchor watch etcd://HOSTS/SERVICE [--json]`: prints the endpoints
 * registered for a service, then every change (added, removed, metadata
 * changed) as it happens, until SIGINT or SIGTERM (exit 0). The etcd
 * endpoints come from the target, else from `ETCD_ENDPOINTS`; TLS and
 * credentials from the environment.
 *
 * @example
 * ```sh
 * grpc-anchor watch etcd://127.0.0.1:2379/my-service
 * # 12:00:00.000  my-service: 2 endpoints (revision 41)
 * #   10.0.0.1:9080
 * #   10.0.0.2:9090
 * # 12:00:05.120  + 10.0.0.3:9090  (revision 42; 3 endpoints)
 * ```
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as Discovery from "../../adapters/etcd/Discovery.js"
import * as Address from "../../core/Address.js"
import * as EtcdRecord from "../../core/EtcdRecord.js"
import * as Target from "../../core/Target.js"
import { etcdLayer, failure, line, oneLine, parseHosts, probeEtcd, usage, verbose } from "./internal/common.js"

/** How long the first listing may take once etcd answered the probe. */
const FIRST_LISTING_TIMEOUT = "15 seconds"

/** One line of `watch --json`. */
export type WatchEvent =
  | {
      readonly event: "snapshot"
      readonly at: string
      readonly service: string
      readonly revision: string
      readonly endpoints: ReadonlyArray<EtcdRecord.Endpoint>
    }
  | {
      readonly event: "added" | "removed" | "updated"
      readonly at: string
      readonly service: string
      readonly revision: string
      readonly address: string
      readonly metadata: unknown
      /** The number of endpoints after the change. */
      readonly endpoints: number
    }

/** The changes from one endpoint set to the next, by address. */
export const diff = (
  before: ReadonlyArray<EtcdRecord.Endpoint>,
  after: ReadonlyArray<EtcdRecord.Endpoint>
): ReadonlyArray<{ readonly kind: "added" | "removed" | "updated"; readonly endpoint: EtcdRecord.Endpoint }> => {
  const old = new Map(before.map((e) => [e.address, e]))
  const now = new Map(after.map((e) => [e.address, e]))
  const changes: Array<{ kind: "added" | "removed" | "updated"; endpoint: EtcdRecord.Endpoint }> = []
  for (const e of before) if (!now.has(e.address)) changes.push({ kind: "removed", endpoint: e })
  for (const e of after) {
    const previous = old.get(e.address)
    if (previous === undefined) changes.push({ kind: "added", endpoint: e })
    else if (!EtcdRecord.sameEndpoint(previous, e)) changes.push({ kind: "updated", endpoint: e })
  }
  return changes
}

const clock = (date: Date): string => date.toISOString().slice(11, 23)
const metadataText = (metadata: unknown): string => (metadata === null || metadata === undefined ? "" : `  ${JSON.stringify(metadata)}`)
const SIGN = { added: "+", removed: "-", updated: "~" } as const

const target = Args.text({ name: "TARGET" }).pipe(
  Args.withDescription("etcd://HOST:PORT[,HOST:PORT...]/SERVICE (or etcd:///SERVICE with ETCD_ENDPOINTS set); a #N count is ignored.")
)
const json = Options.boolean("json").pipe(Options.withDescription("Print one JSON object per line: a snapshot, then one per change."))

/** The `watch` subcommand. */
export const command = Command.make("watch", { target, json, verbose }, ({ json, target }) =>
  Effect.gen(function* () {
    const parsed = Target.parse(target)
    if (Either.isLeft(parsed)) return yield* usage(`bad target: ${parsed.left.message}`)
    if (parsed.right._tag !== "Etcd") {
      return yield* usage(`watch needs an etcd target (etcd://HOST:PORT/SERVICE), got a ${parsed.right._tag.toLowerCase()} target`)
    }
    const { service } = parsed.right
    let hosts = parsed.right.etcd.map(Address.format)
    if (hosts.length === 0) {
      const env = process.env["ETCD_ENDPOINTS"]
      if (env === undefined || env.trim().length === 0) {
        return yield* usage(`${target} names no etcd endpoints: write them in the target (etcd://127.0.0.1:2379/${service}) or set ETCD_ENDPOINTS`)
      }
      hosts = [...(yield* parseHosts("ETCD_ENDPOINTS", env))]
    }

    const emit = (event: WatchEvent, text: string) => line(json ? JSON.stringify(event) : text)

    const program = Effect.gen(function* () {
      yield* probeEtcd(EtcdRecord.prefix(service))
      const discovery = yield* Discovery.make()
      const first = yield* Deferred.make<void>()
      let last: ReadonlyArray<EtcdRecord.Endpoint> | undefined
      const follow = discovery.watch(service).pipe(
        Stream.runForEach((snapshot) =>
          Effect.gen(function* () {
            const at = new Date()
            const previous = last
            last = snapshot.endpoints
            if (previous === undefined) {
              yield* Deferred.succeed(first, undefined)
              const count = snapshot.endpoints.length
              yield* emit(
                { event: "snapshot", at: at.toISOString(), service, revision: snapshot.revision, endpoints: snapshot.endpoints },
                [
                  `${clock(at)}  ${service}: ${count} endpoint${count === 1 ? "" : "s"} (revision ${snapshot.revision})`,
                  ...snapshot.endpoints.map((e) => `  ${e.address}${metadataText(e.metadata)}`)
                ].join("\n")
              )
              return
            }
            const total = snapshot.endpoints.length
            for (const change of diff(previous, snapshot.endpoints)) {
              yield* emit(
                {
                  event: change.kind,
                  at: at.toISOString(),
                  service,
                  revision: snapshot.revision,
                  address: change.endpoint.address,
                  metadata: change.endpoint.metadata,
                  endpoints: total
                },
                `${clock(at)}  ${SIGN[change.kind]} ${change.endpoint.address}${metadataText(change.endpoint.metadata)}  (revision ${snapshot.revision}; ${total} endpoint${total === 1 ? "" : "s"})`
              )
            }
          })
        ),
        Effect.mapError((error) => failure(`watching ${service} failed: ${oneLine(error.message)}`, error))
      )
      const fiber = yield* Effect.fork(follow)
      yield* Deferred.await(first).pipe(
        Effect.timeoutFail({
          duration: FIRST_LISTING_TIMEOUT,
          onTimeout: () => failure(`etcd at ${hosts.join(",")} did not list ${service} within ${FIRST_LISTING_TIMEOUT}`)
        }),
        // A stream that fails before its first snapshot ends the wait with its error.
        Effect.raceFirst(Effect.zipRight(Fiber.join(fiber), Effect.never))
      )
      // Runs until the stream fails (an error retrying cannot fix) or SIGINT/SIGTERM interrupts it.
      yield* Fiber.join(fiber)
    })
    yield* program.pipe(Effect.scoped, Effect.provide(etcdLayer(hosts)))
  })
).pipe(Command.withDescription("Print the endpoints of a service registered in etcd, then every change, until Ctrl-C."))
