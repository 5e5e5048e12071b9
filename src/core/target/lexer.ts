/**
 * The characters of a target: the scheme prefixes, the code units the
 * parser splits on, the digit patterns of counts and subset sizes, and which
 * characters a service may contain.
 */

export const PASS_PREFIX = "pass://"
export const ETCD_PREFIX = "etcd://"
export const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*$/
export const DIGITS = /^[0-9]+$/
export const DECIMAL = /^(?:[0-9]+\.[0-9]*|\.[0-9]+)$/

export const SLASH = 0x2f
export const COMMA = 0x2c
export const HASH = 0x23
export const AMPERSAND = 0x26
export const ZERO = 0x30

/**
 * Whether a UTF-16 code unit (not a surrogate) may appear in a service.
 * etcd keys are arbitrary bytes, but a service is typed into configuration
 * and logged: characters a person cannot see or that would be trimmed are
 * rejected rather than sent to etcd as a prefix that never matches. ("?"
 * ends the service: the target's options follow it.)
 */
export const serviceChar = (c: number): boolean =>
  !(
    c <= 0x20 || // C0 controls and space
    c === COMMA ||
    (c >= 0x7f && c <= 0xa0) || // DEL, C1 controls, no-break space
    c === 0xad || // soft hyphen
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200f) || // spaces, zero-width characters, direction marks
    (c >= 0x2028 && c <= 0x202f) || // line/paragraph separators, embedding controls, narrow no-break space
    (c >= 0x205f && c <= 0x206f) || // medium mathematical space, invisible operators, deprecated format controls
    c === 0x3000 ||
    c === 0xfeff || // byte-order mark
    (c >= 0xdc00 && c <= 0xdfff) // a low surrogate without its high surrogate
  )
