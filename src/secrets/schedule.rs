//! When to refresh an ECR token (pure).

use std::time::{Duration, SystemTime};

/// ECR's documented token lifetime.
pub const DOCUMENTED_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// The shortest requeue, so a broken expiry can never cause a tight loop.
pub const MIN_REQUEUE: Duration = Duration::from_secs(10);

/// The expiry to plan with, and whether it was assumed: `override_lifetime` when set (tests);
/// else ECR's `expiresAt` when it is in the future; else the documented 12 hours.
pub fn effective_expiry(
    fetched_at: SystemTime,
    reported: Option<SystemTime>,
    override_lifetime: Option<Duration>,
) -> (SystemTime, bool) {
    if let Some(lifetime) = override_lifetime {
        return (fetched_at + lifetime, false);
    }
    match reported {
        Some(t) if t > fetched_at => (t, false),
        _ => (fetched_at + DOCUMENTED_LIFETIME, true),
    }
}

/// `fetched_at` + `fraction` of the lifetime, ±5 % of the lifetime of deterministic jitter per key.
pub fn refresh_at(fetched_at: SystemTime, expires_at: SystemTime, fraction: f64, key: &str) -> SystemTime {
    let lifetime = expires_at.duration_since(fetched_at).unwrap_or_default();
    let jitter = 0.2 * crate::jitter::unit_fraction(key) - 0.1; // ±0.1
    let share = (fraction.clamp(0.1, 0.9) + jitter / 2.0).clamp(0.05, 0.95);
    fetched_at + lifetime.mul_f64(share)
}

/// How long to wait before the next reconcile: until the refresh, at most `interval`, at least
/// [`MIN_REQUEUE`].
pub fn requeue_after(now: SystemTime, refresh_at: SystemTime, interval: Duration) -> Duration {
    refresh_at
        .duration_since(now)
        .unwrap_or_default()
        .clamp(MIN_REQUEUE, interval.max(MIN_REQUEUE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn expiry_in_the_past_or_missing_assumes_twelve_hours() {
        let now = t(2_000_000_000);
        assert_eq!(
            effective_expiry(now, Some(t(1_420_070_400)), None),
            (now + DOCUMENTED_LIFETIME, true),
            "moto's 2015"
        );
        assert_eq!(
            effective_expiry(now, None, None),
            (now + DOCUMENTED_LIFETIME, true)
        );
        assert_eq!(
            effective_expiry(now, Some(now + Duration::from_secs(3600)), None),
            (now + Duration::from_secs(3600), false)
        );
        assert_eq!(
            effective_expiry(now, Some(t(1)), Some(Duration::from_secs(60))),
            (now + Duration::from_secs(60), false)
        );
    }

    #[test]
    fn refresh_is_near_the_fraction_and_never_at_expiry() {
        let now = t(1_000_000);
        let expires = now + DOCUMENTED_LIFETIME;
        for key in ["a", "b", "c", "region|endpoint|identity"] {
            let at = refresh_at(now, expires, 0.5, key);
            let share = at.duration_since(now).unwrap().as_secs_f64() / DOCUMENTED_LIFETIME.as_secs_f64();
            assert!((0.45..=0.55).contains(&share), "{key}: {share}");
            assert_eq!(at, refresh_at(now, expires, 0.5, key), "deterministic");
        }
        let late = refresh_at(now, expires, 0.9, "a");
        assert!(late < expires);
    }

    #[test]
    fn requeue_is_clamped() {
        let now = t(1_000);
        assert_eq!(
            requeue_after(now, t(900), Duration::from_secs(600)),
            MIN_REQUEUE,
            "overdue: soon, not a spin"
        );
        assert_eq!(
            requeue_after(now, t(1_100), Duration::from_secs(600)),
            Duration::from_secs(100)
        );
        assert_eq!(
            requeue_after(now, t(100_000), Duration::from_secs(600)),
            Duration::from_secs(600)
        );
    }
}
