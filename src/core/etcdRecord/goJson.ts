/**
 * Encoding byte-exact with Go's `encoding/json`: string literals as
 * `json.Marshal` writes them, map keys in Go's order, and any JSON data as Go
 * writes a value decoded into `interface{}` (see `EtcdRecord.encode`).
 */

const HEX = "0123456789abcdef"

/**
 * A JSON string literal as Go's `json.Marshal` writes it (Go 1.22 and later):
 * `"` and `\` escaped, `\b \f \n \r \t` short escapes, other control
 * characters as `\u00XX`, and the HTML-sensitive `< > &` and the line
 * separators U+2028/U+2029 as `\uXXXX`. A lone UTF-16 surrogate (which Go
 * could only have seen as invalid UTF-8) becomes `\ufffd`, as Go writes it.
 */
export const goQuote = (text: string): string => {
  let out = '"'
  let start = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    let escape: string | undefined
    if (c < 0x20) {
      switch (c) {
        case 0x08:
          escape = "\\b"
          break
        case 0x0c:
          escape = "\\f"
          break
        case 0x0a:
          escape = "\\n"
          break
        case 0x0d:
          escape = "\\r"
          break
        case 0x09:
          escape = "\\t"
          break
        default:
          escape = `\\u00${HEX[c >> 4]}${HEX[c & 0xf]}`
      }
    } else if (c === 0x22) {
      escape = '\\"'
    } else if (c === 0x5c) {
      escape = "\\\\"
    } else if (c === 0x3c) {
      escape = "\\u003c"
    } else if (c === 0x3e) {
      escape = "\\u003e"
    } else if (c === 0x26) {
      escape = "\\u0026"
    } else if (c === 0x2028) {
      escape = "\\u2028"
    } else if (c === 0x2029) {
      escape = "\\u2029"
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const next = text.charCodeAt(i + 1)
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        i++ // a well-formed pair: literal
        continue
      }
      escape = "\\ufffd"
    }
    if (escape !== undefined) {
      out += text.slice(start, i) + escape
      start = i + 1
    }
  }
  return out + text.slice(start) + '"'
}
/** See `EtcdRecord.compareCodePoints`. */
export const compareCodePoints = (a: string, b: string): number => {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!
    const y = b.codePointAt(i)!
    if (x !== y) return x < y ? -1 : 1
    if (x > 0xffff) i++
  }
  return a.length - b.length
}
/**
 * Go's encoding of a value decoded into `interface{}`: objects are maps, so
 * their keys come out sorted; numbers are float64, whose shortest text matches
 * JavaScript's (same exponent thresholds, `-0` stays `-0`). What JSON cannot
 * hold is written as `JSON.stringify` writes it (NaN and Infinity as null,
 * undefined fields left out); a bigint is written as its digits, as Go writes
 * an int64. A cycle throws a TypeError, as `JSON.stringify` does.
 */
export const goJson = (value: unknown, seen: Set<object>): string | undefined => {
  switch (typeof value) {
    case "string":
      return goQuote(value)
    case "number":
      return Number.isFinite(value) ? (Object.is(value, -0) ? "-0" : JSON.stringify(value)) : "null"
    case "boolean":
      return value ? "true" : "false"
    case "bigint":
      return value.toString()
    case "undefined":
    case "function":
    case "symbol":
      return undefined
  }
  if (value === null) return "null"
  const obj = value as { toJSON?: unknown }
  if (typeof obj.toJSON === "function") {
    return goJson((obj.toJSON as (key: string) => unknown)(""), seen)
  }
  if (seen.has(obj)) throw new TypeError("EtcdRecord.encode: metadata contains a cycle")
  seen.add(obj)
  try {
    if (Array.isArray(value)) {
      return `[${value.map((item) => goJson(item, seen) ?? "null").join(",")}]`
    }
    const record = value as { readonly [key: string]: unknown }
    const parts: Array<string> = []
    for (const key of Object.keys(record).sort(compareCodePoints)) {
      const encoded = goJson(record[key], seen)
      if (encoded !== undefined) parts.push(`${goQuote(key)}:${encoded}`)
    }
    return `{${parts.join(",")}}`
  } finally {
    seen.delete(obj)
  }
}
