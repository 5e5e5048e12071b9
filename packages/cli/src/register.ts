/**
 * `grpc-anchor register --etcd HOSTS --service S --address A [--ttl S] [--metadata JSON] [--connections N|MIN..MAX]`:
 * publishes one backend in etcd (Go's naming/endpoints record under a
 * kept-alive lease, see Registrar) and keeps it there until SIGINT or
 * SIGTERM; then revokes the lease, so the record goes at once, checks that
 * it is gone, and exits 0. TLS and credentials come from the environment
 * (`ETCD_CACERT`, `ETCD_CERT`, `ETCD_KEY`, `ETCD_USERNAME`, `ETCD_PASSWORD`).
 *
 * `--connections 3` (or `2..8`) asks clients for this backend's own number
 * of connections, overriding their `etcd:///svc#N`: it is written into the
 * record's Metadata as `{"grpc_anchor.connections": 3}`. Go interop: any
 * object Metadata crashes Go's etcd resolver under round_robin
 * (etcd-io/etcd#19700); in a fleet with Go clients leave it off (and a Go
 * client on a service name containing `/` needs `grpc.WithAuthority`).
 *
 * @example
 * ```sh
 * grpc-anchor register --etcd 127.0.0.1:2379 --service my-service --address 10.0.0.1:9080 --ttl 5
 * ```
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { CliError, Command, Flag } from "effect/cli"
import { Etcd, Registrar } from "grpc-anchor"
import { Address, EtcdRecord, Target } from "grpc-anchor/core"
import { etcdLayer, failure, helpText, hostsFlag, inRange, line, oneLine, probeEtcd, usage } from "./internal/common.js"
import { metricsFlag, serveMetrics } from "./internal/metrics.js"

/** How long the first registration may take once etcd answered the probe. */
const REGISTER_TIMEOUT = "15 seconds"
/** How long the check that the record is gone may take after the revoke. */
const CHECK_TIMEOUT = "3 seconds"

const invalid = (message: string) => Effect.fail(new CliError.ValidationError({ message }))

/** The lease TTL, in seconds, when --ttl is not given. */
const DEFAULT_TTL = 10

const etcd = hostsFlag("etcd").pipe(
  Flag.withMetavar("HOSTS"),
  Flag.withDescription(helpText("etcd endpoints, host:port[,host:port...] (https://host:port for TLS).", "required"))
)
const service = Flag.String("service").pipe(
  Flag.withMetavar("SERVICE"),
  Flag.mapEffect((name) => (name.length === 0 ? invalid("--service must not be empty") : Effect.succeed(name))),
  Flag.withDescription(helpText("The service (etcd key prefix).", "required"))
)
// Checked here, so a bad address is a usage error found before etcd is dialled.
const address = Flag.String("address").pipe(
  Flag.withMetavar("HOST:PORT"),
  Flag.mapEffect((text) =>
    Result.match(Address.parse(text), {
      onFailure: (error) => invalid(`--address: ${oneLine(error.message)}`),
      onSuccess: () => Effect.succeed(text)
    })
  ),
  Flag.withDescription(helpText("The backend's address, as clients should dial it.", "required"))
)
const ttl = Flag.Int("ttl").pipe(
  Flag.withMetavar("SECONDS"),
  Flag.withDefault(DEFAULT_TTL),
  Flag.mapEffect(inRange("--ttl", 1, 9_000_000_000, "a whole number of seconds >= 1")),
  Flag.withDescription(
    helpText("Lease TTL in seconds: how long the record outlives this process if it dies without deregistering.", { default: DEFAULT_TTL })
  )
)
const decodeJson = Schema.decodeUnknownEffect(Schema.fromJsonString(Schema.Unknown))
const metadata = Flag.String("metadata").pipe(
  Flag.withMetavar("JSON"),
  Flag.mapEffect((text) =>
    decodeJson(text).pipe(Effect.catch((error) => invalid(`--metadata is not valid JSON: ${oneLine(error.message)}`)))
  ),
  Flag.optional,
  Flag.withDescription("JSON stored as the record's Metadata, e.g. '{\"serverName\":\"api.example\"}'.")
)

