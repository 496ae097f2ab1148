//! [`DueQueue`]: what comes due in virtual time, taken earliest first.
//!
//! Virtual time never goes backwards, and what is scheduled comes in two shapes: runs
//! already in time order (a client's calls return one after the other, executions of one
//! fixed duration end in the order they started), and many items due at one instant (a
//! thousand executions' invokes each return every 10 ms, a thousand executions that started
//! together end together).
//!
//! The queue keeps one *group* per due time: its items in the order scheduled. A group keeps
//! its first item in place, and the rest side by side in fixed-size chunks, so that taking a
//! group's items reads memory in order (the processor fetches it ahead), and a chunk emptied
//! is reused at once by the next group that needs one (it is still in cache). A hash index
//! finds the group of a due time; an item due when the last one scheduled was needs no
//! look-up. The groups are linked in runs of increasing due time, with a small heap of the
//! runs' first groups, so that a group due after every other costs no heap step.
//!
//! Groups and chunks live in two slabs whose slots are reused as soon as they are emptied:
//! memory follows the most items and due times scheduled at once (at most two part-filled
//! chunks a time), with no copying as groups grow. The order taken is the one a heap of every
//! item would give: by due time, then by the order scheduled.
//!
//! Why groups: a big model schedules far more than the processor's caches hold (a million
//! invokes waiting for their calls to return). Kept in the order they were scheduled, the
//! items due at one instant lie scattered, and taking each is a trip to main memory.

use std::cmp::Ordering;
use std::collections::binary_heap::PeekMut;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// No next group or chunk.
const END: u32 = u32::MAX;

/// Items in one chunk.
const CHUNK: usize = 32;

/// One run's first group: its due time, and its slot.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Head {
    at: u64,
    slot: u32,
}

impl PartialOrd for Head {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Head {
    // Reversed: the earliest on top of the max-heap. A due time has one group, so `slot`
    // never decides.
    fn cmp(&self, o: &Self) -> Ordering {
        o.at.cmp(&self.at)
    }
}

/// A slot of the group slab: the items due at one time, or a free slot.
struct Group<T> {
    at: u64,
    /// The next group of its run, or the next free slot ([`END`]: none).
    next: u32,
    /// The first item not yet taken, with its `seq`, while it is the group's first.
    first: Option<(u64, T)>,
    /// The chunks of the rest, first to last ([`END`]: none), the next item to take at
    /// `read` of `head`, the next to store at `write` of `tail`.
    head: u32,
    tail: u32,
    read: u32,
    write: u32,
}

/// A slot of the chunk slab: items of one group, with their `seq`; or a free chunk.
struct Chunk<T> {
    seqs: [u64; CHUNK],
    items: [Option<T>; CHUNK],
    /// The group's next chunk, or the next free chunk ([`END`]: none).
    next: u32,
}

/// Hashes a due time with MurmurHash3's 64-bit finalizer (two multiplications, three folds):
/// every bit of the time reaches the low bits that pick the table's bucket. Due times are often
/// round numbers of nanoseconds, whose low bits are all zero; a single multiplication keeps
/// those zeros, and times on multiples of a large power of two then share one bucket.
#[derive(Default)]
struct TimeHasher(u64);

impl Hasher for TimeHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        let mut x = self.0 ^ n;
        x ^= x >> 33;
        x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        x ^= x >> 33;
        x = x.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        self.0 = x ^ (x >> 33);
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
}

/// Items due at virtual times, taken by (due time, order scheduled).
pub(crate) struct DueQueue<T> {
    groups: Vec<Group<T>>,
    /// The first free group slot ([`END`]: none), its `next` the following one.
    free_group: u32,
    chunks: Vec<Chunk<T>>,
    /// The first free chunk ([`END`]: none), its `next` the following one.
    free_chunk: u32,
    /// The group of every due time with items scheduled.
    index: HashMap<u64, u32, BuildHasherDefault<TimeHasher>>,
    /// The first group of every run.
    heads: BinaryHeap<Head>,
    /// The last group of the run the last new group joined, while it has items: the next new
    /// group joins that run when it is due later.
    open: u32,
    /// The due time of `open`.
    open_at: u64,
    /// The group the last item joined, while it has items: an item due at the same time
    /// joins it without a look-up.
    last: u32,
    len: usize,
}

