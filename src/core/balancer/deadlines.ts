/** The pending deadlines (one FIFO queue per kind) and the next wake-up. */
import type { AddressState, BalancerImpl } from "./state.js"

export interface Deadline {
  readonly at: number
  readonly kind: "suspicion" | "retention" | "start" | "shrink" | "redirect" | "settled"
  readonly address: AddressState | undefined
  readonly gen: number
  /** Push order: breaks ties between kinds as one sorted queue would. */
  readonly seq: number
}

/**
 * The pending deadlines of one kind. Each kind uses a fixed delay (the
 * options never change) and time never goes back (a start deadline is
 * pushed once), so pushes arrive in time order: appending keeps it sorted.
 */
export class DeadlineQueue {
  items: Array<Deadline> = []
  /** First entry not yet taken. */
  head = 0
}

export const KIND_QUEUE = { start: 0, suspicion: 1, retention: 2, shrink: 3, redirect: 4, settled: 5 } as const

export const pushDeadline = (b: BalancerImpl, deadline: Omit<Deadline, "seq">): void => {
  // One FIFO queue per kind, each in time order (see DeadlineQueue): a push
  // is an append, whatever the number of other deadlines pending.
  b.work++
  b.deadlines[KIND_QUEUE[deadline.kind]]!.items.push({ ...deadline, seq: b.deadlineSeq++ })
}

/**
 * The queue whose head is due first (ties: the earlier push), dropping stale
 * heads on the way (each entry is dropped once: amortized O(1) per push).
 */
export const earliest = (b: BalancerImpl): DeadlineQueue | undefined => {
  let best: DeadlineQueue | undefined
  for (const queue of b.deadlines) {
    while (queue.head < queue.items.length && stale(b, queue.items[queue.head]!)) {
      b.work++
      queue.head++
    }
    if (queue.head === queue.items.length) continue
    const d = queue.items[queue.head]!
    if (best === undefined) best = queue
    else {
      const e = best.items[best.head]!
      if (d.at < e.at || (d.at === e.at && d.seq < e.seq)) best = queue
    }
  }
  return best
}

export const nextWake = (b: BalancerImpl): number | undefined => {
  const queue = earliest(b)
  compact(b)
  return queue === undefined ? undefined : queue.items[queue.head]!.at
}

export const stale = (b: BalancerImpl, d: Deadline): boolean => {
  switch (d.kind) {
    case "start":
      return b.serving
    case "suspicion":
      return d.address!.suspicionGen !== d.gen || b.addresses.get(d.address!.address) !== d.address
    case "retention":
      return d.address!.retainedUntil !== d.at || b.addresses.get(d.address!.address) !== d.address
    case "shrink":
      return d.address!.shrinkAt !== d.at || b.addresses.get(d.address!.address) !== d.address
    case "redirect":
    case "settled":
      return d.gen !== b.redirectGen
  }
}

export const compact = (b: BalancerImpl): void => {
  for (const queue of b.deadlines) {
    if (queue.head > 64 && queue.head * 2 > queue.items.length) {
      queue.items = queue.items.slice(queue.head)
      queue.head = 0
    }
  }
}
