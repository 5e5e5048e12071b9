/** The ring: slots in pick order, rebuilt on each list or count change. */
import * as Rotation from "../Rotation.js"
import type { Wanted } from "./admission.js"
import { Bits } from "./bits.js"
import { forget, listAdd } from "./slots.js"
import { AddressState, type BalancerImpl, mod, type Out, Slot } from "./state.js"

/** Builds the ring for `weighted` (merged, counts > 0), diffing slots by key. O(n log n). */
export const rebuildRing = (b: BalancerImpl, weighted: ReadonlyArray<Wanted>, out: Out, offset: number): void => {
  const order = Rotation.slotOrder(weighted)
  const oldRing = b.ring
  const current = oldRing[b.cursor]
  const wanted = new Map<string, number>()
  for (const w of weighted) wanted.set(w.address, w.count)

  // Release removed slots and addresses.
  for (const [name, address] of b.addresses) {
    const count = wanted.get(name) ?? 0
    while (address.slots.length > count) {
      const slot = address.slots.pop()!
      forget(b, slot)
      out.pushRemove(slot.id)
      if (out.tracing) out.log(() => `release ${slot.key}`)
    }
    if (count === 0) b.addresses.delete(name)
    else address.count = count
  }
  const ring: Array<Slot> = new Array(order.length)
  const startPhase = !b.serving
  for (let p = 0; p < order.length; p++) {
    const key = order[p]!
    let address = b.addresses.get(key.address)
    if (address === undefined) {
      address = new AddressState(key.address, wanted.get(key.address)!)
      b.addresses.set(key.address, address)
    }
    let slot = address.slots[key.index]
    if (slot === undefined) {
      // Slots of an address are created in index order (the order lists each address's indices ascending).
      slot = new Slot(b.freeIds.pop() ?? b.byId.length, address, key.index, `${key.address}#${key.index}`)
      address.slots[key.index] = slot
      b.byId[slot.id] = slot
      b.nConnecting++
      if (startPhase) {
        slot.inStart = true
        b.unsettled++
      }
      out.pushCreate({ id: slot.id, address: key.address, index: key.index })
      out.pushConnect(slot.id)
      if (out.tracing) out.log(() => `create ${slot!.key}`)
    }
    slot.pos = p
    ring[p] = slot
  }
  for (const w of weighted) {
    const address = b.addresses.get(w.address)!
    address.min = w.min
    address.max = w.max
  }
  b.ring = ring
  b.total = ring.length
  b.connectedBits = new Bits(ring.length)
  b.pickableBits = new Bits(ring.length)
  let pickable = 0
  let connected = 0
  b.pickableList = []
  b.connectedList = []
  for (const slot of ring) {
    slot.cIdx = -1
    slot.pIdx = -1
    if (slot.connected) {
      connected++
      b.connectedBits.add(slot.pos, b)
      slot.cIdx = listAdd(b.connectedList, slot, -1)
    }
    if (slot.pickable) {
      pickable++
      b.pickableBits.add(slot.pos, b)
      slot.pIdx = listAdd(b.pickableList, slot, -1)
    }
  }
  b.nConnected = connected
  b.nPickable = pickable
  // The round robin continues at the slot it would have tried next.
  if (oldRing.length === 0) {
    b.cursor = ring.length === 0 ? 0 : mod(offset, ring.length)
  } else if (current !== undefined && b.byId[current.id] === current) {
    b.cursor = current.pos
  } else {
    b.cursor = ring.length === 0 ? 0 : b.cursor % ring.length
  }
}
