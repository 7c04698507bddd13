//! Retry policy for deliveries: exponential backoff with jitter, and when to give up.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How long to wait before attempt `n + 1` after `n` failures: `base * 2^(n-1)`, capped at
/// `max`, then scaled by a random factor in [0.5, 1] so that many messages failing at once
/// (an SMTP server that went down) do not retry in lockstep.
///
/// The cap is what decides how soon mail flows again after an outage: whatever the outage
/// lasted, every queued message is tried again at most `max` after the server is back. The
/// default schedule (before jitter) is 15 s, 30 s, 1 min, 2 min, 4 min, then every 5 min;
/// so mail queued during a two-minute outage goes out within 5 min of its end, mostly much
/// sooner, and a day-long outage costs about 300 attempts per message, one every few
/// minutes. A message is given up (marked failed) only when it is older than `give_up_after`,
/// counted from when it was recorded, not after a number of attempts: a short backoff must
/// not turn a long outage into lost mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure (before jitter).
    pub base: Duration,
    /// Largest delay.
    pub max: Duration,
    /// Age (since the message was recorded) after which a failing message is marked failed.
    pub give_up_after: Duration,
}

impl Backoff {
    /// 15 s doubling to 5 min; messages are kept trying for three days.
    pub const DEFAULT: Backoff = Backoff {
        base: Duration::from_secs(15),
        max: Duration::from_secs(300),
        give_up_after: Duration::from_secs(3 * 24 * 3600),
    };

    /// The default, or `SIGNALBOX_OUTBOX_RETRY=BASE_MS:MAX_MS` (for tests and benchmarks;
    /// the give-up age stays the default).
    pub fn from_env() -> Backoff {
        let Ok(text) = std::env::var("SIGNALBOX_OUTBOX_RETRY") else {
            return Backoff::DEFAULT;
        };
        match Backoff::parse(&text) {
            Some(backoff) => backoff,
            None => {
                tracing::warn!(value = %text, "SIGNALBOX_OUTBOX_RETRY is not BASE_MS:MAX_MS with BASE_MS <= MAX_MS; using the default backoff");
                Backoff::DEFAULT
            }
        }
    }

    /// `BASE_MS:MAX_MS`.
    fn parse(text: &str) -> Option<Backoff> {
        let (base, max) = text.split_once(':')?;
        let base: u64 = base.trim().parse().ok()?;
        let max: u64 = max.trim().parse().ok()?;
        (base > 0 && base <= max).then_some(Backoff {
            base: Duration::from_millis(base),
            max: Duration::from_millis(max),
            give_up_after: Backoff::DEFAULT.give_up_after,
        })
    }

    /// The delay after `failures` failed attempts (at least 1).
    pub fn delay(&self, failures: i64) -> Duration {
        self.ceiling(failures).mul_f64(0.5 + 0.5 * unit_random())
    }

    /// The delay after `failures` failed attempts before jitter: the longest it can be.
    pub fn ceiling(&self, failures: i64) -> Duration {
        let exponent = u32::try_from(failures.clamp(1, 32) - 1).unwrap_or(0);
        self.base
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.max)
    }

    /// True when a message recorded at `created_at` should be given up at `now` (seconds
    /// since the epoch).
    pub fn exhausted(&self, created_at: i64, now: i64) -> bool {
        let age = u64::try_from(now.saturating_sub(created_at)).unwrap_or(0);
        age >= self.give_up_after.as_secs()
    }
}

/// A random number in [0, 1), from the standard library's per-process random keys.
fn unit_random() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter() {
        let b = Backoff {
            base: Duration::from_secs(10),
            max: Duration::from_secs(60),
            give_up_after: Duration::from_secs(1000),
        };
        for (failures, full) in [(1, 10), (2, 20), (3, 40), (4, 60), (30, 60), (1000, 60)] {
            let d = b.delay(failures);
            let full = Duration::from_secs(full);
            assert!(d <= full && d >= full / 2, "{failures}: {d:?} vs {full:?}");
        }
    }

    #[test]
    fn gives_up_by_age_not_by_attempts() {
        let b = Backoff::DEFAULT;
        let recorded = 1_000_000;
        assert!(!b.exhausted(recorded, recorded + 3600));
        assert!(!b.exhausted(recorded, recorded + 3 * 24 * 3600 - 1));
        assert!(b.exhausted(recorded, recorded + 3 * 24 * 3600));
        // A clock that went backwards never gives up early.
        assert!(!b.exhausted(recorded, recorded - 10));
    }

    #[test]
    fn the_default_schedule_resumes_within_five_minutes() {
        let full: Vec<u64> = (1..=8)
            .map(|n| Backoff::DEFAULT.ceiling(n).as_secs())
            .collect();
        assert_eq!(full, vec![15, 30, 60, 120, 240, 300, 300, 300]);
        assert!(Backoff::DEFAULT.delay(1_000) <= Duration::from_secs(300));
    }

    #[test]
    fn environment_override() {
        let b = Backoff::parse("300:1000").expect("parses");
        assert_eq!(b.base, Duration::from_millis(300));
        assert_eq!(b.max, Duration::from_millis(1000));
        assert_eq!(b.give_up_after, Backoff::DEFAULT.give_up_after);
        assert_eq!(Backoff::parse("1000:300"), None);
        assert_eq!(Backoff::parse("0:300"), None);
        assert_eq!(Backoff::parse("fast"), None);
    }
}
