/**
 * The part of etcd's v3 gRPC API this library speaks (etcd's
 * `api/etcdserverpb/rpc.proto` and `api/mvccpb/kv.proto`, messages and
 * fields trimmed to what is used; field numbers are the wire contract), and
 * its codec. Internal to the etcd client.
 *
 * Decoded messages are plain objects: int64 fields as `bigint`, bytes as
 * `Buffer`, absent fields at their proto3 defaults.
 */
import protobuf from "protobufjs"

const SCHEMA = `
syntax = "proto3";
package etcdserverpb;

message ResponseHeader { uint64 cluster_id = 1; uint64 member_id = 2; int64 revision = 3; uint64 raft_term = 4; }
message KeyValue { bytes key = 1; int64 create_revision = 2; int64 mod_revision = 3; int64 version = 4; bytes value = 5; int64 lease = 6; }
message Event { enum EventType { PUT = 0; DELETE = 1; } EventType type = 1; KeyValue kv = 2; KeyValue prev_kv = 3; }

message RangeRequest {
  enum SortOrder { NONE = 0; ASCEND = 1; DESCEND = 2; }
  enum SortTarget { KEY = 0; VERSION = 1; CREATE = 2; MOD = 3; VALUE = 4; }
  bytes key = 1; bytes range_end = 2; int64 limit = 3; int64 revision = 4;
  SortOrder sort_order = 5; SortTarget sort_target = 6; bool serializable = 7; bool keys_only = 8; bool count_only = 9;
}
message RangeResponse { ResponseHeader header = 1; repeated KeyValue kvs = 2; bool more = 3; int64 count = 4; }
message PutRequest { bytes key = 1; bytes value = 2; int64 lease = 3; bool prev_kv = 4; }
message PutResponse { ResponseHeader header = 1; }
message DeleteRangeRequest { bytes key = 1; bytes range_end = 2; }
message DeleteRangeResponse { ResponseHeader header = 1; int64 deleted = 2; }
message RequestOp { oneof request { RangeRequest request_range = 1; PutRequest request_put = 2; DeleteRangeRequest request_delete_range = 3; } }
message ResponseOp { oneof response { RangeResponse response_range = 1; PutResponse response_put = 2; DeleteRangeResponse response_delete_range = 3; } }
message Compare {
  enum CompareResult { EQUAL = 0; GREATER = 1; LESS = 2; NOT_EQUAL = 3; }
  enum CompareTarget { VERSION = 0; CREATE = 1; MOD = 2; VALUE = 3; LEASE = 4; }
  CompareResult result = 1; CompareTarget target = 2; bytes key = 3;
  oneof target_union { int64 version = 4; int64 create_revision = 5; int64 mod_revision = 6; bytes value = 7; int64 lease = 8; }
}
message TxnRequest { repeated Compare compare = 1; repeated RequestOp success = 2; repeated RequestOp failure = 3; }
message TxnResponse { ResponseHeader header = 1; bool succeeded = 2; repeated ResponseOp responses = 3; }

message WatchRequest { oneof request_union { WatchCreateRequest create_request = 1; WatchCancelRequest cancel_request = 2; WatchProgressRequest progress_request = 3; } }
message WatchCreateRequest { bytes key = 1; bytes range_end = 2; int64 start_revision = 3; bool progress_notify = 4; bool prev_kv = 6; int64 watch_id = 7; }
message WatchCancelRequest { int64 watch_id = 1; }
message WatchProgressRequest {}
message WatchResponse {
  ResponseHeader header = 1; int64 watch_id = 2; bool created = 3; bool canceled = 4;
  int64 compact_revision = 5; string cancel_reason = 6; bool fragment = 7; repeated Event events = 11;
}

message LeaseGrantRequest { int64 TTL = 1; int64 ID = 2; }
message LeaseGrantResponse { ResponseHeader header = 1; int64 ID = 2; int64 TTL = 3; string error = 4; }
message LeaseRevokeRequest { int64 ID = 1; }
message LeaseRevokeResponse { ResponseHeader header = 1; }
message LeaseKeepAliveRequest { int64 ID = 1; }
message LeaseKeepAliveResponse { ResponseHeader header = 1; int64 ID = 2; int64 TTL = 3; }
message LeaseTimeToLiveRequest { int64 ID = 1; bool keys = 2; }
message LeaseTimeToLiveResponse { ResponseHeader header = 1; int64 ID = 2; int64 TTL = 3; int64 grantedTTL = 4; repeated bytes keys = 5; }

message Member { uint64 ID = 1; string name = 2; repeated string peerURLs = 3; repeated string clientURLs = 4; bool isLearner = 5; }
message MemberListRequest {}
message MemberListResponse { ResponseHeader header = 1; repeated Member members = 2; }
message StatusRequest {}
message StatusResponse { ResponseHeader header = 1; string version = 2; int64 dbSize = 3; uint64 leader = 4; uint64 raftIndex = 5; uint64 raftTerm = 6; repeated string errors = 8; bool isLearner = 10; }
message AuthenticateRequest { string name = 1; string password = 2; }
message AuthenticateResponse { ResponseHeader header = 1; string token = 2; }
`