impl<T> DueQueue<T> {
    pub(crate) fn new() -> Self {
        DueQueue {
            groups: Vec::new(),
            free_group: END,
            chunks: Vec::new(),
            free_chunk: END,
            index: HashMap::default(),
            heads: BinaryHeap::new(),
            open: END,
            open_at: 0,
            last: END,
            len: 0,
        }
    }

    /// Items scheduled and not yet taken.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The earliest due time, if any item is scheduled.
    #[inline]
    pub(crate) fn peek_at(&self) -> Option<u64> {
        self.heads.peek().map(|h| h.at)
    }

    /// The key (due time, order scheduled) of the earliest item, if any is scheduled.
    #[inline]
    pub(crate) fn peek_key(&self) -> Option<(u64, u64)> {
        let h = self.heads.peek()?;
        let g = &self.groups[h.slot as usize];
        let seq = match &g.first {
            Some((seq, _)) => *seq,
            None => self.chunks[g.head as usize].seqs[g.read as usize],
        };
        Some((h.at, seq))
    }

    /// Schedules `item` at `at`; `seq` must be larger than every `seq` scheduled before.
    pub(crate) fn push(&mut self, at: u64, seq: u64, item: T) {
        self.len += 1;
        let last = self.last;
        let slot = if last != END && self.groups[last as usize].at == at {
            last
        } else if let Some(&slot) = self.index.get(&at) {
            self.last = slot;
            slot
        } else {
            self.push_group(at, seq, item);
            return;
        };
        // After the group's other items: at the end of its last chunk, or in a new one.
        let g = &mut self.groups[slot as usize];
        if g.tail == END || g.write as usize == CHUNK {
            let c = match self.free_chunk {
                END => {
                    self.chunks.push(Chunk {
                        seqs: [0; CHUNK],
                        items: std::array::from_fn(|_| None),
                        next: END,
                    });
                    (self.chunks.len() - 1) as u32
                }
                c => {
                    self.free_chunk = self.chunks[c as usize].next;
                    self.chunks[c as usize].next = END;
                    c
                }
            };
            if g.tail == END {
                g.head = c;
                g.read = 0;
            } else {
                self.chunks[g.tail as usize].next = c;
            }
            g.tail = c;
            g.write = 0;
        }
        let chunk = &mut self.chunks[g.tail as usize];
        chunk.seqs[g.write as usize] = seq;
        chunk.items[g.write as usize] = Some(item);
        g.write += 1;
    }

    /// A new group due at `at` with `item` its first: in a free slot (or a new one), indexed,
    /// and at the end of the open run (or the first of a new one).
    fn push_group(&mut self, at: u64, seq: u64, item: T) {
        let group = Group {
            at,
            next: END,
            first: Some((seq, item)),
            head: END,
            tail: END,
            read: 0,
            write: 0,
        };
        let slot = match self.free_group {
            END => {
                // Past u32::MAX - 1 slots (hundreds of gigabytes) the index would wrap.
                self.groups.push(group);
                (self.groups.len() - 1) as u32
            }
            slot => {
                let g = &mut self.groups[slot as usize];
                self.free_group = g.next;
                *g = group;
                slot
            }
        };
        self.index.insert(at, slot);
        self.last = slot;
        let (open, open_at) = (self.open, self.open_at);
        self.open = slot;
        self.open_at = at;
        // A due time has one group: the open one is never due at `at`.
        if open != END && open_at < at {
            self.groups[open as usize].next = slot;
        } else {
            self.heads.push(Head { at, slot });
        }
    }

