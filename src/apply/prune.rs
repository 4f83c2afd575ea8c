//! Prune: deleting what left an app, only when its live copy is still labelled as the app's,
//! in the reverse of the apply order ([`super::order::prune_order`]).

use super::order::prune_order;
use super::{Applier, ApplyError, error_text};
use crate::k8s::{APP_LABEL, ObjRef};
use futures::StreamExt;
use kube::api::DeleteParams;
use std::collections::BTreeSet;
use tracing::{debug, info, warn};

impl Applier {
    /// Deletes `gone` in the reverse of the apply order. Returns what was deleted and what
    /// failed.
    pub(super) async fn prune(
        &self,
        app: &str,
        gone: Vec<ObjRef>,
    ) -> Result<(Vec<ObjRef>, Vec<(ObjRef, String)>), ApplyError> {
        let needed: BTreeSet<(String, String)> = gone
            .iter()
            .map(|r| (r.api_version(), r.kind.clone()))
            .collect();
        self.ensure_discovered(&needed).await?;
        let stages = prune_order(gone);
        let mut pruned = Vec::new();
        let mut failed = Vec::new();
        for stage in stages {
            let futs: Vec<_> = stage
                .into_iter()
                .map(|r| async move {
                    let res = self.prune_one(app, &r).await;
                    (r, res)
                })
                .collect();
            let results: Vec<(ObjRef, Result<bool, String>)> = futures::stream::iter(futs)
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
            for (r, res) in results {
                match res {
                    Ok(true) => pruned.push(r),
                    Ok(false) => {}
                    Err(message) => failed.push((r, message)),
                }
            }
        }
        pruned.sort();
        failed.sort();
        Ok((pruned, failed))
    }

    /// Deletes one object if it is still this app's. `Ok(false)` when it is gone already or
    /// belongs to someone else now.
    async fn prune_one(&self, app: &str, r: &ObjRef) -> Result<bool, String> {
        let is_secret = r.group.is_empty() && r.kind == "Secret";
        let Some((ar, _)) = self.resolve(&r.api_version(), &r.kind) else {
            // The kind is no longer served (its CRD left): nothing to delete.
            debug!(object = %r, "kind no longer served: nothing to prune");
            return Ok(false);
        };
        let api = self.api_for(&ar, r.namespace.as_deref());
        let meta = match api.get_metadata_opt(&r.name).await {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(false),
            Err(e) => {
                return Err(format!(
                    "reading before prune: {}",
                    error_text(&e, is_secret)
                ));
            }
        };
        let owner = meta
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(APP_LABEL))
            .map(String::as_str);
        if owner != Some(app) {
            warn!(object = %r, owner = owner.unwrap_or(""), "not pruned: not labelled as this app's");
            return Ok(false);
        }
        match api.delete(&r.name, &DeleteParams::background()).await {
            Ok(_) => {
                info!(object = %r, "pruned");
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(format!("prune: {}", error_text(&e, is_secret))),
        }
    }
}
