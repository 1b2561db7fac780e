//! Which sequence numbers of one publisher arrived: loss, and duplicates within a receiver and
//! across the receivers of one group.

/// A set of sequence numbers of one source, as a bitmap: one bit per message sent.
#[derive(Debug, Default, Clone)]
pub struct SequenceSet {
    words: Vec<u64>,
}

impl SequenceSet {
    /// Adds `sequence`; `false` if it was already there.
    pub fn insert(&mut self, sequence: u64) -> bool {
        let (word, bit) = Self::position(sequence);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let fresh = self.words[word] & bit == 0;
        self.words[word] |= bit;
        fresh
    }

    pub fn contains(&self, sequence: u64) -> bool {
        let (word, bit) = Self::position(sequence);
        self.words.get(word).is_some_and(|word| word & bit != 0)
    }

    /// Adds every member of `other`; returns how many of them were here already.
    pub fn merge(&mut self, other: &Self) -> u64 {
        if other.words.len() > self.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        let mut overlap = 0;
        for (mine, theirs) in self.words.iter_mut().zip(&other.words) {
            overlap += u64::from((*mine & theirs).count_ones());
            *mine |= theirs;
        }
        overlap
    }

    /// How many of `0..issued` are missing, not counting those in `excused` (messages whose publish
    /// failed, so they were never in the broker).
    pub fn missing(&self, issued: u64, excused: &[u64]) -> u64 {
        let full_words = usize::try_from(issued / 64).unwrap_or(usize::MAX);
        let mut present: u64 = self
            .words
            .iter()
            .take(full_words)
            .map(|word| u64::from(word.count_ones()))
            .sum();
        let tail_bits = issued % 64;
        if tail_bits > 0 {
            let tail = self.words.get(full_words).copied().unwrap_or(0);
            present += u64::from((tail & ((1 << tail_bits) - 1)).count_ones());
        }
        let excused = excused
            .iter()
            .filter(|&&sequence| sequence < issued && !self.contains(sequence))
            .count() as u64;
        issued.saturating_sub(present + excused)
    }

    fn position(sequence: u64) -> (usize, u64) {
        // Sequences are checked against what was issued before they get here, so they index a
        // bitmap no larger than one bit per message sent.
        ((sequence / 64) as usize, 1 << (sequence % 64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_sets_count_duplicates_overlaps_and_holes() {
        let mut a = SequenceSet::default();
        assert!(a.insert(0));
        assert!(a.insert(70));
        assert!(!a.insert(70));
        let mut b = SequenceSet::default();
        b.insert(70);
        b.insert(1);
        assert_eq!(a.merge(&b), 1);
        // 0, 1 and 70 of 0..100 are there; 5 failed to publish, so it is excused.
        assert_eq!(a.missing(100, &[5]), 96);
        assert_eq!(a.missing(2, &[]), 0);
        assert_eq!(a.missing(0, &[]), 0);
    }
}
