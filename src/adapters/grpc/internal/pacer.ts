/**
 * The policy's pacing of grpc-js work over event-loop turns: the slots the
 * core asked to open and the connections it asked to start, at most
 * `perTurn` a turn. Internal.
 */
import type * as Balancer from "../../../core/Balancer.js"

/** A FIFO queue: O(1) push and shift, compacted as it drains. */
class Queue<A> {
  private items: Array<A> = []
  private head = 0
  get size(): number {
    return this.items.length - this.head
  }
  push(item: A): void {
    this.items.push(item)
  }
  shift(): A {
    const item = this.items[this.head++]!
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }
  clear(): void {
    this.items = []
    this.head = 0
  }
}

/**
 * Opens queued slots, then starts queued connections, within each turn's
 * budget; the rest waits for the next turn (`setImmediate`). Slot ids are
 * reused by the core: a queued id that was cancelled, or re-queued as
 * another slot, is skipped.
 */
export class Pacer {
  private readonly toCreate = new Queue<Balancer.NewSlot>()
  /** The slot each id still waits to open as. */
  private readonly pendingCreate: Array<Balancer.NewSlot | undefined> = []
  private readonly toConnect = new Queue<number>()
  private readonly pendingConnect: Array<boolean> = []
  private budget: number
  private draining = false
  private closed = false
  private turn: ReturnType<typeof setImmediate> | undefined

  constructor(
    private readonly perTurn: number,
    /** Opens one slot's subchannel. */
    private readonly open: (slot: Balancer.NewSlot) => void,
    /** Starts one slot's connection if it is IDLE; whether it did (it then counts against the budget). */
    private readonly connect: (id: number) => boolean
  ) {
    this.budget = perTurn
  }

  create(slot: Balancer.NewSlot): void {
    this.pendingCreate[slot.id] = slot
    this.toCreate.push(slot)
  }

  connectSoon(id: number): void {
    if (this.pendingConnect[id] === true) return
    this.pendingConnect[id] = true
    this.toConnect.push(id)
  }

  /** Forgets what is queued for a slot the core removed. */
  cancel(id: number): void {
    this.pendingCreate[id] = undefined
    this.pendingConnect[id] = false
  }

  /** A slot not yet open is never picked: only a connection's READY makes it pickable. */
  drain(): void {
    if (this.draining || this.closed) return
    this.draining = true
    try {
      while (this.budget > 0 && this.toCreate.size > 0 && !this.closed) {
        const slot = this.toCreate.shift()
        if (this.pendingCreate[slot.id] !== slot) continue
        this.pendingCreate[slot.id] = undefined
        this.budget--
        this.open(slot)
      }
      while (this.budget > 0 && this.toCreate.size === 0 && this.toConnect.size > 0 && !this.closed) {
        const id = this.toConnect.shift()
        if (this.pendingConnect[id] !== true) continue
        this.pendingConnect[id] = false
        if (this.connect(id)) this.budget--
      }
    } finally {
      this.draining = false
    }
    if (this.budget < this.perTurn && this.turn === undefined && !this.closed) {
      this.turn = setImmediate(() => {
        this.turn = undefined
        this.budget = this.perTurn
        this.drain()
      })
    }
  }

  close(): void {
    this.closed = true
    this.toCreate.clear()
    this.toConnect.clear()
    this.pendingCreate.length = 0
    this.pendingConnect.length = 0
    if (this.turn !== undefined) clearImmediate(this.turn)
    this.turn = undefined
  }
}
