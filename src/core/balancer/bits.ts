/** The bitset of ring positions the round robin searches. */

/** A set of ring positions with O(log32 n) next-at-or-after search. */
export class Bits {
  /** levels[0] holds one bit per position; levels[l + 1] one bit per word of levels[l]. */
  readonly levels: Array<Uint32Array>
  constructor(readonly size: number) {
    this.levels = []
    let bits = Math.max(size, 1)
    for (;;) {
      const words = (bits + 31) >>> 5
      this.levels.push(new Uint32Array(words))
      if (words === 1) break
      bits = words
    }
  }

  add(i: number, cost: Counter): void {
    for (let l = 0; l < this.levels.length; l++) {
      cost.work++
      const level = this.levels[l]!
      const w = i >>> 5
      const before = level[w]!
      level[w] = before | (1 << (i & 31))
      if (before !== 0) return
      i = w
    }
  }

  delete(i: number, cost: Counter): void {
    for (let l = 0; l < this.levels.length; l++) {
      cost.work++
      const level = this.levels[l]!
      const w = i >>> 5
      const after = level[w]! & ~(1 << (i & 31))
      level[w] = after
      if (after !== 0) return
      i = w
    }
  }

  /** The first member >= i, or -1. */
  next(i: number, l = 0): number {
    const level = this.levels[l]
    if (level === undefined) return -1
    const w = i >>> 5
    if (w >= level.length) return -1
    const m = level[w]! & (-1 << (i & 31))
    if (m !== 0) return (w << 5) + ctz(m)
    const j = this.next(w + 1, l + 1)
    return j < 0 ? -1 : (j << 5) + ctz(level[j]!)
  }
}

export const ctz = (x: number): number => 31 - Math.clz32(x & -x)

export interface Counter {
  work: number
}
