//! Deterministic jitter without an RNG: the same key always gets the same offset, so requeues of
//! many objects spread out and a restart does not reshuffle them. A leaf: imports nothing from
//! the crate.

use std::hash::{Hash, Hasher};
use std::time::Duration;

/// A fraction in [0, 1) derived from `key`.
pub fn unit_fraction(key: &str) -> f64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() % 10_000) as f64 / 10_000.0
}

/// `base` ± 10 %, deterministic per key.
pub fn jittered(base: Duration, key: &str) -> Duration {
    base.mul_f64(0.9 + 0.2 * unit_fraction(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_deterministic_and_within_ten_percent() {
        let base = Duration::from_secs(600);
        for key in ["a", "b", "some-uid"] {
            let d = jittered(base, key);
            assert_eq!(d, jittered(base, key));
            assert!(
                d >= Duration::from_secs(540) && d <= Duration::from_secs(660),
                "{d:?}"
            );
        }
        assert_ne!(jittered(base, "a"), jittered(base, "b"));
    }
}
