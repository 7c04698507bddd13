//! Warnings that a flood can repeat thousands of times a second (refused connections, failed
//! TLS handshakes) go through a [`Throttle`]: the first is logged, then at most one per
//! interval, each saying how many like it were held back, so a flood cannot fill the disk
//! with `master.log` while the master still reports it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a throttled warning may repeat.
pub(crate) const WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// At most one warning of a kind per interval.
#[derive(Debug)]
pub(crate) struct Throttle {
    interval: Duration,
    /// When the last warning went out, and how many were held back since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    /// A throttle letting one warning through per `interval`.
    pub(crate) const fn new(interval: Duration) -> Throttle {
        Throttle {
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(held back since the last one)` when this warning may be logged now.
    pub(crate) fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (last, held) = &mut *state;
        match last {
            Some(at) if now.saturating_duration_since(*at) < self.interval => {
                *held += 1;
                None
            }
            _ => {
                *last = Some(now);
                Some(std::mem::take(held))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_interval_with_the_count_held_back() {
        let throttle = Throttle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(throttle.allow_at(t0), Some(0));
        assert_eq!(throttle.allow_at(t0 + Duration::from_secs(1)), None);
        assert_eq!(throttle.allow_at(t0 + Duration::from_secs(9)), None);
        assert_eq!(throttle.allow_at(t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(throttle.allow_at(t0 + Duration::from_secs(25)), Some(0));
    }
}
