//! The apply stage's discovery cache: which resources (and scopes) the cluster serves per
//! `apiVersion`, refreshed when a kind is missing from it and forgotten when a CRD changes
//! what a group serves.

use super::{Applier, ApplyError, Resources};
use futures::future;
use kube::core::{ApiResource, GroupVersion};
use kube::discovery::{self, ApiCapabilities};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use tracing::debug;

impl Applier {
    pub(super) fn cached(&self, api_version: &str) -> Option<Resources> {
        self.discovery
            .read()
            .ok()
            .and_then(|c| c.get(api_version).cloned())
    }

    pub(super) fn forget(&self, api_version: &str) {
        if let Ok(mut c) = self.discovery.write() {
            c.remove(api_version);
        }
    }

    /// Fetches the resources of `api_version` into the cache. `Ok(None)` when the server does
    /// not serve it (404).
    async fn refresh(&self, api_version: &str) -> Result<Option<Resources>, ApplyError> {
        let gv: GroupVersion = match api_version.parse() {
            Ok(gv) => gv,
            Err(_) => return Ok(None),
        };
        match discovery::pinned_group(&self.client, &gv).await {
            Ok(group) => {
                let res: Resources = Arc::new(group.versioned_resources(&gv.version));
                debug!(api_version, kinds = res.len(), "discovered");
                if let Ok(mut c) = self.discovery.write() {
                    c.insert(api_version.to_string(), res.clone());
                }
                Ok(Some(res))
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {
                self.forget(api_version);
                Ok(None)
            }
            Err(source) => Err(ApplyError::Discover {
                api_version: api_version.to_string(),
                source,
            }),
        }
    }

    /// Makes sure every `(apiVersion, kind)` needed is in the cache, refreshing each
    /// `apiVersion` that is missing or lacks a kind (once per call).
    pub(super) async fn ensure_discovered(
        &self,
        needed: &BTreeSet<(String, String)>,
    ) -> Result<(), ApplyError> {
        // Owned strings and `async move` blocks: futures built by closures over borrowed `&str`
        // are not `Send` for every lifetime, and the daemon spawns this on a multi-thread runtime.
        let stale: BTreeSet<String> = needed
            .iter()
            .filter(|(av, kind)| {
                self.cached(av)
                    .is_none_or(|res| !res.iter().any(|(ar, _)| &ar.kind == kind))
            })
            .map(|(av, _)| av.clone())
            .collect();
        let results = future::join_all(
            stale
                .into_iter()
                .map(|av| async move { self.refresh(&av).await }),
        )
        .await;
        for r in results {
            r?;
        }
        Ok(())
    }

    /// Whether `(apiVersion, kind)` is namespaced, as discovery says (`None`: not served).
    pub async fn is_namespaced(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<bool>, ApplyError> {
        let needed = BTreeSet::from([(api_version.to_string(), kind.to_string())]);
        self.ensure_discovered(&needed).await?;
        Ok(self
            .resolve(api_version, kind)
            .map(|(_, caps)| caps.scope == kube::discovery::Scope::Namespaced))
    }

    /// The resource of `(apiVersion, kind)` from the cache.
    pub(super) fn resolve(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Option<(ApiResource, ApiCapabilities)> {
        self.cached(api_version)?
            .iter()
            .find(|(ar, _)| ar.kind == kind)
            .cloned()
    }
}

/// Drops the cached discovery of the group versions a CRD serves.
pub(super) fn forget_crd_versions(applier: &Applier, crd: &Value) {
    let Some(group) = crd["spec"]["group"].as_str() else {
        return;
    };
    for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
        if let Some(version) = v["name"].as_str() {
            applier.forget(&format!("{group}/{version}"));
        }
    }
}
