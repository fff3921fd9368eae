//! The watermark of `send` when outcomes complete out of order: each line gets a sequence
//! number as it is taken in (input order), and an input's watermark advances to a line's end
//! only once that line and every line before it have their outcome recorded. A slow
//! destination holds the watermark back, never the other destinations' sending.
//!
//! Memory stays proportional to the lines still open: neighbouring finished lines of the same
//! input collapse into one entry (only the later mark matters), so what is kept is at most one
//! finished entry between two open ones.

use std::collections::BTreeMap;

use crate::checkpoint::Mark;

/// The lines taken in whose watermark has not passed yet.
#[derive(Debug, Default)]
pub(crate) struct Watermarks {
    next: u64,
    open: BTreeMap<u64, Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    input: usize,
    mark: Mark,
    done: bool,
}

impl Watermarks {
    /// Takes in the line of `input` that ends at `mark`; the number names it for [`Self::done`].
    pub(crate) fn push(&mut self, input: usize, mark: Mark) -> u64 {
        let seq = self.next;
        self.next += 1;
        self.open.insert(
            seq,
            Entry {
                input,
                mark,
                done: false,
            },
        );
        seq
    }

    /// Records that line `seq` has its outcome; `advance(input, mark)` is called for each
    /// watermark that moves, in input order.
    pub(crate) fn done(&mut self, seq: u64, mut advance: impl FnMut(usize, Mark)) {
        let Some(entry) = self.open.get_mut(&seq) else {
            return;
        };
        entry.done = true;
        let entry = *entry;
        let before = self.open.range(..seq).next_back().map(|(k, e)| (*k, *e));
        if let Some((key, previous)) = before
            && previous.done
            && previous.input == entry.input
        {
            self.open.remove(&key);
        }
        let after = self.open.range(seq + 1..).next().map(|(_, e)| *e);
        if after.is_some_and(|next| next.done && next.input == entry.input) {
            self.open.remove(&seq);
        }
        while let Some(first) = self.open.first_entry() {
            if !first.get().done {
                break;
            }
            let Entry { input, mark, .. } = first.remove();
            advance(input, mark);
        }
    }

    /// Entries kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(line: u64) -> Mark {
        Mark {
            line,
            offset: line * 10,
        }
    }

    /// Takes in `lines` (input, line), finishes them in `order` (indexes into `lines`), and
    /// checks the watermark of each input after each step.
    fn check(lines: &[(usize, u64)], order: &[usize], expected: &[&[u64]]) {
        let mut marks = Watermarks::default();
        let seqs: Vec<u64> = lines
            .iter()
            .map(|(input, line)| marks.push(*input, mark(*line)))
            .collect();
        let mut watermark = [0u64; 2];
        for (step, index) in order.iter().enumerate() {
            marks.done(seqs[*index], |input, m| {
                assert!(m.line > watermark[input], "goes forward");
                watermark[input] = m.line;
            });
            assert_eq!(&watermark[..], expected[step], "after step {step}");
        }
        assert_eq!(marks.len(), 0, "everything finished leaves nothing");
    }

    #[test]
    fn in_order() {
        check(
            &[(0, 1), (0, 2), (0, 3)],
            &[0, 1, 2],
            &[&[1, 0], &[2, 0], &[3, 0]],
        );
    }

    #[test]
    fn a_slow_line_holds_the_watermark_back() {
        check(
            &[(0, 1), (0, 2), (0, 3), (0, 4)],
            &[1, 2, 3, 0],
            &[&[0, 0], &[0, 0], &[0, 0], &[4, 0]],
        );
        check(
            &[(0, 1), (0, 2), (0, 3), (0, 4)],
            &[0, 2, 1, 3],
            &[&[1, 0], &[1, 0], &[3, 0], &[4, 0]],
        );
    }

    #[test]
    fn inputs_follow_each_other() {
        check(
            &[(0, 1), (0, 2), (1, 1), (1, 2)],
            &[3, 1, 2, 0],
            &[&[0, 0], &[0, 0], &[0, 0], &[2, 2]],
        );
    }

    #[test]
    fn finished_neighbours_collapse() {
        let mut marks = Watermarks::default();
        let slow = marks.push(0, mark(1));
        let rest: Vec<u64> = (2..1000).map(|line| marks.push(0, mark(line))).collect();
        for seq in rest {
            marks.done(seq, |_, _| panic!("held back by line 1"));
        }
        assert_eq!(marks.len(), 2, "the open line and one finished run");
        let mut moved = Vec::new();
        marks.done(slow, |input, m| moved.push((input, m.line)));
        assert_eq!(moved, [(0, 999)], "straight to the end of the run");
    }
}