const root = protobuf.parse(SCHEMA, { keepCase: true }).root

/** Options of `toObject`: int64 as decimal strings (made bigint below), bytes as Buffers, defaults filled in. */
const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, bytes: Buffer as unknown as StringConstructor, defaults: true, arrays: true }

/** Turns the decimal strings of int64/uint64 fields into bigints, deeply. */
const bigints = (value: unknown, type: protobuf.Type): unknown => {
  if (value === null || typeof value !== "object") return value
  const out = value as Record<string, unknown>
  for (const field of type.fieldsArray) {
    const v = out[field.name]
    if (v === undefined || v === null) continue
    const resolved = field.resolve().resolvedType
    const convert = (item: unknown): unknown =>
      resolved instanceof protobuf.Type
        ? bigints(item, resolved)
        : /^u?int64$/.test(field.type) || /^s?fixed64$/.test(field.type)
        ? BigInt(item as string)
        : item
    out[field.name] = Array.isArray(v) ? v.map(convert) : convert(v)
  }
  return out
}

/**
 * What `fromObject` takes, deeply: bigints as decimal strings (it parses
 * int64 from strings), strings in bytes fields as their UTF-8 bytes (it
 * would read a string there as base64).
 */
const toWire = (value: unknown, type: protobuf.Type): unknown => {
  if (value === null || typeof value !== "object") return value
  const out: Record<string, unknown> = {}
  for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
    const field = type.fields[name]
    if (field === undefined || v === undefined) continue
    const resolved = field.resolve().resolvedType
    const convert = (item: unknown): unknown =>
      resolved instanceof protobuf.Type
        ? toWire(item, resolved)
        : typeof item === "bigint"
        ? item.toString()
        : field.type === "bytes" && typeof item === "string"
        ? Buffer.from(item, "utf8")
        : item
    out[name] = Array.isArray(v) ? v.map(convert) : convert(v)
  }
  return out
}

/** A message's wire codec for grpc-js (`serialize`/`deserialize`). */
export interface Codec<A> {
  readonly serialize: (value: A) => Buffer
  readonly deserialize: (bytes: Buffer) => A
}

const codec = <A>(name: string): Codec<A> => {
  const type = root.lookupType(`etcdserverpb.${name}`)
  return {
    serialize: (value) => Buffer.from(type.encode(type.fromObject(toWire(value, type) as Record<string, unknown>)).finish()),
    deserialize: (bytes) => bigints(type.toObject(type.decode(bytes), TO_OBJECT), type) as A
  }
}

/** Bytes on the wire: a string is sent as its UTF-8 bytes. */
export type Bytes = string | Uint8Array

export interface ResponseHeader {
  readonly cluster_id: bigint
  readonly member_id: bigint
  readonly revision: bigint
  readonly raft_term: bigint
}

