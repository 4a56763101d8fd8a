/**
 * Lock-less singly linked lists of slots in shared memory.
 *
 * Kernel counterpart: `include/linux/llist.h`. `llistAdd` is lock-free and may run in any number of
 * threads at once; `llistDelFirst` is lock-free against adders but its callers must exclude one
 * another (they hold the list's lock), which rules out ABA; `llistDelAll` takes the whole list with
 * one exchange. A list head and each link hold `slot + 1`, 0 ending the list. Every word is
 * touched only through `Atomics`.
 *
 * @module
 */

/** Push `slot` (llist_add). `linkIndex` is the Int32 index of the slot's link word. */
export function llistAdd(i32: Int32Array, head: number, linkIndex: number, slot: number): void {
  for (;;) {
    const first = Atomics.load(i32, head);
    Atomics.store(i32, linkIndex, first);
    if (Atomics.compareExchange(i32, head, first, slot + 1) === first) return;
  }
}

/**
 * Pop the first slot (llist_del_first), or -1 for an empty list. `linkOf(slot)` is the index of a
 * slot's link word. Context: the caller holds the lock that serialises deleters.
 */
export function llistDelFirst(
  i32: Int32Array,
  head: number,
  linkOf: (slot: number) => number,
): number {
  for (;;) {
    const first = Atomics.load(i32, head);
    if (first === 0) return -1;
    const next = Atomics.load(i32, linkOf(first - 1));
    if (Atomics.compareExchange(i32, head, first, next) === first) return first - 1;
  }
}

/** Take the whole list (llist_del_all): slot + 1 of its first element, or 0. */
export function llistDelAll(i32: Int32Array, head: number): number {
  return Atomics.exchange(i32, head, 0);
}
