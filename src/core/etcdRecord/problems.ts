/**
 * What a bad record's error says: the explanation of each problem, and the
 * pieces of the detail that names what exactly was wrong without quoting
 * megabytes.
 */
import type { RecordProblem } from "../EtcdRecord.js"
import * as Target from "../Target.js"

/** The explanation of each problem (`EtcdRecordError.reason`). */
export const describe: { readonly [P in RecordProblem]: string } = {
  InvalidJson: "the value is not JSON",
  NotAnObject: 'the value is not a JSON object like {"Op":0,"Addr":"host:port","Metadata":null}',
  InvalidOp: "Op is not 0 (Add)",
  DeleteOp: "Op is 1 (Delete): the writer marked this endpoint as removed",
  MissingAddr: "Addr is missing or not a string",
  InvalidAddr: "Addr is not a valid host:port address",
  OverCap: "the service already has the maximum number of endpoints; this record is ignored",
  InvalidConnections: `Metadata["${"grpc_anchor.connections"}"] is not a connection count (a whole number 1..${Target.MAX_COUNT} or "min..max"); the endpoint is used with the target's count`
}

const MAX_SHOWN = 120

/** Shortens text that goes into a message (keys and values can be megabytes). */
export const shorten = (text: string): string =>
  text.length <= MAX_SHOWN ? text : `${text.slice(0, MAX_SHOWN)}… (${text.length} characters)`
export const kindOf = (json: unknown): string =>
  json === null ? "null" : Array.isArray(json) ? "an array" : typeof json === "object" ? "an object" : `a ${typeof json}`
/** The explanation of a bad count without the input repeated (the detail quotes it). */
export const describeCount = (error: Target.TargetError): string => {
  const message = error.message
  const cut = message.lastIndexOf(": ")
  return cut === -1 ? message : message.slice(0, cut)
}
