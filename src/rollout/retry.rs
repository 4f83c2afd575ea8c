//! The retries of every executor's controller, written once: per object, a capped exponential
//! backoff with jitter (reset by a successful pass) and a count of its repeated error, so that
//! an error that keeps coming back is logged at each doubling, not at every attempt; and the
//! controller's action for each class of error.

use crate::ErrorClass;
use backon::BackoffBuilder;
use kube::runtime::controller::Action;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

/// The longest delay between two passes of a failing object: with the API server back, every
/// executor resumes within this (and the watches' own backoff, [`crate::k8s::WatchBackoff`]).
pub const RETRY_MAX: Duration = Duration::from_secs(3);

/// The failures of a controller's objects.
pub struct Failures<K> {
    all: Mutex<HashMap<K, (backon::ExponentialBackoff, crate::Repeats)>>,
}

impl<K: Hash + Eq + Clone> Default for Failures<K> {
    fn default() -> Self {
        Self {
            all: Mutex::new(HashMap::new()),
        }
    }
}

fn policy() -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(RETRY_MAX)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
}

/// What to do after a failed pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// When to pass again (`None`: at the object's next change).
    pub after: Option<Duration>,
    /// `Some(count)` when the error should be logged (at each doubling of a repeated error).
    pub log: Option<u64>,
}

impl Retry {
    /// The controller's action.
    pub fn action(&self) -> Action {
        self.after
            .map_or_else(Action::await_change, Action::requeue)
    }
}

impl<K: Hash + Eq + Clone> Failures<K> {
    /// Notes that `key`'s pass failed with `error` of `class`.
    pub fn failed(&self, key: &K, error: &str, class: ErrorClass) -> Retry {
        let mut all = self.all.lock().unwrap_or_else(|p| p.into_inner());
        let (backoff, repeats) = all
            .entry(key.clone())
            .or_insert_with(|| (policy().build(), crate::Repeats::default()));
        let after = match class {
            ErrorClass::Transient => Some(backoff.next().unwrap_or(RETRY_MAX)),
            ErrorClass::Requeue(d) => Some(d),
            ErrorClass::Terminal => None,
        };
        Retry {
            after,
            log: repeats.note(error),
        }
    }

    /// `key`'s pass succeeded: its backoff and its count start over.
    pub fn succeeded(&self, key: &K) {
        let mut all = self.all.lock().unwrap_or_else(|p| p.into_inner());
        all.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_capped_errors_logged_at_each_doubling_and_a_success_starts_over() {
        let f: Failures<&str> = Failures::default();
        let mut logged = Vec::new();
        let mut longest = Duration::ZERO;
        for _ in 0..20 {
            let r = f.failed(&"r", "boom", ErrorClass::Transient);
            let after = r.after.expect("a transient error is retried");
            assert!(after >= Duration::from_millis(200), "{after:?}");
            longest = longest.max(after);
            logged.extend(r.log);
        }
        assert_eq!(logged, [1, 2, 4, 8, 16]);
        // Jitter adds at most one more delay to the capped one.
        assert!(longest <= RETRY_MAX * 2, "{longest:?}");
        let r = f.failed(&"r", "boom", ErrorClass::Terminal);
        assert_eq!((r.after, r.action()), (None, Action::await_change()));
        let r = f.failed(&"r", "other", ErrorClass::Requeue(Duration::from_secs(7)));
        assert_eq!(r.action(), Action::requeue(Duration::from_secs(7)));
        assert_eq!(r.log, Some(1), "a new error is logged at once");
        f.succeeded(&"r");
        let r = f.failed(&"r", "other", ErrorClass::Transient);
        assert_eq!(r.log, Some(1), "after a success the count starts over");
        assert!(
            r.after.is_some_and(|d| d <= Duration::from_millis(400)),
            "{r:?}"
        );
    }
}
