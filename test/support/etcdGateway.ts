/**
 * etcd's JSON gateway (`POST /v3/...` on a member's client port, plain HTTP),
 * for what the test harness must learn from one given member without
 * depending on the etcd client under test, nor spawning etcdctl at every
 * poll: a member's status, the keys under a prefix, and a watch that stamps
 * each event with the time it arrived. Every request is bounded; the gateway
 * writes 64-bit integers as strings, so ids keep their precision.
 *
 * @example
 * ```ts
 * const status = await memberStatus(2379) // { memberId: "1366...", leader: "1366...", raftTerm: 2 } or undefined
 * const keys = await rangeKeys(2379, "svc/") // ["svc/127.0.0.1:5000", ...] or undefined
 * const watch = await watchPrefix(2379, "svc/", (event) => console.log(event.type, event.key, event.at))
 * watch.close()
 * ```
 */
import * as http from "node:http"

const REQUEST_TIMEOUT_MS = 1_000
const WATCH_START_TIMEOUT_MS = 5_000

const b64 = (text: string): string => Buffer.from(text, "utf8").toString("base64")
const unb64 = (text: string): string => Buffer.from(text, "base64").toString("utf8")

/** The key just past every key starting with `prefix` (etcd's `--prefix`). */
const prefixEnd = (prefix: string): string => {
  const bytes = Buffer.from(prefix, "utf8")
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = bytes.subarray(0, i + 1)
      end[i] = end[i]! + 1
      return end.toString("base64")
    }
  }
  return Buffer.from([0]).toString("base64")
}

/** POSTs `body` to `path` on 127.0.0.1:port; the parsed answer, or undefined on any error, non-200 or timeout. */
const post = (port: number, path: string, body: unknown, timeoutMs = REQUEST_TIMEOUT_MS): Promise<unknown> =>
  new Promise((resolve) => {
    const request = http.request(
      { host: "127.0.0.1", port, path, method: "POST", agent: false, timeout: timeoutMs, headers: { "content-type": "application/json" } },
      (response) => {
        let text = ""
        response.setEncoding("utf8")
        response.on("data", (chunk: string) => (text += chunk))
        response.on("end", () => {
          clearTimeout(timer)
          if (response.statusCode !== 200) return resolve(undefined)
          try {
            resolve(JSON.parse(text))
          } catch {
            resolve(undefined)
          }
        })
        response.on("error", () => resolve(undefined))
      }
    )
    // `timeout` is an idle timeout; this bounds the whole exchange.
    const timer = setTimeout(() => request.destroy(), timeoutMs)
    request.on("timeout", () => request.destroy())
    request.on("error", () => {
      clearTimeout(timer)
      resolve(undefined)
    })
    request.end(JSON.stringify(body))
  })

/** What one member says of itself (`Maintenance.Status`). */
export interface MemberStatus {
  /** Its own member id (decimal string). */
  readonly memberId: string
  /** The leader it follows (decimal string; `"0"` when it has none). */
  readonly leader: string
  readonly raftTerm: number
}

/** The status of the member on `clientPort`, or undefined when it does not answer within a second. */
export const memberStatus = async (clientPort: number): Promise<MemberStatus | undefined> => {
  const answer = (await post(clientPort, "/v3/maintenance/status", {})) as
    | { header?: { member_id?: string }; leader?: string; raftTerm?: string }
    | undefined
  const memberId = answer?.header?.member_id
  if (memberId === undefined) return undefined
  return { memberId, leader: answer?.leader ?? "0", raftTerm: Number(answer?.raftTerm ?? 0) }
}

/**
 * The keys under `prefix`, read (linearizably) from the member on
 * `clientPort`; undefined when it does not answer within `timeoutMs`.
 */
export const rangeKeys = async (clientPort: number, prefix: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<ReadonlyArray<string> | undefined> => {
  const answer = (await post(clientPort, "/v3/kv/range", { key: b64(prefix), range_end: prefixEnd(prefix), keys_only: true }, timeoutMs)) as
    | { header?: unknown; kvs?: Array<{ key: string }> }
    | undefined
  if (answer?.header === undefined) return undefined
  return (answer.kvs ?? []).map((kv) => unb64(kv.key))
}

/** One event of a {@link watchPrefix} watch. */
export interface WatchEvent {
  readonly type: "PUT" | "DELETE"
  readonly key: string
  readonly revision: number
  /** `performance.now()` when it arrived. */
  readonly at: number
}

/** A running watch. */
export interface GatewayWatch {
  /** Why the stream ended, if it did before {@link close}. */
  readonly broken: () => string | undefined
  readonly close: () => void
}

/**
 * Watches the keys under `prefix` on the member on `clientPort` (from now
 * on), calling `onEvent` for each event as it arrives. Resolves once etcd
 * confirmed the watch; rejects when it does not within 5 s.
 */
export const watchPrefix = (clientPort: number, prefix: string, onEvent: (event: WatchEvent) => void): Promise<GatewayWatch> =>
  new Promise((resolve, reject) => {
    let broken: string | undefined
    let closed = false
    let created = false
    const request = http.request({
      host: "127.0.0.1",
      port: clientPort,
      path: "/v3/watch",
      method: "POST",
      agent: false,
      headers: { "content-type": "application/json" }
    })
    const fail = (why: string) => {
      clearTimeout(startTimer)
      if (closed) return
      broken ??= why
      if (!created) {
        closed = true
        request.destroy()
        reject(new Error(`watch on 127.0.0.1:${clientPort}: ${why}`))
      }
    }
    const startTimer = setTimeout(() => fail(`not created within ${WATCH_START_TIMEOUT_MS} ms`), WATCH_START_TIMEOUT_MS)
    const watch: GatewayWatch = {
      broken: () => broken,
      close: () => {
        closed = true
        clearTimeout(startTimer)
        request.destroy()
      }
    }
    request.on("error", (error) => fail(String(error)))
    request.on("response", (response) => {
      if (response.statusCode !== 200) return fail(`HTTP ${response.statusCode}`)
      let buffered = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => {
        const at = performance.now()
        buffered += chunk
        for (let newline = buffered.indexOf("\n"); newline >= 0; newline = buffered.indexOf("\n")) {
          const line = buffered.slice(0, newline).trim()
          buffered = buffered.slice(newline + 1)
          if (line === "") continue
          const message = JSON.parse(line) as {
            result?: {
              created?: boolean
              canceled?: boolean
              cancel_reason?: string
              events?: Array<{ type?: string; kv?: { key?: string; mod_revision?: string } }>
            }
            error?: unknown
          }
          if (message.result === undefined) return fail(`error: ${JSON.stringify(message.error ?? message)}`)
          if (message.result.canceled === true) return fail(`canceled: ${message.result.cancel_reason ?? ""}`)
          if (message.result.created === true && !created) {
            created = true
            clearTimeout(startTimer)
            resolve(watch)
          }
          for (const event of message.result.events ?? []) {
            onEvent({
              // proto3 JSON leaves out the default (PUT = 0).
              type: event.type === "DELETE" ? "DELETE" : "PUT",
              key: unb64(event.kv?.key ?? ""),
              revision: Number(event.kv?.mod_revision ?? 0),
              at
            })
          }
        }
      })
      response.on("error", (error) => fail(String(error)))
      response.on("close", () => fail("stream ended"))
    })
    request.end(JSON.stringify({ create_request: { key: b64(prefix), range_end: prefixEnd(prefix) } }))
  })
