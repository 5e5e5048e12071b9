/**
 * Discovery's listing of a service: every record under its prefix, paged,
 * and a stored key-value as the put event it stands for. Internal.
 */
import * as Effect from "effect/Effect"
import { type Etcd, type KeyValue, prefixRange } from "../../Etcd.js"

/** A stored key-value as a put event, with its mod revision. */
export const putOf = (kv: KeyValue) => ({
  event: { _tag: "Put" as const, key: kv.key.toString("utf8"), value: kv.value.toString("utf8") },
  modRevision: kv.mod_revision.toString()
})

/**
 * All records under `prefix`, paged (`pageSize` per page), every page at the
 * first page's revision; each page is one call, with its own call timeout.
 */
export const list = (etcd: Etcd.Shape, prefix: string, pageSize: number) =>
  Effect.gen(function* () {
    const range = prefixRange(prefix)
    const kvs: Array<KeyValue> = []
    let revision: bigint | undefined
    let start: Buffer = range.key
    for (;;) {
      const response = yield* etcd.range(`list ${prefix}`, {
        key: start,
        range_end: range.range_end,
        sort_order: "ASCEND",
        sort_target: "KEY",
        limit: pageSize,
        ...(revision === undefined ? {} : { revision })
      })
      revision ??= response.header.revision
      kvs.push(...response.kvs)
      const last = response.kvs[response.kvs.length - 1]
      if (!response.more || last === undefined) return { revision, kvs }
      start = Buffer.concat([last.key, Buffer.from([0])])
    }
  })

