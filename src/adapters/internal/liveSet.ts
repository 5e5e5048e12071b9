/**
 * A process-wide set of live sources that metrics read at collection time
 * (policies, service watches, registrations): each adds itself when it
 * starts and removes itself when it stops. Internal.
 */
export interface LiveSet<A> {
  readonly track: (source: A) => void
  readonly untrack: (source: A) => void
  /** The live sources now (a copy). */
  readonly all: () => ReadonlyArray<A>
}

export const make = <A>(): LiveSet<A> => {
  const live = new Set<A>()
  return {
    track: (source) => void live.add(source),
    untrack: (source) => void live.delete(source),
    all: () => [...live]
  }
}
