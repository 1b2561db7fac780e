//! The broker-wide memory budget (`max_memory_bytes`): what the messages it holds may take.
//!
//! A message is charged when it is accepted and released when the last reference to it goes (it was
//! acked, delivered to every subscriber, dropped from a full subscriber buffer, or its group was
//! deleted), so the count follows what is really held, wherever it is held. The charge is an estimate
//! of the heap a message takes ([`footprint`]), measured against the broker's resident memory
//! (BENCHMARKS.md), not the bytes of the payload alone.
//!
//! Past the budget a Publish is refused whole with RESOURCE_EXHAUSTED, as RabbitMQ's memory alarm
//! blocks publishers only: consumers and acks, which free memory, go on at full speed. Dead letters
//! were accepted once and are charged even past the budget.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};

/// Heap a message takes besides its payload and optional fields: its fields in the allocation it
/// shares with the payload (80 bytes, plus the allocator's header and rounding) and a group's queue
/// slot (24 bytes). Measured: 250 bytes of RSS per queued 128-byte message (BENCHMARKS.md).
const MESSAGE_OVERHEAD: usize = 128;
/// The box that holds headers, key, reply-to and correlation id, when a message has any.
const EXTRAS_OVERHEAD: usize = 128;
/// A header's two strings and its slot in the map, besides their text.
const HEADER_OVERHEAD: usize = 64;

/// What a message with these parts is charged.
pub fn footprint(
    payload_bytes: usize,
    headers: &HashMap<String, String>,
    optional_text_bytes: usize,
) -> usize {
    let extras = if headers.is_empty() && optional_text_bytes == 0 {
        0
    } else {
        let header_bytes: usize = headers
            .iter()
            .map(|(name, value)| HEADER_OVERHEAD + name.len() + value.len())
            .sum();
        EXTRAS_OVERHEAD + header_bytes + optional_text_bytes
    };
    MESSAGE_OVERHEAD + payload_bytes + extras
}

/// Bytes charged against a limit.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
    /// Publishers waiting for room ([`MemoryBudget::room_freed`]); releases wake them only if any.
    waiters: AtomicUsize,
    room: Notify,
}

/// The budget cannot take the charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    pub used: usize,
    pub limit: usize,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
            waiters: AtomicUsize::new(0),
            room: Notify::new(),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Charges `bytes` if they fit under the limit, all or nothing.
    pub fn try_charge(&self, bytes: usize) -> Result<(), OverBudget> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .map(drop)
            .map_err(|used| OverBudget {
                used,
                limit: self.limit,
            })
    }

    /// Charges `bytes` whatever the limit: for what was accepted once already.
    pub fn force_charge(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
    }

    pub fn release(&self, bytes: usize) {
        // Saturating: a release never exceeds its own charge, but a bug here must not wrap the count
        // and shut publishers out for good.
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            });
        if self.waiters.load(Ordering::Acquire) > 0 {
            self.room.notify_waiters();
        }
    }

    /// Waits until some message is released, or `poll` passes: room in a group can also come from an
    /// ack whose message a subscriber still holds, which releases nothing here. `false` once
    /// `deadline` has passed.
    pub async fn room_freed(&self, deadline: Instant, poll: Duration) -> bool {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        self.waiters.fetch_add(1, Ordering::AcqRel);
        let _ = tokio::time::timeout_at(deadline.min(now + poll), self.room.notified()).await;
        self.waiters.fetch_sub(1, Ordering::AcqRel);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_up_to_the_limit_and_releases() {
        let budget = MemoryBudget::new(1000);
        budget.try_charge(600).unwrap();
        assert_eq!(
            budget.try_charge(401),
            Err(OverBudget {
                used: 600,
                limit: 1000
            })
        );
        budget.try_charge(400).unwrap();
        assert_eq!(budget.used(), 1000);
        budget.release(600);
        budget.force_charge(900);
        assert_eq!(budget.used(), 1300);
        assert!(budget.try_charge(1).is_err());
        budget.release(1300);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn optional_fields_cost_their_box() {
        let plain = footprint(128, &HashMap::new(), 0);
        assert_eq!(plain, MESSAGE_OVERHEAD + 128);
        let headers = HashMap::from([("a".to_owned(), "bc".to_owned())]);
        assert_eq!(
            footprint(128, &headers, 5),
            plain + EXTRAS_OVERHEAD + HEADER_OVERHEAD + 3 + 5
        );
    }
}
