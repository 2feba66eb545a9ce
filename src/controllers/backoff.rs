//! Per-object exponential backoff for transient errors (kube has no per-key backoff of its own).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::jitter::jittered;

/// Per-object exponential backoff for transient errors: 5 s × 2ⁿ, at most 5 min, ± 10 %.
#[derive(Default)]
pub struct ErrorBackoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl ErrorBackoff {
    /// The delay before the next retry of `key`, counting this failure.
    pub fn next_delay(&self, key: &str) -> Duration {
        let n = match self.failures.lock() {
            Ok(mut map) => {
                let n = map.entry(key.to_owned()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            }
            Err(_) => 1,
        };
        let base = Duration::from_secs(5)
            .saturating_mul(1u32 << (n - 1).min(6))
            .min(Duration::from_secs(300));
        jittered(base, &format!("{key}/{n}"))
    }

    /// Forgets the failures of `key` (after a success, or when the object is gone).
    pub fn reset(&self, key: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_5s_caps_at_5min_and_resets() {
        let b = ErrorBackoff::default();
        let delays: Vec<u64> = (0..9).map(|_| b.next_delay("uid-1").as_secs()).collect();
        let bases = [5u64, 10, 20, 40, 80, 160, 300, 300, 300];
        for (d, base) in delays.iter().zip(bases) {
            assert!(
                *d as f64 >= base as f64 * 0.9 - 1.0 && *d as f64 <= base as f64 * 1.1,
                "{delays:?}"
            );
        }
        b.reset("uid-1");
        assert!(b.next_delay("uid-1") <= Duration::from_millis(5500));
    }
}
