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
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import { Argument, Command, Flag } from "effect/cli"
import { Discovery, type Etcd } from "grpc-anchor"
import { Address, EtcdRecord } from "grpc-anchor/core"
import { metricsFlag, serveMetrics } from "./internal/metrics.js"
import { etcdLayer, failure, hostsOrEnv, line, oneLine, parseTarget, plural, probeEtcd, usage } from "./internal/common.js"

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

const target = Argument.String("TARGET").pipe(
  Argument.withDescription("etcd://HOST:PORT[,HOST:PORT...]/SERVICE (or etcd:///SERVICE with ETCD_ENDPOINTS set); a #N count is ignored.")
)
const json = Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("Print one JSON object per line: a snapshot, then one per change."))

/** The `watch` subcommand. */
export const command = Command.make("watch", { target, json, metrics: metricsFlag }, ({ json, metrics, target }) =>
  Effect.gen(function* () {
    const parsed = yield* parseTarget(target)
    if (parsed._tag !== "Etcd") {
      return yield* usage(`watch needs an etcd target (etcd://HOST:PORT/SERVICE), got a ${parsed._tag.toLowerCase()} target`)
    }
    const { service } = parsed
    const hosts = yield* hostsOrEnv(parsed.etcd.map(Address.format), () =>
      usage(`${target} names no etcd endpoints: write them in the target (etcd://127.0.0.1:2379/${service}) or set ETCD_ENDPOINTS`)
    )

    const emit = (event: WatchEvent, text: string) => line(json ? JSON.stringify(event) : text)
    const emitSnapshot = (snapshot: Discovery.Snapshot) => {
      const at = new Date()
      return emit(
        { event: "snapshot", at: at.toISOString(), service, revision: snapshot.revision, endpoints: snapshot.endpoints },
        [
          `${clock(at)}  ${service}: ${plural(snapshot.endpoints.length, "endpoint")} (revision ${snapshot.revision})`,
          ...snapshot.endpoints.map((e) => `  ${e.address}${metadataText(e.metadata)}`)
        ].join("\n")
      )
    }
    const emitChanges = (before: Discovery.Snapshot, snapshot: Discovery.Snapshot) => {
      const at = new Date()
      const total = snapshot.endpoints.length
      return Effect.forEach(
        diff(before.endpoints, snapshot.endpoints),
        ({ endpoint, kind }) =>
          emit(
            { event: kind, at: at.toISOString(), service, revision: snapshot.revision, address: endpoint.address, metadata: endpoint.metadata, endpoints: total },
            `${clock(at)}  ${SIGN[kind]} ${endpoint.address}${metadataText(endpoint.metadata)}  (revision ${snapshot.revision}; ${plural(total, "endpoint")})`
          ),
        { discard: true }
      )
    }

    const program = Effect.gen(function* () {
      yield* serveMetrics(metrics)
      yield* probeEtcd(EtcdRecord.prefix(service))
      const discovery = yield* Discovery.make()
      // Said when the first listing does not come in time: why etcd did not answer.
      let lastError: Etcd.EtcdError | undefined
      const snapshots = discovery.watch(service, {
        onListingError: (error) => {
          lastError = error
        }
      })
      // The first snapshot is awaited with a bound; a stream that fails before it ends the wait with its error.
      const [first, rest] = yield* Stream.peel(snapshots, Sink.head()).pipe(
        Effect.timeoutOrElse({
          duration: FIRST_LISTING_TIMEOUT,
          orElse: () =>
            Effect.fail(failure(
              `etcd at ${hosts.join(",")} did not list ${service} within ${FIRST_LISTING_TIMEOUT}` +
                (lastError === undefined ? "" : `: ${oneLine(lastError.message)}`)
            ))
        })
      )
      // Runs until the stream fails (an error retrying cannot fix) or SIGINT/SIGTERM interrupts it.
      yield* Stream.concat(Stream.fromIterable(Option.toArray(first)), rest).pipe(
        Stream.zipWithPrevious,
        Stream.runForEach(([previous, snapshot]) =>
          Option.match(previous, { onNone: () => emitSnapshot(snapshot), onSome: (before) => emitChanges(before, snapshot) })
        )
      )
    }).pipe(Effect.mapError((error) => (error._tag === "EtcdError" ? failure(`watching ${service} failed: ${oneLine(error.message)}`, error) : error)))
    yield* program.pipe(Effect.scoped, Effect.provide(etcdLayer(hosts)))
  })
).pipe(Command.withDescription("Print the endpoints of a service registered in etcd, then every change, until Ctrl-C."))
