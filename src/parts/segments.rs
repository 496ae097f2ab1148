//! [`SegmentedDeque`]: a FIFO line that grows and shrinks a segment at a time.

use std::collections::{vec_deque, VecDeque};
use std::iter::{Chain, Flatten};

/// Bytes of one full segment (a page): what a line's last segment can leave unused, and what
/// it keeps as a spare.
const SEGMENT_BYTES: usize = 4096;

/// Entries of a full segment are never fewer than this, however large an entry.
const MIN_SEGMENT_LEN: usize = 16;

/// Capacity (in segments) above which an emptied list of middle segments gives memory back.
const MIDDLE_SHRINK_ABOVE: usize = 64;

/// A double-ended queue that grows a segment (about [`SEGMENT_BYTES`]) at a time instead of
/// doubling one buffer: past its first segment, the memory it holds is its entries plus at most
/// one partly filled segment at each end, one spare segment and a pointer-sized header per
/// segment, at any length. A doubling buffer holds up to twice its entries just past a doubling,
/// and copies them all to get there; a segment, once written, never moves.
///
/// The line is `front`, then every `middle` segment, then `back`, in order. New entries go into
/// `back`, a [`VecDeque`] whose capacity is never exceeded once it reaches a full segment: while
/// the whole line fits in one segment, that segment doubles like a `VecDeque` up to the segment
/// size, so a short line stays small. A full `back` moves to `middle` and a fresh segment takes
/// its place (or, when `middle` is empty and so is `front`, the two trade places); an emptied
/// `front` is refilled from `middle`. One emptied segment is kept as a spare, so a steady
/// backlog (a segment started at the back as one drains at the front) neither allocates nor
/// frees.
///
/// Invariants: every `middle` segment has entries (so popping from an empty `front` means
/// taking the first `middle` segment, or popping from `back` when there is none), and
/// `middle_len` is the number of entries in `middle`.
pub(crate) struct SegmentedDeque<T> {
    front: VecDeque<T>,
    middle: VecDeque<VecDeque<T>>,
    back: VecDeque<T>,
    /// An empty segment of full size, or an empty `VecDeque` without memory.
    spare: VecDeque<T>,
    middle_len: usize,
}

impl<T> Default for SegmentedDeque<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> SegmentedDeque<T> {
    /// Entries of a full segment.
    const SEGMENT_LEN: usize = {
        // Zero-sized entries take no memory: any length will do.
        let len = match SEGMENT_BYTES.checked_div(std::mem::size_of::<T>()) {
            Some(len) => len,
            None => SEGMENT_BYTES,
        };
        if len < MIN_SEGMENT_LEN {
            MIN_SEGMENT_LEN
        } else {
            len
        }
    };

    /// An empty line; allocates nothing.
    pub(crate) const fn new() -> Self {
        SegmentedDeque {
            front: VecDeque::new(),
            middle: VecDeque::new(),
            back: VecDeque::new(),
            spare: VecDeque::new(),
            middle_len: 0,
        }
    }

