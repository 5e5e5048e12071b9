/**
 * The canonical text of targets, counts and options (see `Target.format`).
 */
import * as Address from "../Address.js"
import type { CountRange, Options, Target } from "../Target.js"

/** See `Target.formatCount`. */
export const formatCount = (range: CountRange): string =>
  range.count === range.maxCount ? `${range.count}` : `${range.count}..${range.maxCount}`

const withCount = (text: string, range: CountRange): string =>
  range.count === 1 && range.maxCount === 1 ? text : `${text}#${formatCount(range)}`

/** See `Target.formatOptions`. */
export const formatOptions = (options: Options): string => {
  const parts: Array<string> = []
  if (options.subset !== undefined) parts.push(`subset=${options.subset}`)
  if (options.pick !== undefined) parts.push(`pick=${options.pick}`)
  return parts.join("&")
}

const withOptions = (text: string, options: Options): string => {
  const query = formatOptions(options)
  return query.length === 0 ? text : `${text}?${query}`
}

/** See `Target.format`. */
export const format = (target: Target): string => {
  switch (target._tag) {
    case "Pass":
      return withOptions(`pass:///${target.endpoints.map((e) => withCount(Address.format(e.address), e)).join(",")}`, target.options)
    case "Etcd":
      return withOptions(withCount(`etcd://${target.etcd.map(Address.format).join(",")}/${target.service}`, target), target.options)
  }
}
