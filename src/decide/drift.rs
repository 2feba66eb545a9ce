//! When to re-check an object that is in sync: evenly spread slots, and an interval that
//! stretches when the background share of the ECR budget cannot check every object once per
//! interval.

use std::time::Duration;

/// Pure: how long from `now` (since the Unix epoch) until the object's next check slot. Slots
/// sit at `phase` (the object's fixed fraction in [0, 1), from its UID) of every `interval`
/// counted from the epoch, so objects spread evenly over the interval, and any process (after a
/// restart, or a new leader) computes the same slots without any record of the last check. The
/// next slot is the first at least `min_gap` from now (after a check, half an interval, so a
/// check made out of turn is not repeated at once).
pub fn next_slot(now: Duration, interval: Duration, phase: f64, min_gap: Duration) -> Duration {
    let period = interval.as_millis().max(1);
    let offset = (phase.clamp(0.0, 1.0) * period as f64).round() as u128 % period;
    let earliest = now.as_millis() + min_gap.as_millis();
    // The first slot (offset + k * period) at or after `earliest`.
    let k = earliest.saturating_sub(offset).div_ceil(period);
    let slot = offset + k * period;
    Duration::from_millis(u64::try_from(slot - now.as_millis()).unwrap_or(u64::MAX))
}

/// Pure: how much longer than asked objects must wait between checks so that their checks fit
/// the background share of the ECR budget: `demand` (ECR calls per second the checks need at
/// their asked intervals) over `rate` × `share` calls per second, at least 1. With a share of 0
/// background has no guaranteed part, and only the whole rate bounds it.
pub fn stretch(demand: f64, rate: u32, share: f64) -> f64 {
    let share = if share > 0.0 { share.min(1.0) } else { 1.0 };
    let capacity = f64::from(rate.max(1)) * share;
    (demand / capacity).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn slots_table() {
        let s = Duration::from_secs;
        // (now, interval, phase, min gap, delay)
        let cases = [
            // Phase 0.25 of 10 minutes: slots at 150 s, 750 s, ...
            (s(0), s(600), 0.25, s(0), s(150)),
            (s(100), s(600), 0.25, s(0), s(50)),
            (s(150), s(600), 0.25, s(0), s(0)),
            (s(151), s(600), 0.25, s(0), s(599)),
            // After a check at its slot, the next is one interval later.
            (s(150), s(600), 0.25, s(300), s(600)),
            // A check made out of turn 100 s before its slot skips that slot.
            (s(50), s(600), 0.25, s(300), s(700)),
            // Far from the epoch.
            (s(1_800_000_150), s(600), 0.25, s(0), s(0)),
            (s(1_800_000_000), s(600), 0.5, s(300), s(300)),
            // A stretched interval moves the slots with it.
            (s(0), s(1000), 0.25, s(0), s(250)),
        ];
        for (now, interval, phase, gap, expected) in cases {
            assert_eq!(
                next_slot(now, interval, phase, gap),
                expected,
                "now {now:?} interval {interval:?} phase {phase} gap {gap:?}"
            );
        }
    }

    #[test]
    fn slots_spread_evenly_and_agree_across_processes() {
        // 600 objects with phases i/600 over 10 minutes: exactly one slot per second.
        let now = Duration::from_secs(1_800_000_000);
        let mut delays: Vec<u64> = (0..600)
            .map(|i| next_slot(now, 10 * MIN, f64::from(i) / 600.0, Duration::ZERO).as_secs())
            .collect();
        delays.sort_unstable();
        assert_eq!(delays, (0..600).collect::<Vec<_>>());
        // A new process an hour later finds each object's slot at the same phase.
        let later = now + 60 * MIN;
        for i in 0..600 {
            let phase = f64::from(i) / 600.0;
            let a = now + next_slot(now, 10 * MIN, phase, Duration::ZERO);
            let b = later + next_slot(later, 10 * MIN, phase, Duration::ZERO);
            assert_eq!((b - a).as_secs() % 600, 0, "object {i}");
        }
    }

    #[test]
    fn stretch_table() {
        // (demand calls/s, rate, share, stretch)
        let cases = [
            // 10,000 Repositories at 10 minutes: 16.7 calls/s, over half of 20.
            (10_000.0 / 600.0, 20, 0.5, 10_000.0 / 600.0 / 10.0),
            // 1,000 fit.
            (1_000.0 / 600.0, 20, 0.5, 1.0),
            // Exactly the share.
            (10.0, 20, 0.5, 1.0),
            // No guaranteed share: only the whole rate bounds it.
            (30.0, 20, 0.0, 1.5),
            (0.0, 20, 0.5, 1.0),
        ];
        for (demand, rate, share, expected) in cases {
            let got = stretch(demand, rate, share);
            assert!((got - expected).abs() < 1e-9, "{demand} {rate} {share}: {got}");
        }
    }
}
