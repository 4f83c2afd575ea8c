//! rollgit: a GitOps reconciler. Git is the source of truth: rollgit follows repositories,
//! renders what it finds, applies it with server-side apply, runs batched rollouts, corrects
//! drift and records status (and every rollback) where it survives a restart.
//!
//! The pipeline, one module (or crate) per stage, imports pointing one way (down):
//!
//! ```text
//! source ──► render ──► plan ──► apply ──► rollout ──► record
//! (crate)    (crate)    plan/    apply/    rollout/    record/
//! ```
//!
//! * [`k8s`], [`clock`], [`metrics`]: the lowest layer every stage uses;
//! * [`config`]: the configuration, validated once;
//! * [`plan`], [`apply`], [`rollout`], [`record`]: the stages of the shell;
//! * [`daemon`]: wiring, and the per-repository worker;
//! * [`api`]: the HTTP surface (webhooks, health, metrics);
//! * [`demo`]: the demo repository `rollgit up` follows;
//! * the commands are the binary's (`src/cli/`), at the edge: no stage uses them.
//!
//! See `ARCHITECTURE.md` for where a change belongs.

pub mod api;
pub mod apply;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod k8s;
pub mod metrics;
pub mod plan;
pub mod promote;
pub mod record;
pub mod rollout;

use std::time::Duration;

/// How a failed operation is retried: the one vocabulary of the daemon's and the
/// controllers' retry policies. Ordered from the most to the least urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorClass {
    /// Retrying later may succeed: retry with a capped exponential backoff.
    Transient,
    /// Look again after this delay (something is on its way).
    Requeue(Duration),
    /// Retrying the same input fails the same way: wait for a change (a new commit, an edit).
    Terminal,
}

impl ErrorClass {
    /// The class of a Kubernetes API error: a request the server refuses as invalid (400,
    /// 413, 415, 422) is terminal; anything else (transport, 5xx, 404 of something on its
    /// way, 409 conflicts, 429, permissions an admin may grant) is transient.
    pub fn of_kube(e: &kube::Error) -> Self {
        match e {
            kube::Error::Api(s) if matches!(s.code, 400 | 413 | 415 | 422) => ErrorClass::Terminal,
            kube::Error::SerdeError(_) => ErrorClass::Terminal,
            _ => ErrorClass::Transient,
        }
    }
}

/// Aborts a task when dropped (a task that lives as long as its owner's scope).
#[derive(Debug)]
pub struct AbortOnDrop(pub tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Counts repeats of one failure, so that an error that keeps coming back is logged at each
/// doubling (the 1st, 2nd, 4th, 8th, ... time, with the count) instead of at every attempt.
#[derive(Debug, Default)]
pub struct Repeats {
    last: Option<String>,
    count: u64,
}

impl Repeats {
    /// Notes one occurrence of `message`; `Some(count)` when this one should be logged.
    pub fn note(&mut self, message: &str) -> Option<u64> {
        if self.last.as_deref() == Some(message) {
            self.count += 1;
        } else {
            self.last = Some(message.to_string());
            self.count = 1;
        }
        self.count.is_power_of_two().then_some(self.count)
    }

    /// The failure is over.
    pub fn clear(&mut self) {
        self.last = None;
        self.count = 0;
    }
}

/// An error with its whole chain of causes, `outer: cause: root cause`, as logs and messages
/// show it.
/// Kubernetes API errors and transport failures are said plainly ([`k8s::explain`]).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    use k8s::explain::Said;
    let mut out = String::new();
    let mut cause = Some(e);
    // HTTP and TLS stacks nest errors; stop at a cycle a custom `source` might make.
    for _ in 0..32 {
        let Some(c) = cause else { break };
        let (text, last) = match k8s::explain::say(c) {
            Said::AsIs => (c.to_string(), false),
            Said::Skip => (String::new(), false),
            Said::Words(w) => (w, false),
            Said::Last(w) => (w, true),
        };
        if !text.is_empty() && !out.ends_with(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        if last {
            break;
        }
        cause = c.source();
    }
    if out.is_empty() {
        out = e.to_string();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn an_error_is_shown_with_its_causes() {
        let e = Outer(std::io::Error::other("root cause"));
        assert_eq!(error_chain(&e), "outer: root cause");
    }

    #[test]
    fn a_repeated_failure_is_logged_at_each_doubling() {
        let mut r = Repeats::default();
        let logged: Vec<Option<u64>> = (0..9).map(|_| r.note("down")).collect();
        assert_eq!(
            logged,
            [
                Some(1),
                Some(2),
                None,
                Some(4),
                None,
                None,
                None,
                Some(8),
                None
            ]
        );
        assert_eq!(
            r.note("another"),
            Some(1),
            "a different failure starts again"
        );
        r.clear();
        assert_eq!(r.note("another"), Some(1));
    }

    #[test]
    fn kube_errors_are_classed_by_status_code() {
        let api = |code: u16| {
            kube::Error::Api(Box::new(
                kube::core::Status::failure("x", "Invalid").with_code(code),
            ))
        };
        assert_eq!(ErrorClass::of_kube(&api(422)), ErrorClass::Terminal);
        assert_eq!(ErrorClass::of_kube(&api(400)), ErrorClass::Terminal);
        assert_eq!(ErrorClass::of_kube(&api(409)), ErrorClass::Transient);
        assert_eq!(ErrorClass::of_kube(&api(503)), ErrorClass::Transient);
        assert_eq!(ErrorClass::of_kube(&api(404)), ErrorClass::Transient);
        assert!(ErrorClass::Transient < ErrorClass::Requeue(Duration::from_secs(1)));
        assert!(ErrorClass::Requeue(Duration::from_secs(1)) < ErrorClass::Terminal);
    }
}
