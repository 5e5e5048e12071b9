/** Slot bookkeeping: a slot's derived flags, the counters, bitsets and dense lists (O(log32 n) per call). */
import { startEstimate } from "./ewma.js"
import { resetConnection, scheduleProbe } from "./hung.js"
import { answered } from "./replacement.js"
import { type BalancerImpl, Eff, type Slot } from "./state.js"

/** Recomputes a slot's derived flags from its raw state and moves the counters and bitsets. */
export const refresh = (b: BalancerImpl, slot: Slot): void => {
  const listed = slot.newer !== undefined || b.newest === slot
  if (slot.raw === "READY" && !listed) {
    // Its connection became READY now: the newest (raw READY, so a health flap keeps its age).
    slot.readyAt = b.now
    slot.openedAt = slot.attemptAt === Number.NEGATIVE_INFINITY ? b.now : slot.attemptAt
    slot.attemptAt = Number.NEGATIVE_INFINITY
    slot.older = b.newest
    if (b.newest !== undefined) b.newest.newer = slot
    b.newest = slot
    resetConnection(b, slot)
    startEstimate(b, slot, b.now)
  } else if (slot.raw !== "READY" && listed) unlinkReady(b, slot)
  const connected = slot.raw === "READY" && slot.healthy
  let eff: Eff
  if (connected) {
    slot.sticky = false
    eff = Eff.Ready
  } else if (slot.raw === "IDLE" || slot.raw === "CONNECTING") {
    eff = slot.sticky ? Eff.Failed : Eff.Connecting
  } else {
    slot.sticky = true
    eff = Eff.Failed
  }
  if (!slot.settled && eff !== Eff.Connecting) {
    slot.settled = true
    if (slot.inStart) {
      slot.inStart = false
      b.unsettled--
    }
  }
  if (slot.eff !== eff) {
    if (slot.eff === Eff.Connecting) b.nConnecting--
    if (eff === Eff.Connecting) b.nConnecting++
    slot.eff = eff
  }
  if (slot.connected !== connected) {
    slot.connected = connected
    if (connected) {
      b.nConnected++
      slot.address.connected++
      b.connectedBits.add(slot.pos, b)
      slot.cIdx = listAdd(b.connectedList, slot, slot.cIdx)
      // Hung and healthy again (its probe came due while it was ejected and was dropped): a new one.
      if (slot.hung) scheduleProbe(b, slot, b.now)
    } else {
      b.nConnected--
      slot.address.connected--
      b.connectedBits.delete(slot.pos, b)
      slot.cIdx = listDelete(b.connectedList, slot.cIdx, "c")
    }
  }
  const pickable = connected && !slot.suspect && !slot.hung
  if (slot.pickable !== pickable) {
    slot.pickable = pickable
    if (pickable) {
      b.nPickable++
      b.pickableBits.add(slot.pos, b)
      slot.pIdx = listAdd(b.pickableList, slot, slot.pIdx)
    } else {
      b.nPickable--
      b.pickableBits.delete(slot.pos, b)
      slot.pIdx = listDelete(b.pickableList, slot.pIdx, "p")
    }
  }
}

/** Takes a slot out of the pool's READY list (O(1)). */
export const unlinkReady = (b: BalancerImpl, slot: Slot): void => {
  if (slot.newer !== undefined) slot.newer.older = slot.older
  else b.newest = slot.older
  if (slot.older !== undefined) slot.older.newer = slot.newer
  slot.older = undefined
  slot.newer = undefined
}

/** Appends `slot` to a dense list (O(1)); returns its index. */
export const listAdd = (list: Array<Slot>, slot: Slot, at: number): number => {
  if (at >= 0) return at
  list.push(slot)
  return list.length - 1
}

/** Removes index `at` from a dense list by moving the last slot there (O(1)); returns -1. */
export const listDelete = (list: Array<Slot>, at: number, which: "p" | "c"): number => {
  if (at < 0) return -1
  const last = list.pop()!
  if (at < list.length) {
    list[at] = last
    if (which === "p") last.pIdx = at
    else last.cIdx = at
  }
  return -1
}

/** Takes a slot out of every counter (before it is removed). */
export const forget = (b: BalancerImpl, slot: Slot): void => {
  if (slot.eff === Eff.Connecting) b.nConnecting--
  if (slot.connected) {
    b.nConnected--
    slot.address.connected--
  }
  if (slot.pickable) b.nPickable--
  if (slot.inStart) b.unsettled--
  if (slot.hung) b.nHung--
  if (b.probing === slot) b.probing = undefined
  slot.cIdx = listDelete(b.connectedList, slot.cIdx, "c")
  slot.pIdx = listDelete(b.pickableList, slot.pIdx, "p")
  if (slot.newer !== undefined || b.newest === slot) unlinkReady(b, slot)
  if (slot.awaitedIn === b.window) answered(b, slot)
  // The slot's calls leave the address's counts with it.
  const limit = b.options.maxStreamsPerConnection
  const address = slot.address
  address.area += address.inFlight * Math.max(0, b.now - address.areaAt)
  address.areaAt = Math.max(address.areaAt, b.now)
  address.inFlight -= slot.inFlight
  if (slot.inFlight >= limit) address.full--
  if (slot.inFlight > limit) address.over--
  slot.inFlight = 0
  b.byId[slot.id] = undefined
  b.freeIds.push(slot.id)
}
