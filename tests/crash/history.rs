//! The history of a crash loop and its check: every delivery and acknowledged ack in the order the
//! clients recorded them, every id published, and the verdict, which lists the ids that break a
//! promise of the durable broker and counts what at-least-once delivery allows. Plain data: the
//! checker runs, and is tested, without a broker.

use std::collections::{HashMap, HashSet};

/// Which broker process on the directory a record comes from: 0 for the first that takes traffic,
/// the number of cycles for the drain.
pub type Run = usize;

/// One delivery as a consumer received it.
#[derive(Debug, Clone, Copy)]
pub struct Delivered {
    pub run: Run,
    pub attempt: u32,
    /// On the history's clock.
    pub at: u64,
}

/// An Ack that returned OK without naming the delivery unknown.
#[derive(Debug, Clone, Copy)]
pub struct Acked {
    pub run: Run,
    pub at: u64,
}

/// Everything the clients saw, in the order they saw it.
#[derive(Debug, Default)]
pub struct History {
    /// A logical clock, one tick per delivery or ack recorded: "after its ack" is the order of
    /// records made under one lock, not a comparison of timestamps.
    clock: u64,
    /// Ids sent in a Publish, recorded before the call.
    pub attempted: HashSet<String>,
    /// Ids whose Publish returned OK.
    pub published: HashSet<String>,
    /// Ids whose Publish failed: stored or not, both are correct after a kill.
    pub uncertain: HashSet<String>,
    /// Every delivery of each id, in the order received.
    pub deliveries: HashMap<String, Vec<Delivered>>,
    /// The first acknowledged ack of each id: nothing of it may be delivered after this.
    pub acked: HashMap<String, Acked>,
    /// Ids named in an Ack that was sent, answered or not: an Ack the kill cut off may have been
    /// applied (and made durable) before its answer was lost, so such an id may rightly never come
    /// back.
    pub ack_sent: HashSet<String>,
    /// Delivery ids an Ack named unknown (allowed: a deadline may have passed on a loaded machine).
    pub unknown_acks: usize,
    /// What went wrong while the broker was up: a failed call, a malformed answer.
    pub anomalies: Vec<String>,
}

impl History {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    pub fn record_delivery(&mut self, id: &str, run: Run, attempt: u32) {
        let at = self.tick();
        self.deliveries
            .entry(id.to_owned())
            .or_default()
            .push(Delivered { run, attempt, at });
    }

    pub fn record_ack(&mut self, id: String, run: Run) {
        let at = self.tick();
        self.acked.entry(id).or_insert(Acked { run, at });
    }
}

/// The checks of a whole history: lists of offending ids, which must be empty, and figures that
/// are only reported.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Published OK, never delivered.
    pub lost: Vec<String>,
    /// Delivered, never sent in a Publish.
    pub unexpected: Vec<String>,
    /// Delivered again after an Ack of it returned OK.
    pub delivered_after_ack: Vec<String>,
    /// Delivered again with attempt 1 (or 0), as if never handed out before.
    pub attempt_not_raised: Vec<String>,
    /// Published OK, and not acked by the end of the drain.
    pub never_acked: Vec<String>,
    /// Deliveries recorded, over all ids.
    pub deliveries: usize,
    /// Deliveries beyond each id's first: at-least-once allows them.
    pub duplicates: usize,
    /// Deliveries by a later broker process than the id's delivery before.
    pub redelivered_after_restart: usize,
    /// Redeliveries whose attempt is not above the one before. The promised behaviour is one
    /// higher; a broker that makes an attempt durable only after sending it can repeat one, so this
    /// is reported for its author rather than failed.
    pub attempt_repeated: usize,
    /// Uncertain ids that were delivered: their Publish had stored them after all.
    pub uncertain_delivered: usize,
    /// Uncertain ids that were delivered and then never again: routed before they were stored, and
    /// gone with the crash. Nothing promises otherwise for a Publish that did not return OK, so
    /// this is reported, not failed.
    pub uncertain_vanished: usize,
}

impl Verdict {
    pub fn of(history: &History) -> Self {
        let delivered = |id: &&String| history.deliveries.contains_key(*id);
        let acked = |id: &&String| history.acked.contains_key(*id);
        let mut verdict = Self {
            lost: sorted(history.published.iter().filter(|id| !delivered(id))),
            unexpected: sorted(
                history
                    .deliveries
                    .keys()
                    .filter(|id| !history.attempted.contains(*id)),
            ),
            never_acked: sorted(
                history
                    .published
                    .iter()
                    .filter(|id| !acked(id) && !history.ack_sent.contains(*id)),
            ),
            uncertain_delivered: history.uncertain.iter().filter(delivered).count(),
            uncertain_vanished: history
                .uncertain
                .iter()
                .filter(|id| delivered(id) && !acked(id))
                .count(),
            ..Self::default()
        };
        let mut after_ack = Vec::new();
        let mut not_raised = Vec::new();
        for (id, deliveries) in &history.deliveries {
            verdict.deliveries += deliveries.len();
            verdict.duplicates += deliveries.len().saturating_sub(1);
            if let Some(ack) = history.acked.get(id)
                && deliveries.iter().any(|delivery| delivery.at > ack.at)
            {
                after_ack.push(id);
            }
            let mut raised = true;
            for pair in deliveries.windows(2) {
                let (before, again) = (pair[0], pair[1]);
                raised &= again.attempt > 1;
                verdict.attempt_repeated += usize::from(again.attempt <= before.attempt);
                verdict.redelivered_after_restart += usize::from(again.run > before.run);
            }
            if !raised {
                not_raised.push(id);
            }
        }
        verdict.delivered_after_ack = sorted(after_ack);
        verdict.attempt_not_raised = sorted(not_raised);
        verdict
    }

