//! Prometheus metrics, served at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabels {
    repo: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppLabels {
    repo: String,
    app: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RepoLabels {
    repo: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppInfoLabels {
    app: String,
    namespace: String,
    phase: String,
    health: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RolloutLabels {
    /// `batch` (rollouts.rollgit.dev), `argo` or `kruise`.
    kind: String,
    namespace: String,
    rollout: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RolloutResultLabels {
    kind: String,
    namespace: String,
    rollout: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShardLabels {
    shard: String,
}

/// rollgit's metrics.
pub struct Metrics {
    leader: Family<ShardLabels, prometheus_client::metrics::gauge::Gauge>,
    registry: Mutex<Registry>,
    syncs: Family<SyncLabels, Counter>,
    sync_seconds: Family<RepoLabels, Histogram>,
    drift: Family<AppLabels, Counter>,
    render_errors: Family<RepoLabels, Counter>,
    webhooks: Family<SyncLabels, Counter>,
    app_info: Family<AppInfoLabels, Gauge>,
    /// The labels each app's info series has now, by (namespace, app).
    app_info_now: Mutex<HashMap<(String, String), AppInfoLabels>>,
    rollouts: Family<RolloutResultLabels, Counter>,
    rollbacks: Family<RolloutLabels, Counter>,
    step_seconds: Family<KindLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rollgit");
        let syncs = Family::<SyncLabels, Counter>::default();
        registry.register("syncs", "Syncs of a repository, by result", syncs.clone());
        let sync_seconds = Family::<RepoLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        });
        registry.register(
            "sync_duration_seconds",
            "Time from fetch to applied",
            sync_seconds.clone(),
        );
        let drift = Family::<AppLabels, Counter>::default();
        registry.register(
            "drift_corrections",
            "Objects re-applied because they drifted from Git",
            drift.clone(),
        );
        let render_errors = Family::<RepoLabels, Counter>::default();
        registry.register(
            "render_errors",
            "Apps rejected because their commit did not render",
            render_errors.clone(),
        );
        let webhooks = Family::<SyncLabels, Counter>::default();
        registry.register(
            "webhooks",
            "Webhook deliveries, by result",
            webhooks.clone(),
        );
        let app_info = Family::<AppInfoLabels, Gauge>::default();
        registry.register(
            "app_info",
            "One series per app, valued 1, labelled with its phase and health",
            app_info.clone(),
        );
        let rollouts = Family::<RolloutResultLabels, Counter>::default();
        registry.register(
            "rollouts",
            "Rollouts that finished, by kind (batch, argo, kruise) and result (succeeded, failed)",
            rollouts.clone(),
        );
        let rollbacks = Family::<RolloutLabels, Counter>::default();
        registry.register(
            "rollbacks",
            "Automatic rollbacks started after a failed rollout",
            rollbacks.clone(),
        );
        let step_seconds = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
            ])
        });
        registry.register(
            "rollout_step_duration_seconds",
            "Time from the start of a rollout step (a batch, a canary step) to its completion",
            step_seconds.clone(),
        );
        let leader = Family::<ShardLabels, prometheus_client::metrics::gauge::Gauge>::default();
        registry.register(
            "leader",
            "1 while this replica holds the shard's Lease (and so writes), else 0",
            leader.clone(),
        );
        Self {
            leader,
            registry: Mutex::new(registry),
            syncs,
            sync_seconds,
            drift,
            render_errors,
            webhooks,
            app_info,
            app_info_now: Mutex::new(HashMap::new()),
            rollouts,
            rollbacks,
            step_seconds,
        }
    }

    /// An app's phase and health now: its `rollgit_app_info` series moves to these labels.
    pub fn app_info(&self, namespace: &str, app: &str, phase: &str, health: &str) {
        let labels = AppInfoLabels {
            app: app.into(),
            namespace: namespace.into(),
            phase: phase.into(),
            health: health.into(),
        };
        let mut now = self.app_info_now.lock().unwrap_or_else(|p| p.into_inner());
        let key = (namespace.to_string(), app.to_string());
        if let Some(old) = now.get(&key)
            && *old != labels
        {
            self.app_info.remove(old);
        }
        self.app_info.get_or_create(&labels).set(1);
        now.insert(key, labels);
    }

    /// An app left Git: its info series goes.
    pub fn app_gone(&self, namespace: &str, app: &str) {
        let mut now = self.app_info_now.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = now.remove(&(namespace.to_string(), app.to_string())) {
            self.app_info.remove(&old);
        }
    }

    /// A rollout finished (`kind`: `batch`, `argo`, `kruise`).
    pub fn rollout_finished(&self, kind: &str, namespace: &str, rollout: &str, succeeded: bool) {
        self.rollouts
            .get_or_create(&RolloutResultLabels {
                kind: kind.into(),
                namespace: namespace.into(),
                rollout: rollout.into(),
                result: if succeeded { "succeeded" } else { "failed" }.into(),
            })
            .inc();
    }

    /// An automatic rollback started.
    pub fn rollback(&self, kind: &str, namespace: &str, rollout: &str) {
        self.rollbacks
            .get_or_create(&RolloutLabels {
                kind: kind.into(),
                namespace: namespace.into(),
                rollout: rollout.into(),
            })
            .inc();
    }

    /// A rollout step (a batch, a canary step) completed after `seconds`.
    pub fn step_done(&self, kind: &str, seconds: f64) {
        self.step_seconds
            .get_or_create(&KindLabels { kind: kind.into() })
            .observe(seconds.max(0.0));
    }

    /// A sync finished.
    pub fn sync(&self, repo: &str, result: &str, took: Duration) {
        self.syncs
            .get_or_create(&SyncLabels {
                repo: repo.into(),
                result: result.into(),
            })
            .inc();
        self.sync_seconds
            .get_or_create(&RepoLabels { repo: repo.into() })
            .observe(took.as_secs_f64());
    }

    /// An object was re-applied after drift.
    pub fn drift_corrected(&self, repo: &str, app: &str) {
        self.drift
            .get_or_create(&AppLabels {
                repo: repo.into(),
                app: app.into(),
            })
            .inc();
    }

    /// A commit did not render (counted once per commit by the caller).
    pub fn render_error(&self, repo: &str) {
        self.render_errors
            .get_or_create(&RepoLabels { repo: repo.into() })
            .inc();
    }

    /// This replica leads `shard` (or stopped leading it).
    pub fn leading(&self, shard: u32, leading: bool) {
        self.leader
            .get_or_create(&ShardLabels {
                shard: shard.to_string(),
            })
            .set(i64::from(leading));
    }

    /// A webhook arrived.
    pub fn webhook(&self, repo: &str, result: &str) {
        self.webhooks
            .get_or_create(&SyncLabels {
                repo: repo.into(),
                result: result.into(),
            })
            .inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_info_keeps_one_series_per_app() {
        let m = Metrics::new();
        m.app_info("default", "web", "unhealthy", "Progressing");
        m.app_info("default", "web", "running", "Healthy");
        m.app_info("default", "db", "running", "Unknown");
        let text = m.encode();
        assert!(
            text.contains(r#"rollgit_app_info{app="web",namespace="default",phase="running",health="Healthy"} 1"#),
            "{text}"
        );
        assert!(
            !text.contains(r#"phase="unhealthy""#),
            "the old series is gone: {text}"
        );
        m.app_gone("default", "db");
        assert!(!m.encode().contains(r#"app="db""#));
    }

    #[test]
    fn rollouts_rollbacks_and_steps_are_counted() {
        let m = Metrics::new();
        m.rollout_finished("batch", "default", "web", false);
        m.rollback("batch", "default", "web");
        m.step_done("batch", 1.5);
        let text = m.encode();
        assert!(
            text.contains(r#"rollgit_rollouts_total{kind="batch",namespace="default",rollout="web",result="failed"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"rollgit_rollbacks_total{kind="batch",namespace="default",rollout="web"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"rollgit_rollout_step_duration_seconds_count{kind="batch"} 1"#),
            "{text}"
        );
    }
}
