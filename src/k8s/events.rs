//! Kubernetes Events (`events.k8s.io/v1`, also readable as core `v1` Events) through kube's
//! recorder, which folds repeats of one event into a series instead of creating new objects.
//!
//! kube's recorder folds by object, reason and action only, so a second event with another
//! message would be shown with the first one's. Here one recorder serves each distinct
//! (object, reason, message): an exact repeat within [`SERIES_WINDOW`] becomes a series, a new
//! message a new Event.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The reporting controller's name on every Event.
pub const REPORTER: &str = "rollgit";
/// How long an exact repeat of an Event joins its series (kube's recorder keeps 6 minutes).
pub const SERIES_WINDOW: Duration = Duration::from_secs(5 * 60);

type SeriesKey = (
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
);

/// Publishes Events for any object (cheap to clone).
#[derive(Clone)]
pub struct Events {
    client: kube::Client,
    reporter: Reporter,
    series: Arc<Mutex<HashMap<SeriesKey, (Recorder, Instant)>>>,
}

/// Normal or Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Something happened as it should.
    Normal,
    /// Something needs a look.
    Warning,
}

impl Events {
    /// A recorder reporting as `rollgit` (instance: `$POD_NAME`, else the host name).
    pub fn new(client: kube::Client) -> Self {
        let instance = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .ok()
            .filter(|s| !s.is_empty());
        Self {
            client,
            reporter: Reporter {
                controller: REPORTER.into(),
                instance,
            },
            series: Arc::default(),
        }
    }

    /// The recorder of this exact event: the one that published it last, within the window.
    fn recorder(&self, regarding: &ObjectReference, reason: &str, note: &str) -> Recorder {
        let key = (
            regarding.namespace.clone(),
            regarding.kind.clone(),
            regarding.name.clone(),
            reason.to_string(),
            note.to_string(),
        );
        let now = Instant::now();
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        series.retain(|_, (_, at)| now.duration_since(*at) < SERIES_WINDOW);
        let (recorder, at) = series.entry(key).or_insert_with(|| {
            (
                Recorder::new(self.client.clone(), self.reporter.clone()),
                now,
            )
        });
        *at = now;
        recorder.clone()
    }

    /// Publishes an Event about `regarding` (best effort: a failure is logged, never fatal).
    /// `action` is what rollgit did (`Apply`, `Rollout`, `Record`); `reason` the CamelCase
    /// outcome; `note` the message, which must never hold secret data.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        severity: Severity,
        reason: &str,
        action: &str,
        note: &str,
    ) {
        let note = truncate(note, 1024);
        let recorder = self.recorder(regarding, reason, &note);
        let ev = Event {
            type_: match severity {
                Severity::Normal => EventType::Normal,
                Severity::Warning => EventType::Warning,
            },
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&ev, regarding).await {
            tracing::warn!(
                reason,
                object = regarding.name.as_deref().unwrap_or_default(),
                error = %crate::error_chain(&e),
                "publishing an event failed"
            );
        }
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The reference of an object for its Events.
pub fn reference(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.into()),
        kind: Some(kind.into()),
        name: Some(name.into()),
        namespace: namespace.map(str::to_string),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn notes_are_cut_at_a_character_boundary() {
        assert_eq!(super::truncate("héllo", 2), "h");
        assert_eq!(super::truncate("abc", 10), "abc");
    }
}
