//! Prometheus metrics, served at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
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
        }
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

    /// An app's commit was rejected.
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
