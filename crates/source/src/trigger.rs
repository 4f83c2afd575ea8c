//! Coalescing fetch triggers, and the poller that drives them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// A coalescing "fetch needed" flag for one repository.
///
/// Producers (the poller, webhooks, the file-system watch) call [`Trigger::notify`] as often as
/// they like; the repository's single fetch loop awaits [`Trigger::wait`] and then fetches:
///
/// ```no_run
/// # async fn fetch_once() {}
/// # async fn run(trigger: rollgit_source::Trigger) {
/// loop {
///     trigger.wait().await;
///     fetch_once().await;
/// }
/// # }
/// ```
///
/// Any number of `notify()` calls made while a fetch is pending (not yet picked up) collapse into
/// that fetch; any number made while a fetch is running produce exactly one more fetch after it.
/// So a storm of webhooks and polls costs at most two fetches, and no notification is lost: a
/// push that lands during a fetch is always seen by the next one.
///
/// Cloning gives another handle to the same flag. `wait` is meant for one consumer.
#[derive(Clone, Debug, Default)]
pub struct Trigger {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    pending: AtomicBool,
    wake: tokio::sync::Notify,
}

impl Trigger {
    /// A trigger with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask for a fetch. Never blocks; callable from any thread (including notify's watcher
    /// thread) and from async code.
    pub fn notify(&self) {
        self.inner.pending.store(true, Ordering::Release);
        // notify_one stores a permit when nobody waits, so a notification between the consumer's
        // check and its await is not lost.
        self.inner.wake.notify_one();
    }

    /// Wait until a fetch was asked for, and take the request: notifications arriving after
    /// this returns ask for the next fetch.
    pub async fn wait(&self) {
        loop {
            if self.inner.pending.swap(false, Ordering::AcqRel) {
                return;
            }
            self.inner.wake.notified().await;
        }
    }

    /// Whether a fetch was asked for and not yet taken by [`Trigger::wait`].
    pub fn is_pending(&self) -> bool {
        self.inner.pending.load(Ordering::Acquire)
    }
}

/// When to poll one repository: every `interval`, each delay moved by a jitter of at most
/// `jitter` either way, and the first poll after a random-looking offset in `[0, interval)`.
///
/// The jitter is not random: it is derived from SHA-256 of the repository URL (redact it first)
/// and the poll number, so the same repository polls on the same schedule in every run (tests
/// and restarts are reproducible) while different repositories are spread evenly over the
/// interval instead of all hitting their Git server at the same instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollSchedule {
    seed: [u8; 32],
    interval: Duration,
    jitter: Duration,
}

impl PollSchedule {
    /// A schedule for the repository at `url` with the default jitter of 10 % of `interval`.
    pub fn new(url: &str, interval: Duration) -> Self {
        Self::with_jitter(url, interval, interval / 10)
    }

    /// A schedule with an explicit maximum jitter (clamped to `interval / 2`).
    pub fn with_jitter(url: &str, interval: Duration, jitter: Duration) -> Self {
        PollSchedule {
            seed: Sha256::digest(url.as_bytes()).into(),
            interval,
            jitter: jitter.min(interval / 2),
        }
    }

    /// A number in `[0, 1)` derived from the URL and `n`.
    fn fraction(&self, n: u64) -> f64 {
        let mut hasher = Sha256::new();
        hasher.update(self.seed);
        hasher.update(n.to_le_bytes());
        let digest = hasher.finalize();
        let mut word = [0u8; 8];
        word.copy_from_slice(&digest[..8]);
        // 53 bits make an exactly representable f64 in [0, 1).
        (u64::from_le_bytes(word) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The delay before the first poll: a URL-derived offset in `[0, interval)`.
    pub fn initial_delay(&self) -> Duration {
        self.interval.mul_f64(self.fraction(u64::MAX))
    }

    /// The delay between poll `n` and poll `n + 1` (n from 0): `interval ± jitter`.
    pub fn delay(&self, n: u64) -> Duration {
        let offset = self.fraction(n) * 2.0 - 1.0; // [-1, 1)
        let jitter = self.jitter.as_secs_f64() * offset;
        Duration::from_secs_f64((self.interval.as_secs_f64() + jitter).max(0.0))
    }

    /// The configured interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

/// Notify `trigger` on `schedule` forever (until the task is dropped or aborted). A zero
/// interval never polls.
pub async fn poll(trigger: Trigger, schedule: PollSchedule) {
    if schedule.interval().is_zero() {
        return std::future::pending().await;
    }
    tokio::time::sleep(schedule.initial_delay()).await;
    let mut n = 0u64;
    loop {
        tracing::trace!(poll = n, "poll");
        trigger.notify();
        tokio::time::sleep(schedule.delay(n)).await;
        n = n.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn many_triggers_before_the_consumer_runs_make_one_fetch() {
        let trigger = Trigger::new();
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let t = trigger.clone();
                tokio::spawn(async move { t.notify() })
            })
            .collect();
        for t in tasks {
            t.await.expect("notify task");
        }
        trigger.wait().await;
        assert!(
            !trigger.is_pending(),
            "all 100 notifications were taken by one wait"
        );
    }

    /// 100 concurrent triggers while a fetch is running: exactly one more fetch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hundred_concurrent_triggers_during_a_fetch_make_at_most_two_fetches() {
        let trigger = Trigger::new();
        let fetches = Arc::new(AtomicUsize::new(0));
        let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));