// Checked here, so a bad count is a usage error found before etcd is dialled.
const connections = Flag.String("connections").pipe(
  Flag.withMetavar("N|MIN..MAX"),
  Flag.mapEffect((text) =>
    Result.match(Target.parseCount(text), {
      onFailure: (error) => invalid(`--connections: ${oneLine(error.message)}`),
      onSuccess: () => Effect.succeed(text)
    })
  ),
  Flag.optional,
  Flag.withDescription(
    "This backend's own connection count for clients (e.g. 3, or 2..8 to grow while saturated), overriding their #N; " +
      "stored in Metadata as grpc_anchor.connections. Go clients under round_robin crash on object Metadata: leave it off for them."
  )
)

const describeStatus = (status: Registrar.Status): string | undefined => {
  switch (status._tag) {
    case "Registered":
      return `registered (lease ${status.leaseId}, revision ${status.revision})`
    case "Reconnecting":
      return `reconnecting: ${oneLine(status.reason)}`
    case "Registering":
    case "Closed":
      return undefined
  }
}

/** The `register` subcommand. */
export const command = Command.make(
  "register",
  { etcd, service, address, ttl, metadata, connections, metrics: metricsFlag },
  ({ address, connections, etcd: hosts, metadata, metrics, service, ttl }) =>
    Effect.gen(function* () {
      const given = Option.getOrNull(metadata)
      const count = Option.getOrUndefined(connections)
      // The count goes into the metadata, which must then be an object (or absent).
      const data = count === undefined
        ? given
        : yield* Result.match(EtcdRecord.withConnections(given, count), {
          onFailure: (error) => Effect.fail(usage(`--connections with --metadata: ${oneLine(error.message)}`)),
          onSuccess: (withCount) => Effect.succeed<unknown>(withCount)
        })

      /** The registrar once made, for the check after the revoke. */
      let made: Registrar.Registrar.Shape | undefined

      const program = Effect.gen(function* () {
        yield* serveMetrics(metrics)
        yield* probeEtcd(EtcdRecord.prefix(service))
        const registrar = yield* Registrar.make({ service, address, ttl, metadata: data }).pipe(
          Effect.mapError((error) => usage(oneLine(error.message)))
        )
        made = registrar
        // Fails at once on what retrying cannot fix (credentials, permissions); bounded otherwise.
        const registered = yield* registrar.awaitRegistered.pipe(
          Effect.mapError((error) => failure(`could not register ${registrar.address} in etcd: ${oneLine(error.message)}`, error)),
          Effect.timeoutOption(REGISTER_TIMEOUT),
          Effect.flatMap(
            Option.match({
              onSome: Effect.succeed,
              onNone: () =>
                Effect.flatMap(registrar.status, (status) =>
                  Effect.fail(
                    failure(
                      `could not register ${registrar.address} in etcd within ${REGISTER_TIMEOUT}: ` +
                        (status._tag === "Reconnecting" ? oneLine(status.reason) : "no answer")
                    )
                  )
                )
            })
          )
        )
        yield* line(
          `registered ${registrar.address} as ${registrar.key} (lease ${registered.leaseId}, ttl ${ttl}s); Ctrl-C or SIGTERM deregisters`
        )
        // Report later changes (lease lost, etcd away, back again) until interrupted.
        let shown = describeStatus(registered)
        yield* registrar.changes.pipe(
          Stream.runForEach((status) => {
            const text = describeStatus(status)
            if (text === undefined || text === shown) return Effect.void
            shown = text
            return line(text)
          })
        )
      })

      // The registrar's scope closes first (its lease revoked), then the
      // record is checked with the same etcd client, still open.
      yield* program.pipe(
        Effect.scoped,
        Effect.onInterrupt(() => (made === undefined ? Effect.void : confirmGone(made))),
        Effect.provide(etcdLayer(hosts))
      )
    })
).pipe(Command.withDescription("Register an endpoint in etcd and keep it registered until Ctrl-C or SIGTERM, then deregister."))

/** After the revoke: says whether the record is gone (bounded; etcd may be away). */
const confirmGone = ({ address, key }: Registrar.Registrar.Shape) =>
  Effect.gen(function* () {
    const etcd = yield* Etcd.Etcd
    const value = yield* etcd.range(`read ${key}`, { key, count_only: true }).pipe(Effect.timeout(CHECK_TIMEOUT), Effect.result)
    if (Result.isFailure(value)) {
      yield* line(`deregistering ${address}: etcd did not confirm the removal (the record expires with its lease)`)
    } else if (value.success.count > 0n) {
      yield* line(`deregistering ${address}: ${key} is still in etcd; it expires with its lease`)
    } else {
      yield* line(`deregistered ${address}: lease revoked, ${key} removed`)
    }
  })
