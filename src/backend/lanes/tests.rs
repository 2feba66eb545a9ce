//! The limiter on tokio's paused clock: every instant below is exact.

use super::*;

/// Spawns one waiter in `lane` that records when it was served.
fn waiter(limiter: &Arc<LaneLimiter>, lane: Lane, served: &Arc<Mutex<Vec<(Lane, Duration)>>>, t0: Instant) {
    let (limiter, served) = (limiter.clone(), served.clone());
    tokio::spawn(async move {
        limiter.until_ready(lane).await;
        served.lock().unwrap().push((lane, t0.elapsed()));
    });
}

fn limiter(rate: u32, burst: u32, share: f64) -> Arc<LaneLimiter> {
    Arc::new(LaneLimiter::new(
        NonZeroU32::new(rate).unwrap(),
        NonZeroU32::new(burst).unwrap(),
        share,
    ))
}

fn count(served: &Mutex<Vec<(Lane, Duration)>>, lane: Lane) -> usize {
    served.lock().unwrap().iter().filter(|(l, _)| *l == lane).count()
}

#[tokio::test(start_paused = true)]
async fn a_user_call_is_served_before_queued_background_calls() {
    let limiter = limiter(10, 1, 0.5);
    let t0 = Instant::now();
    // The one token of the burst goes at once; then one every 100 ms.
    assert_eq!(limiter.until_ready(Lane::Background).await, Duration::ZERO);
    let served = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..5 {
        waiter(&limiter, Lane::Background, &served, t0);
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    waiter(&limiter, Lane::User, &served, t0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let served = served.lock().unwrap().clone();
    assert_eq!(served.len(), 6, "{served:?}");
    // The user call, queued last, gets the next token (at 100 ms), ahead of all five.
    assert_eq!(served[0], (Lane::User, Duration::from_millis(100)), "{served:?}");
    assert!(served[1..].iter().all(|(lane, _)| *lane == Lane::Background));
    // Then background has the budget to itself again: one every 100 ms.
    assert_eq!(served[5].1, Duration::from_millis(600), "{served:?}");
}

#[tokio::test(start_paused = true)]
async fn background_keeps_its_share_under_constant_user_load() {
    for (share, background) in [(0.5, 50), (0.25, 25), (0.0, 0)] {
        let limiter = limiter(10, 1, share);
        let t0 = Instant::now();
        limiter.until_ready(Lane::User).await;
        let served = Arc::new(Mutex::new(Vec::new()));
        // More of each than ten seconds can serve: both lanes wait all the time.
        for _ in 0..200 {
            waiter(&limiter, Lane::Background, &served, t0);
            waiter(&limiter, Lane::User, &served, t0);
        }
        tokio::time::sleep(Duration::from_millis(10_050)).await;
        // 100 tokens in 10 s: the share goes to background, the rest to users.
        assert_eq!(count(&served, Lane::Background), background, "share {share}");
        assert_eq!(count(&served, Lane::User), 100 - background, "share {share}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_lane_alone_gets_the_whole_budget() {
    for lane in Lane::ALL {
        let limiter = limiter(10, 5, 0.5);
        let t0 = Instant::now();
        let served = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..55 {
            waiter(&limiter, lane, &served, t0);
        }
        // The burst of 5 at once, then 10 per second: 55 in 5 s, not in 10.
        tokio::time::sleep(Duration::from_millis(4_950)).await;
        assert_eq!(count(&served, lane), 54, "{lane:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(count(&served, lane), 55, "{lane:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_gives_up_takes_no_token() {
    let limiter = limiter(10, 1, 0.5);
    limiter.until_ready(Lane::User).await;
    let gave_up = tokio::time::timeout(Duration::from_millis(50), limiter.until_ready(Lane::User)).await;
    assert!(gave_up.is_err());
    let t0 = Instant::now();
    // The token due at 100 ms goes to the next caller, 50 ms after t0.
    assert_eq!(
        limiter.until_ready(Lane::Background).await,
        Duration::from_millis(50)
    );
    assert_eq!(t0.elapsed(), Duration::from_millis(50));
}

#[tokio::test]
async fn the_lane_is_the_scope_s_and_user_outside_any() {
    assert_eq!(current(), Lane::User);
    assert_eq!(
        scope(Lane::Background, async { current() }).await,
        Lane::Background
    );
    assert_eq!(scope(Lane::User, async { current() }).await, Lane::User);
}
