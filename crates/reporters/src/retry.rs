//! Retry policy for deliveries: exponential backoff with jitter, and when to give up.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How long to wait before attempt `n + 1` after `n` failures: `base * 2^(n-1)`, capped at
/// `max`, then scaled by a random factor in [0.5, 1] so that many messages failing at once
/// (an SMTP server that went down) do not retry in lockstep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure (before jitter).
    pub base: Duration,
    /// Largest delay.
    pub max: Duration,
    /// Attempts after which a message is marked failed.
    pub max_attempts: i64,
}

impl Backoff {
    /// 30 s doubling to 1 h, 40 attempts: a message keeps trying for more than a day.
    pub const DEFAULT: Backoff = Backoff {
        base: Duration::from_secs(30),
        max: Duration::from_secs(3600),
        max_attempts: 40,
    };

    /// The default, or `SIGNALBOX_OUTBOX_RETRY=BASE_MS:MAX_MS` (for tests and benchmarks).
    pub fn from_env() -> Backoff {
        let Ok(text) = std::env::var("SIGNALBOX_OUTBOX_RETRY") else {
            return Backoff::DEFAULT;
        };
        let parsed = text
            .split_once(':')
            .and_then(|(b, m)| Some((b.trim().parse().ok()?, m.trim().parse().ok()?)));
        match parsed {
            Some((base, max)) => Backoff {
                base: Duration::from_millis(base),
                max: Duration::from_millis(max),
                max_attempts: Backoff::DEFAULT.max_attempts,
            },
            None => {
                tracing::warn!(value = %text, "SIGNALBOX_OUTBOX_RETRY is not BASE_MS:MAX_MS; using the default backoff");
                Backoff::DEFAULT
            }
        }
    }

    /// The delay after `failures` failed attempts (at least 1).
    pub fn delay(&self, failures: i64) -> Duration {
        let exponent = u32::try_from(failures.clamp(1, 32) - 1).unwrap_or(0);
        let full = self
            .base
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.max);
        full.mul_f64(0.5 + 0.5 * unit_random())
    }

    /// True when a message that has failed `failures` times should be given up.
    pub fn exhausted(&self, failures: i64) -> bool {
        failures >= self.max_attempts
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
            max_attempts: 5,
        };
        for (failures, full) in [(1, 10), (2, 20), (3, 40), (4, 60), (30, 60)] {
            let d = b.delay(failures);
            let full = Duration::from_secs(full);
            assert!(d <= full && d >= full / 2, "{failures}: {d:?} vs {full:?}");
        }
        assert!(!b.exhausted(4));
        assert!(b.exhausted(5));
    }
}