    /// Every figure, failed or reported, for the summary line.
    pub fn summary(&self, history: &History) -> String {
        format!(
            "published {} OK and {} uncertain ({} of those delivered, {} of them never again); \
             {} deliveries of {} ids ({} duplicates, {} after a restart, {} with an attempt not \
             above the one before); {} acked ({} acks of unknown deliveries); lost {}, \
             unexpected {}, delivered after ack {}, redelivered with attempt 1 {}, never acked {}, \
             anomalies {}",
            history.published.len(),
            history.uncertain.len(),
            self.uncertain_delivered,
            self.uncertain_vanished,
            self.deliveries,
            history.deliveries.len(),
            self.duplicates,
            self.redelivered_after_restart,
            self.attempt_repeated,
            history.acked.len(),
            history.unknown_acks,
            self.lost.len(),
            self.unexpected.len(),
            self.delivered_after_ack.len(),
            self.attempt_not_raised.len(),
            self.never_acked.len(),
            history.anomalies.len(),
        )
    }

    /// One line per check that failed, with what the history holds about its first few ids; every
    /// anomaly is a failure too, and so is a history with nothing published or acked.
    pub fn failures(&self, history: &History) -> Vec<String> {
        let checks = [
            ("lost (published OK, never delivered)", &self.lost),
            ("unexpected (delivered, never published)", &self.unexpected),
            (
                "delivered after an Ack of them returned OK",
                &self.delivered_after_ack,
            ),
            ("redelivered with attempt 1", &self.attempt_not_raised),
            ("never acked by the end of the drain", &self.never_acked),
        ];
        let mut failures: Vec<String> = checks
            .into_iter()
            .filter(|(_, ids)| !ids.is_empty())
            .map(|(what, ids)| format!("{} {what}: {}", ids.len(), explain(history, ids)))
            .collect();
        if history.published.is_empty() || history.acked.is_empty() {
            failures.push("no run published and acked anything: the loop tested nothing".into());
        }
        failures.extend(history.anomalies.iter().take(10).cloned());
        failures
    }
}

fn sorted<'a>(ids: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut ids: Vec<String> = ids.into_iter().cloned().collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The first few of `ids`, each with its deliveries and its ack, for a failure message.
fn explain(history: &History, ids: &[String]) -> String {
    let described: Vec<String> = ids
        .iter()
        .take(5)
        .map(|id| {
            let ack = history
                .acked
                .get(id)
                .map(|ack| format!("run {} at {}", ack.run, ack.at));
            format!(
                "{id} (published OK: {}, deliveries: {:?}, ack: {ack:?})",
                history.published.contains(id),
                history.deliveries.get(id),
            )
        })
        .collect();
    described.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checker catches each thing it is there to catch, and passes what a crash allows.
    #[test]
    fn the_checker_tells_failures_from_what_a_crash_allows() {
        let mut history = History::default();
        let published = [
            "ok", "lost", "dropped", "twice", "again", "forgot", "repeat",
        ];
        let uncertain = ["maybe", "maybe-kept", "maybe-gone"];
        history
            .attempted
            .extend(published.iter().chain(&uncertain).map(ToString::to_string));
        history
            .published
            .extend(published.iter().map(ToString::to_string));
        history
            .uncertain
            .extend(uncertain.iter().map(ToString::to_string));
        let deliveries: &[(&str, Run, u32)] = &[
            ("ok", 0, 1),
            ("dropped", 0, 1),
            ("twice", 0, 1),
            ("again", 0, 1),
            ("forgot", 0, 1),
            ("repeat", 0, 1),
            ("repeat", 1, 2),
            ("maybe-kept", 1, 1),
            ("maybe-gone", 1, 1),
            ("stray", 1, 1),
        ];
        for &(id, run, attempt) in deliveries {
            history.record_delivery(id, run, attempt);
        }
        for id in ["ok", "again", "maybe-kept", "stray"] {
            history.record_ack(id.into(), 1);
        }
        // After those acks, in the next run: one acked id comes back, and three unacked ones come
        // back as they should (a higher attempt), too low, or with the attempt of the one before.
        for (id, attempt) in [("again", 2), ("twice", 2), ("forgot", 1), ("repeat", 2)] {
            history.record_delivery(id, 2, attempt);
        }
        for id in ["twice", "forgot", "repeat"] {
            history.record_ack(id.into(), 2);
        }

        let verdict = Verdict::of(&history);
        assert_eq!(verdict.lost, ["lost"]);
        assert_eq!(verdict.unexpected, ["stray"]);
        assert_eq!(verdict.delivered_after_ack, ["again"]);
        assert_eq!(verdict.attempt_not_raised, ["forgot"]);
        assert_eq!(verdict.never_acked, ["dropped", "lost"]);
        assert_eq!(verdict.deliveries, 14);
        // again, twice, forgot: one each; repeat: two.
        assert_eq!(verdict.duplicates, 5);
        assert_eq!(verdict.redelivered_after_restart, 5);
        // forgot (1 after 1) and repeat (2 after 2).
        assert_eq!(verdict.attempt_repeated, 2);
        assert_eq!(verdict.uncertain_delivered, 2);
        assert_eq!(verdict.uncertain_vanished, 1);
        assert_eq!(verdict.failures(&history).len(), 5);
    }
}
