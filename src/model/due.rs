//! [`DueQueue`]: what comes due in virtual time, taken earliest first.
//!
//! Virtual time never goes backwards, and what is scheduled mostly comes in runs already in
//! time order: one execution's invokes return 10 ms apart, executions of one fixed duration
//! end in the order they started. The queue keeps each such run as a list, and a small heap
//! of the runs' first items, so that taking the next item costs a heap step over the runs (a
//! few hundred) instead of over every item (a million), and the items never move once
//! stored. They live in one slab whose slots are reused as soon as they are taken: memory
//! follows the most items scheduled at once, with no copying as runs grow. Scheduling out of
//! order only starts another run; the order taken is the one a heap of every item would
//! give: by due time, then by the order scheduled.

use std::cmp::Ordering;
use std::collections::binary_heap::PeekMut;
use std::collections::BinaryHeap;

/// No next item.
const END: u32 = u32::MAX;

/// One run's first item: its key, and its slot.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Head {
    at: u64,
    seq: u64,
    slot: u32,
}

impl PartialOrd for Head {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Head {
    // Reversed: the earliest (then the first scheduled) on top of the max-heap. `seq` is
    // unique, so `slot` never decides.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// A slot of the slab: an item and the next one of its run, or a free slot.
struct Node<T> {
    at: u64,
    seq: u64,
    /// The next item of the run, or the next free slot ([`END`]: none).
    next: u32,
    item: Option<T>,
}

/// Items due at virtual times, taken by (due time, order scheduled).
pub(crate) struct DueQueue<T> {
    nodes: Vec<Node<T>>,
    /// The first free slot ([`END`]: none), its `next` the following one.
    free: u32,
    /// The first item of every run.
    heads: BinaryHeap<Head>,
    /// The last item of the run the last item joined, while it is scheduled: the next item
    /// joins that run when it is due no earlier.
    open: u32,
    len: usize,
}

impl<T> DueQueue<T> {
    pub(crate) fn new() -> Self {
        DueQueue {
            nodes: Vec::new(),
            free: END,
            heads: BinaryHeap::new(),
            open: END,
            len: 0,
        }
    }

    /// Items scheduled and not yet taken.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The key (due time, order scheduled) of the earliest item, if any is scheduled.
    #[inline]
    pub(crate) fn peek_key(&self) -> Option<(u64, u64)> {
        self.heads.peek().map(|h| (h.at, h.seq))
    }

    /// Schedules `item` at `at`; `seq` must be larger than every `seq` scheduled before.
    pub(crate) fn push(&mut self, at: u64, seq: u64, item: T) {
        let node = Node {
            at,
            seq,
            next: END,
            item: Some(item),
        };
        let slot = match self.free {
            END => {
                // Past u32::MAX - 1 slots (hundreds of gigabytes) the index would wrap.
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
            slot => {
                let n = &mut self.nodes[slot as usize];
                self.free = n.next;
                *n = node;
                slot
            }
        };
        self.len += 1;
        let open = self.open;
        self.open = slot;
        if open != END && self.nodes[open as usize].at <= at {
            self.nodes[open as usize].next = slot;
        } else {
            self.heads.push(Head { at, seq, slot });
        }
    }

    /// Takes the earliest item if it is due by `now`.
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<(u64, T)> {
        let mut top = self.heads.peek_mut()?;
        if top.at > now {
            return None;
        }
        let slot = top.slot;
        let node = &mut self.nodes[slot as usize];
        let (at, next, item) = (node.at, node.next, node.item.take());
        node.next = self.free;
        self.free = slot;
        self.len -= 1;
        if next == END {
            PeekMut::pop(top);
            if self.open == slot {
                self.open = END;
            }
        } else {
            // The run's next item is its new head: one sift down the small heap.
            let n = &self.nodes[next as usize];
            *top = Head {
                at: n.at,
                seq: n.seq,
                slot: next,
            };
        }
        item.map(|item| (at, item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order one heap of every item would give: by due time, then by `seq`.
    fn heap_order(items: &[(u64, u64)]) -> Vec<u64> {
        let mut sorted = items.to_vec();
        sorted.sort();
        sorted.into_iter().map(|(_, seq)| seq).collect()
    }

    #[test]
    fn items_come_out_by_due_time_then_by_order_scheduled() {
        // Runs in order, out of order, and ties between runs.
        let ats = [5, 7, 7, 9, 3, 4, 8, 7, 1, 10, 10, 2, 7, 6, 6, 11, 0];
        let mut q = DueQueue::new();
        let mut items = Vec::new();
        for (seq, at) in ats.into_iter().enumerate() {
            q.push(at, seq as u64, seq as u64);
            items.push((at, seq as u64));
        }
        assert_eq!(q.len(), ats.len());
        let mut out = Vec::new();
        while let Some((_, seq)) = q.pop_due(u64::MAX) {
            out.push(seq);
        }
        assert_eq!(out, heap_order(&items));
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn nothing_comes_out_before_it_is_due_and_pushes_between_pops_keep_the_order() {
        let mut q = DueQueue::new();
        let mut seq = 0;
        let mut push = |q: &mut DueQueue<u64>, at: u64| {
            seq += 1;
            q.push(at, seq, at);
        };
        for at in [10, 20, 30] {
            push(&mut q, at);
        }
        assert_eq!(q.pop_due(9), None);
        assert_eq!(q.pop_due(10), Some((10, 10)));
        // Due before the open run's last: another run.
        push(&mut q, 15);
        push(&mut q, 25);
        assert_eq!(q.peek_key().map(|k| k.0), Some(15));
        let mut out = Vec::new();
        while let Some((at, _)) = q.pop_due(100) {
            out.push(at);
        }
        assert_eq!(out, [15, 20, 25, 30]);
        // Taken slots are reused.
        push(&mut q, 1);
        assert_eq!(q.pop_due(1), Some((1, 1)));
        assert_eq!(q.nodes.len(), 4, "the most items scheduled at once");
    }

    #[test]
    fn a_pseudo_random_schedule_comes_out_in_heap_order() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut q = DueQueue::new();
        let mut items = Vec::new();
        let mut out = Vec::new();
        let mut now = 0;
        for seq in 0..5_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = now + x % 1_000;
            q.push(at, seq, seq);
            items.push((at, seq));
            if x % 3 == 0 {
                now += x % 50;
                while let Some((_, s)) = q.pop_due(now) {
                    out.push(s);
                }
            }
        }
        while let Some((_, s)) = q.pop_due(u64::MAX) {
            out.push(s);
        }
        // Popping only what is due at a time that never goes back is the same as sorting
        // all of it, as long as nothing is scheduled before `now`.
        assert_eq!(out, heap_order(&items));
    }
}