        let consumer = {
            let trigger = trigger.clone();
            let fetches = fetches.clone();
            let gate = gate.clone();
            tokio::spawn(async move {
                loop {
                    trigger.wait().await;
                    let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
                    started_tx.send(n).expect("test alive");
                    // The "fetch" runs until the test lets it finish.
                    gate.acquire().await.expect("gate open").forget();
                }
            })
        };

        trigger.notify();
        assert_eq!(started_rx.recv().await, Some(1), "first fetch started");

        // 100 concurrent notifications while fetch 1 is running.
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let t = trigger.clone();
                tokio::spawn(async move { t.notify() })
            })
            .collect();
        for t in tasks {
            t.await.expect("notify task");
        }
        assert!(trigger.is_pending());

        gate.add_permits(1); // fetch 1 finishes
        assert_eq!(started_rx.recv().await, Some(2), "exactly one more fetch");
        assert!(
            !trigger.is_pending(),
            "the second fetch took every notification"
        );
        gate.add_permits(1); // fetch 2 finishes; nothing is pending, so no fetch 3
        // Prove the consumer is idle again: a new notification starts fetch 3, which it could
        // only do after it went back to waiting with nothing pending.
        trigger.notify();
        assert_eq!(started_rx.recv().await, Some(3));
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
        consumer.abort();
    }

    #[test]
    fn poll_schedule_is_deterministic_and_bounded() {
        let interval = Duration::from_secs(30);
        let a = PollSchedule::new("https://example.com/a.git", interval);
        let a_again = PollSchedule::new("https://example.com/a.git", interval);
        let b = PollSchedule::new("https://example.com/b.git", interval);
        assert_eq!(a.initial_delay(), a_again.initial_delay());
        assert_ne!(a.initial_delay(), b.initial_delay());
        assert!(a.initial_delay() < interval);
        for n in 0..1000 {
            let d = a.delay(n);
            assert_eq!(d, a_again.delay(n));
            assert!(
                d >= Duration::from_secs(27) && d <= Duration::from_secs(33),
                "{n}: {d:?}"
            );
        }
        // The jitter actually varies.
        assert_ne!(a.delay(0), a.delay(1));
    }

    #[test]
    fn poll_schedule_table() {
        struct Case {
            name: &'static str,
            interval: Duration,
            jitter: Duration,
            min: Duration,
            max: Duration,
        }
        let cases = [
            Case {
                name: "no_jitter",
                interval: Duration::from_secs(10),
                jitter: Duration::ZERO,
                min: Duration::from_secs(10),
                max: Duration::from_secs(10),
            },
            Case {
                name: "jitter_clamped_to_half_interval",
                interval: Duration::from_secs(10),
                jitter: Duration::from_secs(60),
                min: Duration::from_secs(5),
                max: Duration::from_secs(15),
            },
            Case {
                name: "one_second_jitter",
                interval: Duration::from_secs(60),
                jitter: Duration::from_secs(1),
                min: Duration::from_secs(59),
                max: Duration::from_secs(61),
            },
        ];
        for c in cases {
            let s = PollSchedule::with_jitter("file:///r.git", c.interval, c.jitter);
            for n in 0..200 {
                let d = s.delay(n);
                assert!(d >= c.min && d <= c.max, "case {}: poll {n}: {d:?}", c.name);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn poller_notifies_on_schedule() {
        let trigger = Trigger::new();
        let schedule = PollSchedule::new("file:///r.git", Duration::from_secs(30));
        let start = tokio::time::Instant::now();
        let task = tokio::spawn(poll(trigger.clone(), schedule.clone()));
        // Tokio's timer has millisecond resolution.
        let near =
            |got: Duration, want: Duration| got >= want && got <= want + Duration::from_millis(2);
        trigger.wait().await;
        let first = start.elapsed();
        assert!(near(first, schedule.initial_delay()), "{first:?}");
        trigger.wait().await;
        let second = start.elapsed() - first;
        assert!(near(second, schedule.delay(0)), "{second:?}");
        task.abort();
    }
}