    /// Entries in the line.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.front.len() + self.middle_len + self.back.len()
    }

    /// Adds `value` at the back of the line.
    #[inline]
    pub(crate) fn push_back(&mut self, value: T) {
        if self.back.len() == self.back.capacity() {
            self.make_room_at_back();
        }
        self.back.push_back(value);
    }

    /// Removes the entry at the front of the line.
    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        if let Some(value) = self.front.pop_front() {
            return Some(value);
        }
        if self.middle.is_empty() {
            return self.back.pop_front();
        }
        self.pop_front_from_middle()
    }

    /// Removes the entry `index` places behind the front, or returns `None` if the line is not
    /// that long. O(segment length + segments).
    pub(crate) fn remove(&mut self, mut index: usize) -> Option<T> {
        if index < self.front.len() {
            return self.front.remove(index);
        }
        index -= self.front.len();
        if index >= self.middle_len {
            return self.back.remove(index - self.middle_len);
        }
        for i in 0..self.middle.len() {
            let segment = &mut self.middle[i];
            if index < segment.len() {
                let value = segment.remove(index);
                self.middle_len -= 1;
                if segment.is_empty() {
                    if let Some(emptied) = self.middle.remove(i) {
                        self.recycle(emptied);
                    }
                }
                return value;
            }
            index -= segment.len();
        }
        None
    }

    /// The entries, front first.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        self.front
            .iter()
            .chain(self.middle.iter().flatten())
            .chain(self.back.iter())
    }

    /// The entries, front first, to change in place.
    pub(crate) fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut T> + '_ {
        self.front
            .iter_mut()
            .chain(self.middle.iter_mut().flatten())
            .chain(self.back.iter_mut())
    }

    /// A fresh segment of full size: the spare, if there is one.
    fn take_segment(&mut self) -> VecDeque<T> {
        if self.spare.capacity() >= Self::SEGMENT_LEN {
            std::mem::take(&mut self.spare)
        } else {
            VecDeque::with_capacity(Self::SEGMENT_LEN)
        }
    }

    /// Keeps an emptied segment as the spare if there is none yet (and it is of full size);
    /// frees it otherwise.
    fn recycle(&mut self, segment: VecDeque<T>) {
        debug_assert!(segment.is_empty());
        if self.spare.capacity() == 0 && segment.capacity() >= Self::SEGMENT_LEN {
            self.spare = segment;
        }
    }

    /// Doubles a segment that is full but shorter than a full segment (a short line's only
    /// one), up to the segment length.
    fn grow(segment: &mut VecDeque<T>) {
        let capacity = segment.capacity();
        let wanted = (capacity * 2).clamp(4, Self::SEGMENT_LEN);
        segment.reserve_exact(wanted - segment.len());
    }

    /// `back` is full: doubles it while it is short, else moves it on and starts a fresh one.
    #[cold]
    #[inline(never)]
    fn make_room_at_back(&mut self) {
        if self.back.capacity() < Self::SEGMENT_LEN {
            Self::grow(&mut self.back);
            return;
        }
        if self.front.is_empty() && self.middle.is_empty() {
            // The full back becomes the front, and the emptied front (if of full size) the back.
            std::mem::swap(&mut self.front, &mut self.back);
            if self.back.capacity() < Self::SEGMENT_LEN {
                self.back = self.take_segment();
            }
            return;
        }
        let fresh = self.take_segment();
        let full = std::mem::replace(&mut self.back, fresh);
        self.middle_len += full.len();
        self.middle.push_back(full);
    }

    /// `front` is empty and `middle` is not: the first middle segment becomes `front`.
    #[cold]
    #[inline(never)]
    fn pop_front_from_middle(&mut self) -> Option<T> {
        let next = self.middle.pop_front()?;
        self.middle_len -= next.len();
        let emptied = std::mem::replace(&mut self.front, next);
        self.recycle(emptied);
        if self.middle.is_empty() && self.middle.capacity() > MIDDLE_SHRINK_ABOVE {
            // A drained backlog gives back the list of its segments too.
            self.middle.shrink_to_fit();
        }
        self.front.pop_front()
    }
}

/// The owned entries of a [`SegmentedDeque`], front first.
pub(crate) type IntoIter<T> = Chain<
    Chain<vec_deque::IntoIter<T>, Flatten<vec_deque::IntoIter<VecDeque<T>>>>,
    vec_deque::IntoIter<T>,
>;

impl<T> IntoIterator for SegmentedDeque<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        self.front
            .into_iter()
            .chain(self.middle.into_iter().flatten())
            .chain(self.back)
    }
}

impl<T> Extend<T> for SegmentedDeque<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for value in iter {
            self.push_back(value);
        }
    }
}

