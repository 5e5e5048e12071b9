/**
 * The messages of `TargetError`: what each problem means and what was
 * expected, worded for the person who wrote the target.
 */
import type { TargetProblem } from "../Target.js"
import { MAX_COUNT, MAX_SUBSET, PICK_MODES } from "./limits.js"

const FORMS = `pass:///host:port[#n],... or etcd://[host:port,...]/service[#n]`
const COUNT = `a whole number 1..${MAX_COUNT}`
const RANGE = `1 <= min <= max <= ${MAX_COUNT}`
const OPTIONS = `subset=k (1..${MAX_SUBSET}) and pick=${PICK_MODES.join("|")}, joined by "&"`

/** The explanation of `problem`; `what` names the address it is about. */
export const describe = (problem: TargetProblem, what: string): string => {
  switch (problem) {
    case "EmptyTarget":
      return `the target is empty; expected ${FORMS}`
    case "MissingScheme":
      return `the target has no scheme; expected ${FORMS}`
    case "UnknownScheme":
      return `unknown scheme; the schemes are "pass" (fixed addresses: pass:///host:port[#n],...) and "etcd" (discovery: etcd://[host:port,...]/service[#n]), in lower case`
    case "MissingSlashes":
      return `the scheme must be followed by "//"; expected pass:///host:port[#n],... or etcd://[host:port,...]/service[#n]`
    case "UnexpectedAuthority":
      return `a pass target lists its addresses after three slashes; expected pass:///host:port[#n],..., e.g. pass:///10.0.0.1:9080`
    case "EmptyList":
      return `the target lists no addresses; expected pass:///host:port[#n],..., e.g. pass:///10.0.0.1:9080#2`
    case "EmptyEntry":
      return what === "an etcd endpoint"
        ? `an etcd endpoint is empty (two commas in a row, or a comma at the start or end); expected host:port`
        : `an entry has no address (two commas in a row, a comma at the start or end, or nothing before "#"); expected host:port[#n]`
    case "MissingPort":
      return `${what} has no port; expected host:port, [ipv6]:port or :port, e.g. 10.0.0.1:9080`
    case "InvalidPort":
      return `the port of ${what} is not a whole number; expected digits 1..65535`
    case "PortOutOfRange":
      return `the port of ${what} is outside 1..65535`
    case "UnbalancedBracket":
      return `the IPv6 brackets of ${what} are unbalanced; expected [ipv6]:port, e.g. [::1]:9080`
    case "UnbracketedIPv6":
      return `${what} looks like an IPv6 address without brackets; write it as [ipv6]:port, e.g. [::1]:9080`
    case "InvalidHost":
      return `the host of ${what} is not a valid hostname, IPv4 or IPv6 address`
    case "MissingCount":
      return `"#" is not followed by a count; expected ${COUNT} after "#", or no "#" for 1`
    case "InvalidCount":
      return `the count is not a number; expected ${COUNT}`
    case "NegativeCount":
      return `the count is negative; expected ${COUNT}`
    case "FractionalCount":
      return `the count has a decimal point; expected ${COUNT}, written without one`
    case "ZeroCount":
      return `the count is 0; expected ${COUNT} (remove the entry to open no connections)`
    case "CountTooLarge":
      return `the count is over the maximum of ${MAX_COUNT}; expected ${COUNT}`
    case "MergedCountTooLarge":
      return `this address is listed more than once and its counts add up to more than ${MAX_COUNT}; list it once with a count of at most ${MAX_COUNT}`
    case "IncompleteRange":
      return `a count range needs both ends; expected #min..max with ${RANGE}, e.g. #2..8`
    case "InvalidRange":
      return `a count range is written with two dots between two counts; expected #min..max with ${RANGE}, e.g. #2..8`
    case "ReversedRange":
      return `the count range starts above its end; expected #min..max with min <= max (${RANGE}), e.g. #2..8`
    case "MissingService":
      return `the etcd target has no "/" before the service; expected etcd://[host:port,...]/service, e.g. etcd:///my-service (three slashes when no etcd endpoints are listed)`
    case "EmptyService":
      return `the etcd service is empty; expected a key prefix after the "/", e.g. etcd:///my-service`
    case "InvalidService":
      return `the etcd service may not contain whitespace, control or invisible formatting characters, "," or unpaired surrogates`
    case "EmptyOptions":
      return `"?" is not followed by options; expected ${OPTIONS} after "?", or no "?"`
    case "EmptyOption":
      return `an option is empty (two "&" in a row, or "&" at the start or end); expected ${OPTIONS}`
    case "MissingOptionValue":
      return `the option has no value; expected ${OPTIONS}`
    case "UnknownOption":
      return `unknown option; the options are ${OPTIONS} (in lower case; the client id of subsetting is set on the channel, not in the target)`
    case "RepeatedOption":
      return `the option is given more than once; give each option at most once`
    case "InvalidSubset":
      return `the subset option is not a subset size; expected subset=k with k a whole number 1..${MAX_SUBSET}`
    case "InvalidPick":
      return `unknown pick mode; expected pick=${PICK_MODES.join(" or pick=")}`
    case "MisplacedCount":
      return `the count goes before the options; expected ...#n?options, e.g. etcd:///my-service#2?subset=20`
  }
}

/** The problems about an address (a backend or an etcd endpoint), whose message names which one. */
export const ADDRESS_PROBLEMS: ReadonlySet<TargetProblem> = new Set<TargetProblem>([
  "EmptyEntry",
  "MissingPort",
  "InvalidPort",
  "PortOutOfRange",
  "UnbalancedBracket",
  "UnbracketedIPv6",
  "InvalidHost"
])

/** Quotes a piece of text for a message: escapes control characters, shortens long text. */
export const quote = (text: string, max: number): string =>
  JSON.stringify(text.length > max ? `${text.slice(0, max - 1)}…` : text)