    /// Takes the earliest item if it is due by `now`.
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<(u64, T)> {
        let top = self.heads.peek_mut()?;
        let (at, slot) = (top.at, top.slot);
        if at > now {
            return None;
        }
        let g = &mut self.groups[slot as usize];
        // (`first` is looked at before it is taken: taking copies it out even when empty.)
        let item = if g.first.is_some() {
            g.first.take().map(|(_, item)| item)
        } else if g.head == END {
            None
        } else {
            let c = g.head;
            let chunk = &mut self.chunks[c as usize];
            let item = chunk.items[g.read as usize].take();
            g.read += 1;
            let drained = if c == g.tail {
                g.read == g.write
            } else {
                g.read as usize == CHUNK
            };
            if drained {
                // The chunk is free for the next group that needs one.
                g.head = chunk.next;
                g.read = 0;
                if c == g.tail {
                    g.tail = END;
                    g.write = 0;
                }
                chunk.next = self.free_chunk;
                self.free_chunk = c;
            }
            item
        };
        self.len -= usize::from(item.is_some());
        if g.head == END {
            // The group is empty: its run goes on with its next group, and its slot is free.
            let next = g.next;
            g.next = self.free_group;
            self.free_group = slot;
            self.index.remove(&at);
            if self.last == slot {
                self.last = END;
            }
            if next == END {
                PeekMut::pop(top);
                if self.open == slot {
                    self.open = END;
                }
            } else {
                // The run's next group is its new head: one sift down the small heap.
                let mut top = top;
                *top = Head {
                    at: self.groups[next as usize].at,
                    slot: next,
                };
            }
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
        assert_eq!(q.groups.len(), 4, "the most due times scheduled at once");
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

    #[test]
    fn a_fan_out_of_interleaved_runs_comes_out_in_heap_order_and_reuses_its_chunks() {
        // The shape of a fan-out: every 10 ticks an execution schedules a run of 200 items
        // 10 ticks apart, so that each due time gathers an item of up to 200 runs (several
        // chunks), while the items due are taken.
        let mut q = DueQueue::new();
        let mut items = Vec::new();
        let mut out = Vec::new();
        let mut seq = 0;
        for run in 0..1_000u64 {
            let now = run * 10;
            while let Some((at, s)) = q.pop_due(now) {
                assert!(at <= now);
                out.push(s);
            }
            for j in 1..=200u64 {
                seq += 1;
                let at = now + j * 10;
                q.push(at, seq, seq);
                items.push((at, seq));
            }
        }
        let peak_chunks = q.chunks.len();
        while let Some((_, s)) = q.pop_due(u64::MAX) {
            out.push(s);
        }
        assert_eq!(out, heap_order(&items));
        assert_eq!(q.len(), 0);
        // At most 200 due times are scheduled at once, each with at most 200 items: chunks
        // are reused, not piled up (200,000 items would need 6,250).
        assert!(
            peak_chunks <= 200 * (200 / CHUNK + 2),
            "{peak_chunks} chunks"
        );
        assert!(q.groups.len() <= 201, "{} groups", q.groups.len());
    }
}

#[cfg(test)]
mod order_tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    enum Op {
        /// Push at a time picked by `kind` and `x`.
        Push(u8, u64),
        /// Pop everything due at `now + d` (or a single pop).
        Pop(u64, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..8, any::<u64>()).prop_map(|(k, x)| Op::Push(k, x)),
            1 => (0u64..200, any::<bool>()).prop_map(|(d, all)| Op::Pop(d, all)),
        ]
    }

    fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
        let mut q: DueQueue<u64> = DueQueue::new();
        let mut model: BTreeMap<(u64, u64), ()> = BTreeMap::new();
        let mut seq = 0u64;
        let mut now = 0u64;
        let mut last_at = 0u64;
        let mut peak_live_times = 0usize;
        for op in ops {
            match op {
                Op::Push(kind, x) => {
                    let at = match kind {
                        0 => now + x % 50,               // near now
                        1 => last_at,                    // same as last pushed
                        2 => now.saturating_sub(x % 20), // in the past
                        3 => model
                            .keys()
                            .next_back()
                            .map_or(now, |k| k.0.saturating_sub(x % 30)), // earlier than queued
                        4 => u64::MAX - (x % 3),         // huge
                        5 => 0,                          // zero
                        6 => (x % 64) << 40,             // multiples of a power of two
                        _ => model
                            .keys()
                            .nth((x % (model.len() as u64 + 1)) as usize)
                            .map_or(now, |k| k.0), // an existing time
                    };
                    seq += 1;
                    last_at = at;
                    q.push(at, seq, seq);
                    model.insert((at, seq), ());
                }
                Op::Pop(d, all) => {
                    now = now.saturating_add(d);
                    loop {
                        let want = model.keys().next().copied().filter(|k| k.0 <= now);
                        let got = q.pop_due(now);
                        prop_assert_eq!(got, want.map(|k| (k.0, k.1)));
                        match want {
                            Some(k) => {
                                model.remove(&k);
                            }
                            None => break,
                        }
                        if !all {
                            break;
                        }
                    }
                }
            }
            prop_assert_eq!(q.len(), model.len());
            prop_assert_eq!(q.peek_key(), model.keys().next().copied());
            prop_assert_eq!(q.peek_at(), model.keys().next().map(|k| k.0));
            let live: std::collections::BTreeSet<u64> = model.keys().map(|k| k.0).collect();
            peak_live_times = peak_live_times.max(live.len());
            prop_assert!(
                q.groups.len() <= peak_live_times.max(1),
                "groups {} peak {}",
                q.groups.len(),
                peak_live_times
            );
        }
        // Drain at u64::MAX.
        while let Some(k) = model.keys().next().copied() {
            prop_assert_eq!(q.pop_due(u64::MAX), Some(k));
            model.remove(&k);
        }
        prop_assert_eq!(q.pop_due(u64::MAX), None);
        prop_assert_eq!(q.len(), 0);
        prop_assert_eq!(q.index.len(), 0);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        #[test]
        fn pops_match_a_sorted_map_under_every_shape_of_push_and_pop(ops in prop::collection::vec(op(), 0..400)) {
            run(ops)?;
        }
    }

    /// Big groups (several chunks) at times interleaved with pushes while popping.
    #[test]
    fn big_groups_pushed_while_popping_come_out_in_order_and_reuse_chunks() {
        let mut q: DueQueue<u64> = DueQueue::new();
        let mut model = BTreeMap::new();
        let mut seq = 0;
        let mut x: u64 = 12345;
        for round in 0..200u64 {
            for _ in 0..300 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = round * 5 + x % 7;
                seq += 1;
                q.push(at, seq, seq);
                model.insert((at, seq), ());
            }
            // Pop half of what is due at round*5, pushing at `now` while popping.
            let now = round * 5;
            let mut n = 0;
            loop {
                let want = model.keys().next().copied().filter(|k| k.0 <= now);
                assert_eq!(q.pop_due(now), want);
                let Some(k) = want else { break };
                model.remove(&k);
                n += 1;
                if n % 3 == 0 {
                    seq += 1;
                    q.push(now, seq, seq);
                    model.insert((now, seq), ());
                }
                if n > 2000 {
                    break;
                }
            }
        }
        while let Some(k) = model.keys().next().copied() {
            assert_eq!(q.pop_due(u64::MAX), Some(k));
            model.remove(&k);
        }
        let live_chunks = q.chunks.len();
        assert!(live_chunks < 300, "{live_chunks} chunks");
    }

    /// How many of the 2^16 lowest hash buckets `times` land in.
    fn buckets_hit(times: impl Iterator<Item = u64>) -> usize {
        use std::hash::BuildHasher;
        let build = std::hash::BuildHasherDefault::<TimeHasher>::default();
        let mut hit = std::collections::HashSet::new();
        for at in times {
            hit.insert(build.hash_one(at) & 0xFFFF);
        }
        hit.len()
    }

    #[test]
    fn due_times_on_multiples_of_large_powers_of_two_spread_over_the_index() {
        // 40,000 due times `i << k`, against 40,000 times with no such pattern: with one
        // multiplication and a fold from bit 29, k = 44 put all of them in two buckets, and the
        // index went quadratic (10,000 due times took 3.3 s).
        let plain = buckets_hit((1..=40_000u64).map(|i| i * 1_000_003));
        for k in [0u32, 20, 30, 36, 40, 44, 48] {
            let hit = buckets_hit((1..=40_000u64).map(|i| i << k));
            assert!(hit * 10 > plain * 9, "k = {k}: {hit} buckets of {plain}");
        }
    }
}