impl<T> FromIterator<T> for SegmentedDeque<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut line = Self::new();
        line.extend(iter);
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An entry of 256 bytes: 16 to a segment, so that short runs cross many boundaries.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Wide {
        id: u32,
        padding: [u8; 252],
    }

    fn wide(id: u32) -> Wide {
        Wide {
            id,
            padding: [0; 252],
        }
    }

    fn ids<'a>(entries: impl Iterator<Item = &'a Wide>) -> Vec<u32> {
        entries.map(|e| e.id).collect()
    }

    #[derive(Debug, Clone)]
    enum Op {
        PushBack(u16),
        PopFront(u16),
        Remove(usize),
        Edit(usize),
        Rebuild,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1u16..80).prop_map(Op::PushBack),
            4 => (1u16..80).prop_map(Op::PopFront),
            2 => any::<usize>().prop_map(Op::Remove),
            1 => any::<usize>().prop_map(Op::Edit),
            1 => Just(Op::Rebuild),
        ]
    }

    /// Checks every view of `line` against `model`, and the invariants.
    fn check(line: &mut SegmentedDeque<Wide>, model: &VecDeque<Wide>) {
        assert_eq!(line.len(), model.len());
        assert_eq!(ids(line.iter()), ids(model.iter()));
        assert_eq!(ids(line.iter().rev()), ids(model.iter().rev()));
        assert_eq!(line.iter_mut().count(), model.len());
        assert!(line.middle.iter().all(|s| !s.is_empty()));
        assert_eq!(
            line.middle_len,
            line.middle.iter().map(VecDeque::len).sum::<usize>()
        );
        // A segment that reached full size never grows past it.
        let full = SegmentedDeque::<Wide>::SEGMENT_LEN;
        assert_eq!(full, 16);
        for segment in line.middle.iter().chain([&line.front, &line.back]) {
            assert!(segment.len() <= full.max(segment.capacity()));
            assert!(segment.capacity() <= full, "{}", segment.capacity());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn a_segmented_deque_keeps_the_order_a_vecdeque_keeps(ops in prop::collection::vec(op(), 1..60)) {
            let mut line = SegmentedDeque::new();
            let mut model = VecDeque::new();
            let mut next = 0u32;
            for op in ops {
                match op {
                    Op::PushBack(n) => {
                        for _ in 0..n {
                            line.push_back(wide(next));
                            model.push_back(wide(next));
                            next += 1;
                        }
                    }
                    Op::PopFront(n) => {
                        for _ in 0..n {
                            prop_assert_eq!(line.pop_front(), model.pop_front());
                        }
                    }
                    Op::Remove(at) => {
                        // Half the time an index in range, else any (mostly past the end).
                        let at = if at % 2 == 0 { at % (model.len() + 1) } else { at };
                        prop_assert_eq!(line.remove(at), model.remove(at));
                    }
                    Op::Edit(at) => {
                        if !model.is_empty() {
                            let at = at % model.len();
                            line.iter_mut().nth(at).unwrap().id += 1_000_000;
                            model[at].id += 1_000_000;
                        }
                    }
                    Op::Rebuild => {
                        line = std::mem::take(&mut line).into_iter().collect();
                    }
                }
                check(&mut line, &model);
            }
            let drained: Vec<Wide> = line.into_iter().collect();
            prop_assert_eq!(drained, Vec::from(model));
        }
    }

    #[test]
    fn a_short_line_stays_in_one_small_segment() {
        let mut line = SegmentedDeque::new();
        assert_eq!(line.back.capacity(), 0);
        for i in 0..5 {
            line.push_back(wide(i));
        }
        assert_eq!(line.back.capacity(), 8);
        assert!(line.front.capacity() == 0 && line.middle.is_empty());
        while line.pop_front().is_some() {}
        line.push_back(wide(9));
        assert_eq!(line.pop_front(), Some(wide(9)));
        assert_eq!(line.back.capacity(), 8);
    }

    #[test]
    fn a_line_past_one_segment_allocates_one_segment_at_a_time() {
        let mut line = SegmentedDeque::new();
        for i in 0..16 * 10 + 1 {
            line.push_back(wide(i));
        }
        // Ten full segments (one as front, nine in the middle) and one entry in back.
        assert_eq!(line.front.len(), 16);
        assert_eq!(line.middle.len(), 9);
        assert_eq!(line.back.len(), 1);
        assert_eq!(line.back.capacity(), 16);
        assert_eq!(line.spare.capacity(), 0);
        for i in 0..16 * 10 + 1 {
            assert_eq!(line.pop_front().map(|e| e.id), Some(i));
        }
        assert_eq!(line.pop_front(), None);
        // Drained: one spare kept, the rest freed.
        assert_eq!(line.spare.capacity(), 16);
    }

    #[test]
    fn a_line_going_to_and_fro_across_a_boundary_reuses_its_two_segments() {
        let mut line = SegmentedDeque::new();
        for i in 0..16 {
            line.push_back(wide(i));
        }
        let mut next = 16;
        for _ in 0..100 {
            // Across the boundary: back full, a fresh segment starts.
            line.push_back(wide(next));
            next += 1;
            assert_eq!(line.front.len() + line.back.len(), 17);
            // Back across: front drains and is kept as the spare.
            for _ in 0..16 {
                line.pop_front();
            }
            assert!(line.front.is_empty());
            assert_eq!(line.back.len(), 1);
            for _ in 0..15 {
                line.push_back(wide(next));
                next += 1;
            }
            // The two segments trade places: no third one, not even a spare.
            assert!(line.middle.is_empty());
            assert_eq!((line.front.capacity(), line.back.capacity()), (16, 16));
            assert_eq!(line.spare.capacity(), 0);
        }
        assert_eq!(line.len(), 16);
        assert_eq!(line.iter().next().unwrap().id, next - 16);
    }

    #[test]
    fn zero_sized_entries_are_counted() {
        let mut line = SegmentedDeque::new();
        for _ in 0..10_000 {
            line.push_back(());
        }
        assert_eq!(line.len(), 10_000);
        assert_eq!(line.remove(5_000), Some(()));
        assert_eq!(line.iter().count(), 9_999);
        assert_eq!(line.into_iter().count(), 9_999);
    }
}
