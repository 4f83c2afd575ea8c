//! The clock the stages read (never `SystemTime` directly), so tests drive time instead of
//! waiting real seconds.
//!
//! [`SystemClock`] is the wall clock. [`ManualClock`] stands still until a test moves it with
//! [`ManualClock::advance`]; every move is announced on [`Clock::jumps`], which the
//! controllers treat as "look at everything again" (a timer that would have fired).

use futures::stream::BoxStream;
use k8s_openapi::jiff::Timestamp;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the shell reads the time.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Timestamp;

    /// A stream that yields each time the clock jumps (a test moved it); `None` for a clock
    /// that only flows (the wall clock), whose timers are real ones.
    fn jumps(&self) -> Option<BoxStream<'static, ()>>;

    /// Now, in whole seconds since the Unix epoch (what the pure core takes).
    fn now_unix(&self) -> i64 {
        self.now().as_second()
    }
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn jumps(&self) -> Option<BoxStream<'static, ()>> {
        None
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Timestamp>>,
    moved: tokio::sync::watch::Sender<u64>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        let (moved, _) = tokio::sync::watch::channel(0);
        Self {
            now: Arc::new(Mutex::new(start)),
            moved,
        }
    }

    /// A clock standing at the wall clock's now.
    pub fn starting_now() -> Self {
        Self::new(Timestamp::now())
    }

    /// Moves the clock forward by `by` and announces the jump.
    pub fn advance(&self, by: Duration) {
        {
            let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
            *now = now.saturating_add(by).unwrap_or(*now);
        }
        self.moved.send_modify(|n| *n += 1);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn jumps(&self) -> Option<BoxStream<'static, ()>> {
        let rx = self.moved.subscribe();
        Some(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn a_manual_clock_moves_only_when_told_and_says_so() {
        let start = Timestamp::from_second(1_700_000_000).expect("valid");
        let clock = ManualClock::new(start);
        let mut jumps = clock.jumps().expect("a manual clock jumps");
        assert_eq!(clock.now_unix(), 1_700_000_000);
        clock.advance(Duration::from_secs(61));
        assert_eq!(clock.now_unix(), 1_700_000_061);
        let jumped = tokio::time::timeout(Duration::from_secs(5), jumps.next()).await;
        assert_eq!(jumped, Ok(Some(())));
        assert!(SystemClock.jumps().is_none());
    }
}