export interface KeyValue {
  readonly key: Buffer
  readonly create_revision: bigint
  readonly mod_revision: bigint
  readonly version: bigint
  readonly value: Buffer
  readonly lease: bigint
}

export interface Event {
  readonly type: "PUT" | "DELETE"
  readonly kv: KeyValue
}

export interface RangeRequest {
  readonly key: Bytes
  readonly range_end?: Bytes
  readonly limit?: number
  readonly revision?: bigint
  readonly sort_order?: "NONE" | "ASCEND" | "DESCEND"
  readonly sort_target?: "KEY" | "VERSION" | "CREATE" | "MOD" | "VALUE"
  readonly serializable?: boolean
  readonly keys_only?: boolean
  readonly count_only?: boolean
}
export interface RangeResponse {
  readonly header: ResponseHeader
  readonly kvs: ReadonlyArray<KeyValue>
  readonly more: boolean
  readonly count: bigint
}
export interface PutRequest {
  readonly key: Bytes
  readonly value: Bytes
  readonly lease?: bigint
}
export interface PutResponse {
  readonly header: ResponseHeader
}
export interface DeleteRangeRequest {
  readonly key: Bytes
  readonly range_end?: Bytes
}
export interface DeleteRangeResponse {
  readonly header: ResponseHeader
  readonly deleted: bigint
}
export type RequestOp =
  | { readonly request_range: RangeRequest }
  | { readonly request_put: PutRequest }
  | { readonly request_delete_range: DeleteRangeRequest }
export interface ResponseOp {
  readonly response_range?: RangeResponse
  readonly response_put?: PutResponse
  readonly response_delete_range?: DeleteRangeResponse
}
export type Compare = {
  readonly key: Bytes
  readonly result: "EQUAL" | "GREATER" | "LESS" | "NOT_EQUAL"
} & (
  | { readonly target: "VALUE"; readonly value: Bytes }
  | { readonly target: "LEASE"; readonly lease: bigint }
  | { readonly target: "VERSION"; readonly version: bigint }
  | { readonly target: "MOD"; readonly mod_revision: bigint }
  | { readonly target: "CREATE"; readonly create_revision: bigint }
)
export interface TxnRequest {
  readonly compare: ReadonlyArray<Compare>
  readonly success: ReadonlyArray<RequestOp>
  readonly failure: ReadonlyArray<RequestOp>
}
export interface TxnResponse {
  readonly header: ResponseHeader
  readonly succeeded: boolean
  readonly responses: ReadonlyArray<ResponseOp>
}

export type WatchRequest =
  | {
      readonly create_request: {
        readonly key: Bytes
        readonly range_end?: Bytes
        readonly start_revision?: bigint
        readonly progress_notify?: boolean
      }
    }
  | { readonly cancel_request: { readonly watch_id: bigint } }
  | { readonly progress_request: Record<string, never> }
export interface WatchResponse {
  readonly header: ResponseHeader
  readonly watch_id: bigint
  readonly created: boolean
  readonly canceled: boolean
  readonly compact_revision: bigint
  readonly cancel_reason: string
  readonly fragment: boolean
  readonly events: ReadonlyArray<Event>
}

