//! Two lanes in one ECR budget: user-driven work (a new object, a spec change, a deletion, a
//! requested reconcile) is served before background work (drift checks, preview refreshes),
//! within the same per-registry-identity rate limit.
//!
//! The lane travels with the work, not through the backend's API: the driver runs `sync` and
//! `cleanup` inside [`scope`], and [`EcrBackend`](super::ecr::EcrBackend)'s one choke point asks
//! [`current`]. So no `RegistryBackend` method, cache or controller had to change, and a call
//! made outside any scope (nothing the driver classified) is in the user lane: it is never held
//! back.
//!
//! [`LaneLimiter`] is a token bucket (`rate` per second, `burst` at most) whose tokens go, while
//! calls of both lanes wait, to the user lane except for a `background_share` of them; a lane
//! alone gets every token. Waiters of one lane are served in arrival order.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

/// Which part of the ECR budget a call draws on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lane {
    /// What a user is waiting for: served first.
    User,
    /// Periodic re-checks of objects already in sync: the rest of the budget, and at least
    /// `--ecr-background-share` of it while user calls wait.
    Background,
}

impl Lane {
    /// Both lanes, in priority order.
    pub const ALL: [Lane; 2] = [Lane::User, Lane::Background];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::User => "user",
            Lane::Background => "background",
        }
    }

    fn index(self) -> usize {
        match self {
            Lane::User => 0,
            Lane::Background => 1,
        }
    }
}

tokio::task_local! {
    static LANE: Lane;
}

/// Runs `fut` with every ECR call it makes (in this task) in `lane`.
pub async fn scope<F: Future>(lane: Lane, fut: F) -> F::Output {
    LANE.scope(lane, fut).await
}

/// The lane of the running task: [`Lane::User`] outside any [`scope`].
pub fn current() -> Lane {
    LANE.try_with(|lane| *lane).unwrap_or(Lane::User)
}

/// A token bucket with two lanes (see the module documentation).
pub struct LaneLimiter {
    shared: Arc<Shared>,
}

/// One token, in the bucket's unit: token-nanoseconds, so that accrual is exact integer
/// arithmetic (`rate` of them per nanosecond) and a waiter wakes exactly when its token is there.
const TOKEN: u128 = 1_000_000_000;

struct Shared {
    rate: u128,
    burst: u128,
    background_share: f64,
    state: Mutex<State>,
}

struct State {
    /// In units of [`TOKEN`].
    tokens: u128,
    refilled: Instant,
    /// Waiters by lane (`Lane::index`), oldest first.
    queues: [VecDeque<oneshot::Sender<()>>; 2],
    /// Background's accrued share while both lanes wait: a token goes to it at each whole one.
    background_credit: f64,
    /// Whether the task handing out tokens to waiters runs.
    pumping: bool,
}

impl State {
    fn refill(&mut self, now: Instant, rate: u128, burst: u128) {
        let elapsed = now.saturating_duration_since(self.refilled).as_nanos();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.refilled = now;
    }

    /// The lane the next token goes to, if any waits.
    fn pick(&mut self, background_share: f64) -> Option<Lane> {
        let user = !self.queues[Lane::User.index()].is_empty();
        let background = !self.queues[Lane::Background.index()].is_empty();
        match (user, background) {
            (true, true) => {
                self.background_credit += background_share;
                if self.background_credit >= 1.0 - 1e-9 {
                    self.background_credit -= 1.0;
                    Some(Lane::Background)
                } else {
                    Some(Lane::User)
                }
            }
            (true, false) => {
                self.background_credit = 0.0;
                Some(Lane::User)
            }
            (false, true) => {
                self.background_credit = 0.0;
                Some(Lane::Background)
            }
            (false, false) => None,
        }
    }
}

impl LaneLimiter {
    /// `rate` calls per second, bursts of `burst`, and `background_share` (0 to 1) of the tokens
    /// for background calls while user calls wait. Starts full, like the bucket it replaces.
    pub fn new(rate: NonZeroU32, burst: NonZeroU32, background_share: f64) -> Self {
        let burst = u128::from(burst.get()) * TOKEN;
        Self {
            shared: Arc::new(Shared {
                rate: u128::from(rate.get()),
                burst,
                background_share: background_share.clamp(0.0, 1.0),
                state: Mutex::new(State {
                    tokens: burst,
                    refilled: Instant::now(),
                    queues: [VecDeque::new(), VecDeque::new()],
                    background_credit: 0.0,
                    pumping: false,
                }),
            }),
        }
    }

    /// Waits for a token in `lane`; returns how long it waited.
    pub async fn until_ready(&self, lane: Lane) -> Duration {
        let start = Instant::now();
        let ticket = {
            let mut state = self.shared.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.refill(start, self.shared.rate, self.shared.burst);
            if state.queues.iter().all(VecDeque::is_empty) && state.tokens >= TOKEN {
                state.tokens -= TOKEN;
                return Duration::ZERO;
            }
            let (tx, rx) = oneshot::channel();
            state.queues[lane.index()].push_back(tx);
            if !state.pumping {
                state.pumping = true;
                tokio::spawn(pump(self.shared.clone()));
            }
            rx
        };
        // An error means the pump is gone (the runtime shuts down): go ahead rather than hang.
        let _ = ticket.await;
        start.elapsed()
    }
}

/// Hands out tokens to waiters as they accrue, until no call waits.
async fn pump(shared: Arc<Shared>) {
    loop {
        let sleep = {
            let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.refill(Instant::now(), shared.rate, shared.burst);
            // Callers that gave up (their reconcile was cancelled) take no token.
            for queue in &mut state.queues {
                while queue.front().is_some_and(oneshot::Sender::is_closed) {
                    queue.pop_front();
                }
            }
            if state.tokens >= TOKEN {
                let Some(lane) = state.pick(shared.background_share) else {
                    state.pumping = false;
                    return;
                };
                if let Some(waiter) = state.queues[lane.index()].pop_front()
                    && waiter.send(()).is_ok()
                {
                    state.tokens -= TOKEN;
                }
                continue;
            }
            if state.queues.iter().all(VecDeque::is_empty) {
                state.pumping = false;
                return;
            }
            let nanos = (TOKEN - state.tokens).div_ceil(shared.rate);
            Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
        };
        tokio::time::sleep(sleep).await;
    }
}

#[cfg(test)]
mod tests;
