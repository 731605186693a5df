//! When the dispatcher hands finished logs to the committers: at once when a flush waits
//! or the backlog is half full, otherwise once per `commit_interval_ms`, so that one
//! committer pass covers many logs (each key's group written once for more records).
//! Time comes only from the store's `Clock`, as a value: the machine reads no clock.
//!
//! Call order: [`CommitPacing::hurry`] when a flush asks; [`CommitPacing::is_due`] with
//! the current time and the backlog before handing out; [`CommitPacing::handed_out`]
//! after; [`CommitPacing::poll_timeout`] for how long the driver may sleep.

use crate::clock::Timestamp;

/// What pacing looks at besides the time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// The applied watermark.
    pub watermark: u64,
    /// Finished logs waiting that are not in the committers' hands yet.
    pub logs_not_handed_out: u64,
    /// Bytes the pending index holds.
    pub pending_bytes: u64,
}

/// The commit pacing machine (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitPacing {
    interval_us: u64,
    backlog_logs_max: u64,
    backlog_bytes_max: u64,
    /// When logs were last handed out (`None`: never).
    last_handout: Option<Timestamp>,
    /// Hand out without pacing while the watermark is below this (a flush waits).
    urgent_upto: u64,
}

impl CommitPacing {
    /// Pacing at `interval_ms`, and at once past half of either backlog bound.
    pub fn new(interval_ms: u64, backlog_logs_max: u64, backlog_bytes_max: u64) -> Self {
        CommitPacing {
            interval_us: interval_ms.saturating_mul(1000),
            backlog_logs_max,
            backlog_bytes_max,
            last_handout: None,
            urgent_upto: 0,
        }
    }

    /// A flush waits for every seq up to `upto`. Hand-outs stay urgent until the
    /// watermark reaches the highest such seq (the watermark only grows, so a lower or a
    /// met request changes nothing).
    pub fn hurry(&mut self, upto: u64) {
        self.urgent_upto = self.urgent_upto.max(upto);
    }

    /// Whether a flush still waits.
    pub fn is_urgent(&self, watermark: u64) -> bool {
        watermark < self.urgent_upto
    }

    /// Whether to hand logs out at `now`. A clock that stepped back behind the last
    /// hand-out counts as the interval having passed: pacing never stalls on it.
    pub fn is_due(&self, now: Timestamp, backlog: &Backlog) -> bool {
        let interval_passed = self
            .last_handout
            .is_none_or(|last| now < last || now.micros_since(last) >= self.interval_us);
        self.is_urgent(backlog.watermark)
            || interval_passed
            || backlog.logs_not_handed_out * 2 >= self.backlog_logs_max
            || backlog.pending_bytes * 2 >= self.backlog_bytes_max
    }

    /// Logs were handed out at `now`.
    pub fn handed_out(&mut self, now: Timestamp) {
        self.last_handout = Some(now);
    }

    /// Microseconds from `now` until a hand-out is due by time alone (0: now).
    pub fn poll_timeout(&self, now: Timestamp) -> u64 {
        match self.last_handout {
            Some(last) if now >= last => self.interval_us.saturating_sub(now.micros_since(last)),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_outs_follow_the_interval_a_flush_and_the_backlog() {
        let mut pacing = CommitPacing::new(100, 10, 1000);
        let idle = Backlog::default();
        assert!(
            pacing.is_due(Timestamp(0), &idle),
            "the first hand-out is due"
        );
        pacing.handed_out(Timestamp(1_000));
        assert!(!pacing.is_due(Timestamp(50_000), &idle));
        assert_eq!(pacing.poll_timeout(Timestamp(50_000)), 51_000);
        assert!(pacing.is_due(Timestamp(101_000), &idle));
        assert_eq!(pacing.poll_timeout(Timestamp(200_000)), 0);
        // Half a backlog bound, or a flush, makes it due at once.
        let half_logs = Backlog {
            logs_not_handed_out: 5,
            ..idle
        };
        assert!(pacing.is_due(Timestamp(2_000), &half_logs));
        let half_bytes = Backlog {
            pending_bytes: 500,
            ..idle
        };
        assert!(pacing.is_due(Timestamp(2_000), &half_bytes));
        pacing.hurry(40);
        assert!(pacing.is_due(
            Timestamp(2_000),
            &Backlog {
                watermark: 39,
                ..idle
            }
        ));
        assert!(!pacing.is_due(
            Timestamp(2_000),
            &Backlog {
                watermark: 40,
                ..idle
            }
        ));
        // A clock stepped back behind the last hand-out does not stall it.
        assert!(pacing.is_due(Timestamp(500), &idle));
        assert_eq!(pacing.poll_timeout(Timestamp(500)), 0);
    }
}