export interface LeaseGrantRequest {
  readonly TTL: number
  readonly ID?: bigint
}
export interface LeaseGrantResponse {
  readonly header: ResponseHeader
  readonly ID: bigint
  readonly TTL: bigint
  readonly error: string
}
export interface LeaseRevokeRequest {
  readonly ID: bigint
}
export interface LeaseRevokeResponse {
  readonly header: ResponseHeader
}
export interface LeaseKeepAliveRequest {
  readonly ID: bigint
}
export interface LeaseKeepAliveResponse {
  readonly header: ResponseHeader
  readonly ID: bigint
  readonly TTL: bigint
}
export interface LeaseTimeToLiveRequest {
  readonly ID: bigint
  readonly keys?: boolean
}
export interface LeaseTimeToLiveResponse {
  readonly header: ResponseHeader
  readonly ID: bigint
  readonly TTL: bigint
  readonly grantedTTL: bigint
  readonly keys: ReadonlyArray<Buffer>
}
export interface Member {
  readonly ID: bigint
  readonly name: string
  readonly peerURLs: ReadonlyArray<string>
  readonly clientURLs: ReadonlyArray<string>
  readonly isLearner: boolean
}
export interface MemberListResponse {
  readonly header: ResponseHeader
  readonly members: ReadonlyArray<Member>
}
export interface StatusResponse {
  readonly header: ResponseHeader
  readonly version: string
  readonly dbSize: bigint
  readonly leader: bigint
  readonly raftIndex: bigint
  readonly raftTerm: bigint
  readonly errors: ReadonlyArray<string>
  readonly isLearner: boolean
}
export interface AuthenticateRequest {
  readonly name: string
  readonly password: string
}
export interface AuthenticateResponse {
  readonly header: ResponseHeader
  readonly token: string
}

/** One unary method: its gRPC path and the codecs of its request and response. */
export interface Method<Req, Res> {
  readonly path: string
  readonly request: Codec<Req>
  readonly response: Codec<Res>
}

const method = <Req, Res>(service: string, name: string, request: string, response: string): Method<Req, Res> => ({
  path: `/etcdserverpb.${service}/${name}`,
  request: codec<Req>(request),
  response: codec<Res>(response)
})

/** The methods used, by name. */
export const methods = {
  range: method<RangeRequest, RangeResponse>("KV", "Range", "RangeRequest", "RangeResponse"),
  put: method<PutRequest, PutResponse>("KV", "Put", "PutRequest", "PutResponse"),
  deleteRange: method<DeleteRangeRequest, DeleteRangeResponse>("KV", "DeleteRange", "DeleteRangeRequest", "DeleteRangeResponse"),
  txn: method<TxnRequest, TxnResponse>("KV", "Txn", "TxnRequest", "TxnResponse"),
  watch: method<WatchRequest, WatchResponse>("Watch", "Watch", "WatchRequest", "WatchResponse"),
  leaseGrant: method<LeaseGrantRequest, LeaseGrantResponse>("Lease", "LeaseGrant", "LeaseGrantRequest", "LeaseGrantResponse"),
  leaseRevoke: method<LeaseRevokeRequest, LeaseRevokeResponse>("Lease", "LeaseRevoke", "LeaseRevokeRequest", "LeaseRevokeResponse"),
  leaseKeepAlive: method<LeaseKeepAliveRequest, LeaseKeepAliveResponse>(
    "Lease",
    "LeaseKeepAlive",
    "LeaseKeepAliveRequest",
    "LeaseKeepAliveResponse"
  ),
  leaseTimeToLive: method<LeaseTimeToLiveRequest, LeaseTimeToLiveResponse>(
    "Lease",
    "LeaseTimeToLive",
    "LeaseTimeToLiveRequest",
    "LeaseTimeToLiveResponse"
  ),
  memberList: method<Record<string, never>, MemberListResponse>("Cluster", "MemberList", "MemberListRequest", "MemberListResponse"),
  status: method<Record<string, never>, StatusResponse>("Maintenance", "Status", "StatusRequest", "StatusResponse"),
  authenticate: method<AuthenticateRequest, AuthenticateResponse>("Auth", "Authenticate", "AuthenticateRequest", "AuthenticateResponse")
} as const

/** The key range of every key under `prefix` (etcd's `clientv3.GetPrefixRangeEnd`). */
export const prefixRange = (prefix: string): { readonly key: Buffer; readonly range_end: Buffer } => {
  const key = Buffer.from(prefix, "utf8")
  const end = Buffer.from(key)
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++
      return { key, range_end: end.subarray(0, i + 1) }
    }
  }
  // Every byte is 0xff (or the prefix is empty): to the end of the keyspace.
  return { key, range_end: Buffer.from([0]) }
}
