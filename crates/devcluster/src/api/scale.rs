//! The `scale` subresource: an object seen as an `autoscaling/v1` Scale, and replica changes
//! written back through the main resource's rules.

use super::query::Query;
use super::{Ctx, value_response};
use crate::error::{ApiError, Cause};
use crate::selector::LabelSelector;
use crate::table;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::HashMap;

impl Ctx {
    pub(super) fn scale_of(&self, obj: &Value) -> Result<Value, ApiError> {
        let paths = self.rt.scale.as_ref().ok_or_else(ApiError::no_route)?;
        let at = |p: &str| table::json_path(obj, p).into_iter().next();
        let spec = at(&paths.spec_replicas)
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        let status = at(&paths.status_replicas)
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        let selector = match &paths.label_selector {
            Some(p) if self.rt.crd.is_none() => {
                LabelSelector::from_object(&obj["spec"]["selector"])
                    .map(|s| s.to_query())
                    .unwrap_or_else(|_| {
                        at(p)
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default()
                    })
            }
            Some(p) => at(p)
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            None => String::new(),
        };
        let m = &obj["metadata"];
        let mut status_obj = json!({"replicas": status});
        if !selector.is_empty() {
            status_obj["selector"] = json!(selector);
        }
        Ok(json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
            },
            "spec": {"replicas": spec},
            "status": status_obj,
        }))
    }

    pub(super) fn update_scale<F>(
        &self,
        name: &str,
        manager: &str,
        change: F,
    ) -> Result<Response, ApiError>
    where
        F: FnOnce(Value) -> Result<Value, ApiError>,
    {
        let paths = self.rt.scale.clone().ok_or_else(ApiError::no_route)?;
        let dry = self.query.dry_run()?;
        let (g, p) = self.gr_name();
        let written = self.srv.store.write(&self.key(name), dry, |cur, _| {
            let cur = cur.ok_or_else(|| ApiError::not_found(g, p, name))?;
            let obj = self.present_value(cur);
            let scale = self.scale_of(&obj)?;
            let new_scale = change(scale)?;
            if let Some(rv) = new_scale["metadata"]["resourceVersion"].as_str()
                && !rv.is_empty()
                && rv != cur.meta.rv.to_string()
            {
                return Err(ApiError::stale(g, p, name));
            }
            let replicas = new_scale["spec"]["replicas"].as_i64().ok_or_else(|| {
                ApiError::invalid(
                    "autoscaling",
                    "Scale",
                    name,
                    vec![Cause::required("spec.replicas")],
                )
            })?;
            if replicas < 0 {
                return Err(ApiError::invalid(
                    "autoscaling",
                    "Scale",
                    name,
                    vec![Cause::invalid(
                        "spec.replicas",
                        &json!(replicas),
                        "must be greater than or equal to 0",
                    )],
                ));
            }
            let mut new = obj.clone();
            set_path(&mut new, &paths.spec_replicas, json!(replicas));
            // The scale subresource writes through the main resource's rules.
            let main = Ctx {
                srv: self.srv.clone(),
                rt: self.rt.clone(),
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                sub: None,
                query: Query(HashMap::new()),
                headers: HeaderMap::new(),
                warnings: self.warnings.clone(),
                user: self.user.clone(),
            };
            let _ = &main;
            main.finish_update(cur, new, manager, true)
        })?;
        let e = written
            .entry
            .ok_or_else(|| ApiError::not_found(g, p, name))?;
        Ok(value_response(
            200,
            &self.scale_of(&self.present_value(&e))?,
        ))
    }
}

fn set_path(obj: &mut Value, path: &str, v: Value) {
    let segs: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let mut cur = obj;
    for (i, s) in segs.iter().enumerate() {
        if i == segs.len() - 1 {
            cur[*s] = v;
            return;
        }
        if !cur[*s].is_object() {
            cur[*s] = json!({});
        }
        cur = &mut cur[*s];
    }
}
