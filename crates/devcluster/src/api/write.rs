//! Writes: create, update (PUT), delete and deletecollection, and what every write shares:
//! identity checks, server-set metadata, defaulting and validation, generation bumps, no-op
//! detection, and registering a CRD's types once it is stored.

use super::query::{Query, manager_of, matches};
use super::{Ctx, value_response};
use crate::admission;
use crate::error::{ApiError, Cause};
use crate::fields;
use crate::resources::{GroupResource, ResourceType};
use crate::store::{Change, Entry, ObjKey};
use crate::time::now_rfc3339;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

/// Whether two versions of an object are the same but for resourceVersion and managedFields
/// timestamps (a no-op write), compared in place.
fn same_ignoring_volatile(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    if a.len() != b.len() {
        return false;
    }
    a.iter().all(|(k, va)| {
        let Some(vb) = b.get(k) else { return false };
        if k != "metadata" {
            return va == vb;
        }
        let (Some(ma), Some(mb)) = (va.as_object(), vb.as_object()) else {
            return va == vb;
        };
        let keys = |m: &serde_json::Map<String, Value>| {
            m.iter()
                .filter(|(k, _)| k.as_str() != "resourceVersion")
                .count()
        };
        keys(ma) == keys(mb)
            && ma.iter().all(|(mk, x)| match mk.as_str() {
                "resourceVersion" => true,
                "managedFields" => managed_fields_equal(x, mb.get(mk).unwrap_or(&Value::Null)),
                _ => mb.get(mk) == Some(x),
            })
    })
}

fn managed_fields_equal(a: &Value, b: &Value) -> bool {
    match (a.as_array(), b.as_array()) {
        (Some(a), Some(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| match (x.as_object(), y.as_object()) {
                        (Some(x), Some(y)) => {
                            x.iter().filter(|(k, _)| k.as_str() != "time").count()
                                == y.iter().filter(|(k, _)| k.as_str() != "time").count()
                                && x.iter().all(|(k, v)| k == "time" || y.get(k) == Some(v))
                        }
                        _ => x == y,
                    })
        }
        _ => a == b,
    }
}

/// Whether the parts of two objects that make up their spec (all but metadata, status,
/// apiVersion and kind) are equal.
fn spec_equal(a: &Value, b: &Value) -> bool {
    const SKIP: [&str; 4] = ["metadata", "status", "apiVersion", "kind"];
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let count = |m: &serde_json::Map<String, Value>| {
        m.keys().filter(|k| !SKIP.contains(&k.as_str())).count()
    };
    count(a) == count(b)
        && a.iter()
            .filter(|(k, _)| !SKIP.contains(&k.as_str()))
            .all(|(k, v)| b.get(k) == Some(v))
}

/// Namespaces kube-apiserver never lets anyone delete.
const IMMORTAL_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

fn has_generation(rt: &ResourceType) -> bool {
    rt.crd.is_some()
        || matches!(
            rt.kind.as_str(),
            "Deployment"
                | "ReplicaSet"
                | "StatefulSet"
                | "DaemonSet"
                | "CustomResourceDefinition"
                | "Ingress"
                | "Pod"
                | "Job"
                | "CronJob"
        )
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let u = uuid::Uuid::new_v4();
    u.as_bytes()[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

impl Ctx {
    pub(super) fn namespace_admits(&self, ns: &str) -> Result<(), ApiError> {
        let key = ObjKey {
            gr: GroupResource {
                group: String::new(),
                resource: "namespaces".into(),
            },
            namespace: String::new(),
            name: ns.to_string(),
        };
        match self.srv.store.get(&key) {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(e) if e.meta.deleting => Err(ApiError::forbidden(format!(
                "{} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                crate::error::qualified(&self.rt.group, &self.rt.plural)
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Checks apiVersion/kind/namespace of a body against the URL and fills them in.
    pub(super) fn check_identity(&self, obj: &mut Value) -> Result<(), ApiError> {
        let want_api = self.rt.api_version();
        match obj["apiVersion"].as_str() {
            None | Some("") => obj["apiVersion"] = json!(want_api),
            Some(a) if a == want_api => {}
            Some(a) => {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({a}) does not match the expected API version ({want_api})"
                )));
            }
        }
        match obj["kind"].as_str() {
            None | Some("") => obj["kind"] = json!(self.rt.kind),
            Some(k) if k == self.rt.kind => {}
            Some(k) => {
                return Err(ApiError::bad_request(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    self.rt.kind
                )));
            }
        }
        if !obj["metadata"].is_object() {
            if obj["metadata"].is_null() {
                obj["metadata"] = json!({});
            } else {
                return Err(ApiError::bad_request("metadata must be an object"));
            }
        }
        if self.rt.namespaced {
            let path_ns = self.namespace.clone().unwrap_or_default();
            match obj["metadata"]["namespace"].as_str() {
                None | Some("") => obj["metadata"]["namespace"] = json!(path_ns),
                Some(n) if n == path_ns => {}
                Some(_) => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
            }
        } else if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        Ok(())
    }

    /// RBAC's escalation prevention (the policy-based storage of roles and bindings): a user
    /// outside `system:masters` may write a Role or ClusterRole only with the `escalate` verb
    /// on it or holding every permission it grants, and a binding only with the `bind` verb on
    /// the role or holding every permission of the role. Reads the store: never call it with
    /// the store locked.
    fn check_rbac_escalation(&self, old: Option<&Value>, new: &Value) -> Result<(), ApiError> {
        use crate::auth::rbac::{self, Policy, Rule};
        if self.rt.group != rbac::GROUP || self.user.is_privileged() {
            return Ok(());
        }
        let name = new["metadata"]["name"].as_str().unwrap_or_default();
        let namespace = if self.rt.namespaced {
            self.namespace.clone().unwrap_or_default()
        } else {
            String::new()
        };
        let allowed = |verb: &str, resource: &str, target: &str| {
            let attrs = crate::auth::Attributes {
                verb: verb.into(),
                resource_request: true,
                group: rbac::GROUP.into(),
                resource: resource.into(),
                name: target.into(),
                namespace: namespace.clone(),
                ..crate::auth::Attributes::default()
            };
            self.srv.authorize(&self.user, &attrs).is_ok()
        };
        let requested: Vec<Rule> = match self.rt.kind.as_str() {
            kind @ ("Role" | "ClusterRole") => {
                if old.is_some_and(|o| {
                    o["rules"] == new["rules"] && o["aggregationRule"] == new["aggregationRule"]
                }) {
                    return Ok(());
                }
                if allowed("escalate", &self.rt.plural, name) {
                    return Ok(());
                }
                let rules: Vec<Rule> = new["rules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(Rule::from_json)
                    .collect();
                if kind == "ClusterRole" && new["aggregationRule"].is_object() {
                    let all = [
                        Rule {
                            verbs: vec!["*".into()],
                            api_groups: vec!["*".into()],
                            resources: vec!["*".into()],
                            ..Rule::default()
                        },
                        Rule {
                            verbs: vec!["*".into()],
                            non_resource_urls: vec!["*".into()],
                            ..Rule::default()
                        },
                    ];
                    let policy = Policy::read(&self.srv.store, None);
                    let (owner, _) = policy.rules_for(&self.user, "");
                    if !rbac::missing(&owner, &all).is_empty() {
                        return Err(ApiError::forbidden_resource(
                            rbac::GROUP,
                            &self.rt.plural,
                            name,
                            "must have cluster-admin privileges to use the aggregationRule",
                        ));
                    }
                }
                rules
            }
            _ => {
                let same = |k: &str| old.is_some_and(|o| o[k] == new[k]);
                let meta_same =
                    |k: &str| old.is_some_and(|o| o["metadata"][k] == new["metadata"][k]);
                if same("roleRef")
                    && same("subjects")
                    && meta_same("labels")
                    && meta_same("annotations")
                {
                    return Ok(());
                }
                let kind = new["roleRef"]["kind"].as_str().unwrap_or_default();
                let role = new["roleRef"]["name"].as_str().unwrap_or_default();
                let resource = if kind == "Role" {
                    "roles"
                } else {
                    "clusterroles"
                };
                if allowed("bind", resource, role) {
                    return Ok(());
                }
                let policy = Policy::read(&self.srv.store, Some(&namespace));
                policy
                    .role_ref_rules(kind, role, &namespace)
                    .map_err(|_| ApiError::not_found(rbac::GROUP, resource, role))?
            }
        };
        let policy = Policy::read(&self.srv.store, Some(&namespace));
        let (owner, errors) = policy.rules_for(&self.user, &namespace);
        let missing = rbac::missing(&owner, &requested);
        if missing.is_empty() {
            return Ok(());
        }
        Err(ApiError::forbidden_resource(
            rbac::GROUP,
            &self.rt.plural,
            name,
            &rbac::escalation_message(&self.user, &missing, &errors),
        ))
    }

    /// Prepares a new object for creation: identity, server-set metadata, defaults, validation.
    pub(super) fn prepare_create(
        &self,
        mut obj: Value,
        manager: &str,
        applied: bool,
    ) -> Result<Value, ApiError> {
        self.check_rbac_escalation(None, &obj)?;
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            match obj["metadata"]["generateName"].as_str() {
                Some(g) if !g.is_empty() => {
                    let base: String = g.chars().take(58).collect();
                    obj["metadata"]["name"] = json!(format!("{base}{}", random_suffix()));
                }
                _ => {
                    return Err(ApiError::invalid(
                        &self.rt.group,
                        &self.rt.kind,
                        "",
                        vec![Cause {
                            reason: "FieldValueRequired".into(),
                            message: "Required value: name or generateName is required".into(),
                            field: "metadata.name".into(),
                        }],
                    ));
                }
            }
        }
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // Server-side apply checks the namespace before taking the store's lock (`applied`):
        // reading the store from inside a write would deadlock.
        if self.rt.namespaced && !applied {
            self.namespace_admits(self.namespace.as_deref().unwrap_or_default())?;
        }
        if let Some(rv) = obj["metadata"]["resourceVersion"].as_str()
            && !rv.is_empty()
            && !applied
        {
            return Err(ApiError::internal(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let now = now_rfc3339();
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("resourceVersion");
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(now));
            if has_generation(&self.rt) {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
            if !applied {
                m.remove("managedFields");
            }
        }
        if self.rt.status
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        admission::apply_defaults(&self.rt, &mut obj, || self.srv.allocate_ip());
        self.initial_status(&mut obj);
        let causes = admission::validate(&self.rt, &mut obj, None);
        if !causes.is_empty() {
            return Err(ApiError::invalid(
                &self.rt.group,
                &self.rt.kind,
                &name,
                causes,
            ));
        }
        if !applied {
            obj = fields::record_update(None, obj, manager, None, &self.rt, &now)?;
        }
        Ok(obj)
    }

    fn initial_status(&self, obj: &mut Value) {
        match (self.rt.group.as_str(), self.rt.kind.as_str()) {
            ("", "Namespace") => obj["status"] = json!({"phase": "Active"}),
            ("", "Pod") => obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"}),
            ("", "Service") => obj["status"] = json!({"loadBalancer": {}}),
            ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                let now = now_rfc3339();
                let names = obj["spec"]["names"].clone();
                obj["status"] = json!({
                    "acceptedNames": names,
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
                    ],
                    "storedVersions": obj["spec"]["versions"].as_array().into_iter().flatten().filter(|v| v["storage"] == true).map(|v| v["name"].clone()).collect::<Vec<_>>(),
                });
            }
            _ => {}
        }
    }

    pub(super) fn after_write(&self, e: &Entry, deleted: bool) {
        if self.rt.kind == "CustomResourceDefinition" && self.rt.crd.is_none() {
            let v = e.value();
            let name = v["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            {
                let mut reg = self.srv.registry_write();
                if deleted {
                    reg.remove_crd(&name);
                } else {
                    reg.set_crd(&name, crate::resources::from_crd(&v));
                }
                self.srv.generation.fetch_add(1, Ordering::Relaxed);
            }
            if !deleted {
                self.establish(&name);
            }
        }
    }

    /// Sets a CRD's `Established` condition once its resource is served (as kube-apiserver's
    /// establishing controller does after the names are accepted), so that a client waiting
    /// for it (`kubectl wait --for condition=established`) finds the resource there.
    fn establish(&self, name: &str) {
        let res = self.srv.store.write(&self.key(name), false, |cur, _| {
            let Some(cur) = cur else {
                return Ok(Change::Unchanged);
            };
            let mut v = cur.value();
            let established = v["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            });
            if established || cur.meta.deleting {
                return Ok(Change::Unchanged);
            }
            let condition = json!({"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now_rfc3339()});
            match v["status"]["conditions"].as_array_mut() {
                Some(cs) => cs.push(condition),
                None => v["status"]["conditions"] = json!([condition]),
            }
            Ok(Change::Put(v))
        });
        if let Err(e) = res {
            tracing::warn!(crd = name, error = ?e, "could not set the CRD's Established condition");
        }
    }

    pub(super) fn create(
        &self,
        mut obj: Value,
        duplicates: Vec<String>,
    ) -> Result<Response, ApiError> {
        if self.sub.is_some() {
            return Err(ApiError::method_not_allowed(
                "create is not allowed on a subresource",
            ));
        }
        self.check_identity(&mut obj)?;
        self.decode_request_object(&mut obj, duplicates, "CreateOptions")?;
        let manager = manager_of(&self.query, &self.headers)?;
        let dry = self.query.dry_run()?;
        let obj = self.prepare_create(obj, &manager, false)?;
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (g, p) = self.gr_name();
        let written = self.srv.store.write(&self.key(&name), dry, |cur, _| {
            if cur.is_some() {
                return Err(ApiError::already_exists(g, p, &name));
            }
            Ok(Change::Put(obj))
        })?;
        let e = written
            .entry
            .ok_or_else(|| ApiError::internal("create stored nothing"))?;
        if !dry {
            self.after_write(&e, false);
        }
        self.respond_entry(201, &e)
    }

    /// Turns a proposed full object into the stored one for an update of `current`.
    pub(super) fn finish_update(
        &self,
        current: &Entry,
        mut new: Value,
        manager: &str,
        record_fields: bool,
    ) -> Result<Change, ApiError> {
        let old = current.value();
        let name = old["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Some(rv) = new["metadata"]["resourceVersion"].as_str()
            && !rv.is_empty()
            && rv != current.meta.rv.to_string()
        {
            return Err(ApiError::stale(&self.rt.group, &self.rt.plural, &name));
        }
        let sub = self.sub.as_deref();
        let now = now_rfc3339();
        if sub.is_none() {
            self.check_rbac_escalation(Some(&old), &new)?;
        }
        if sub == Some("status") {
            let mut merged = old.clone();
            merged["status"] = new["status"].take();
            if merged["status"].is_null()
                && let Some(m) = merged.as_object_mut()
            {
                m.remove("status");
            }
            if record_fields {
                merged["metadata"]["managedFields"] = old["metadata"]["managedFields"].clone();
            } else {
                merged["metadata"]["managedFields"] = new["metadata"]["managedFields"].take();
            }
            new = merged;
        } else {
            for k in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "name",
                "namespace",
            ] {
                match old["metadata"].get(k) {
                    Some(v) => new["metadata"][k] = v.clone(),
                    None => {
                        if let Some(m) = new["metadata"].as_object_mut() {
                            m.remove(k);
                        }
                    }
                }
            }
            if self.rt.status {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            if self.rt.kind == "Service" && new["spec"]["clusterIP"].is_null() {
                new["spec"]["clusterIP"] = old["spec"]["clusterIP"].clone();
                new["spec"]["clusterIPs"] = old["spec"]["clusterIPs"].clone();
            }
            if self.rt.kind == "Namespace" {
                new["spec"] = old["spec"].clone();
            }
            admission::apply_defaults(&self.rt, &mut new, || self.srv.allocate_ip());
            let mut causes = admission::validate(&self.rt, &mut new, Some(&old));
            causes.extend(admission::validate_immutable(&self.rt, &old, &new));
            if !causes.is_empty() {
                return Err(ApiError::invalid(
                    &self.rt.group,
                    &self.rt.kind,
                    &name,
                    causes,
                ));
            }
            // As kube-apiserver: a custom resource without a status subresource counts its
            // status as part of what `generation` tracks.
            let status_changed =
                self.rt.crd.is_some() && !self.rt.status && old.get("status") != new.get("status");
            if has_generation(&self.rt) && (!spec_equal(&old, &new) || status_changed) {
                let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                new["metadata"]["generation"] = json!(g);
            }
        }
        if record_fields {
            new["metadata"]["managedFields"] = old["metadata"]["managedFields"].clone();
            new = fields::record_update(Some(&old), new, manager, sub, &self.rt, &now)?;
        }
        new["metadata"]["resourceVersion"] = json!(current.meta.rv.to_string());
        if new["metadata"]["deletionTimestamp"].is_string()
            && new["metadata"]["finalizers"]
                .as_array()
                .is_none_or(Vec::is_empty)
        {
            return Ok(Change::Delete);
        }
        if same_ignoring_volatile(&new, &old) {
            return Ok(Change::Unchanged);
        }
        Ok(Change::Put(new))
    }

    pub(super) fn commit_update<F>(
        &self,
        name: &str,
        allow_create: bool,
        build: F,
    ) -> Result<Response, ApiError>
    where
        F: FnMut(Option<&Entry>) -> Result<Option<Change>, ApiError>,
    {
        let dry = self.query.dry_run()?;
        let (g, p) = self.gr_name();
        let mut build = build;
        let written =
            self.srv
                .store
                .write_optimistic(&self.key(name), dry, |cur| match build(cur)? {
                    Some(c) => Ok(c),
                    None if allow_create => Err(ApiError::internal("no object to create")),
                    None => Err(ApiError::not_found(g, p, name)),
                })?;
        let created = written.created;
        let deleted = written.deleted;
        let e = written
            .entry
            .ok_or_else(|| ApiError::not_found(g, p, name))?;
        if !dry {
            self.after_write(&e, deleted);
        }
        self.respond_entry(if created { 201 } else { 200 }, &e)
    }

    pub(super) fn update(
        &self,
        name: &str,
        mut obj: Value,
        duplicates: Vec<String>,
    ) -> Result<Response, ApiError> {
        let manager = manager_of(&self.query, &self.headers)?;
        if self.sub.as_deref() == Some("scale") {
            self.decode_request_object(&mut obj, duplicates, "UpdateOptions")?;
            return self.update_scale(name, &manager, |_| Ok(obj));
        }
        self.check_identity(&mut obj)?;
        self.decode_request_object(&mut obj, duplicates, "UpdateOptions")?;
        if obj["metadata"]["name"].as_str() != Some(name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                obj["metadata"]["name"].as_str().unwrap_or_default()
            )));
        }
        self.commit_update(name, false, |cur| {
            let Some(cur) = cur else { return Ok(None) };
            self.finish_update(cur, obj.clone(), &manager, true)
                .map(Some)
        })
    }

    fn delete_options(&self, body: &[u8]) -> Result<Value, ApiError> {
        let mut opts = if body.is_empty() {
            json!({})
        } else {
            serde_json::from_slice::<Value>(body)
                .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
        };
        if let Some(p) = self.query.get("propagationPolicy") {
            opts["propagationPolicy"] = json!(p);
        }
        if let Some(p) = opts["propagationPolicy"].as_str() {
            if !["Foreground", "Background", "Orphan"].contains(&p) {
                return Err(ApiError::bad_request(format!(
                    "propagationPolicy: Unsupported value: {p:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
                )));
            }
        } else if opts["orphanDependents"].as_bool() == Some(true) {
            opts["propagationPolicy"] = json!("Orphan");
        }
        Ok(opts)
    }

    pub(super) fn delete(&self, name: &str, body: &[u8]) -> Result<Response, ApiError> {
        if self.sub.is_some() {
            return Err(ApiError::method_not_allowed(
                "delete is not allowed on a subresource",
            ));
        }
        let opts = self.delete_options(body)?;
        // The NamespaceLifecycle admission plugin: these namespaces are immortal.
        if self.rt.group.is_empty()
            && self.rt.kind == "Namespace"
            && IMMORTAL_NAMESPACES.contains(&name)
        {
            return Err(ApiError::forbidden_resource(
                "",
                "namespaces",
                name,
                "this namespace may not be deleted",
            ));
        }
        let dry = self.query.dry_run()?
            || opts["dryRun"]
                .as_array()
                .is_some_and(|a| a.iter().any(|d| d == "All"));
        let policy = opts["propagationPolicy"]
            .as_str()
            .unwrap_or("Background")
            .to_string();
        let key = self.key(name);
        let (g, p) = self.gr_name();
        if policy == "Orphan"
            && !dry
            && let Some(e) = self.srv.store.get(&key)
        {
            crate::gc::orphan_dependents(&self.srv.store, &e.meta.uid);
        }
        let written = self.srv.store.write(&key, dry, |cur, _| {
            let cur = cur.ok_or_else(|| ApiError::not_found(g, p, name))?;
            let mut v = cur.value();
            let pre = &opts["preconditions"];
            if let Some(uid) = pre["uid"].as_str()
                && uid != cur.meta.uid {
                    return Err(ApiError::stale(g, p, name).with_message(format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        cur.meta.uid
                    )));
                }
            if let Some(rv) = pre["resourceVersion"].as_str()
                && rv != cur.meta.rv.to_string() {
                    return Err(ApiError::stale(g, p, name).with_message(format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        cur.meta.rv
                    )));
                }
            let mut finalizers: Vec<Value> = v["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
            let is_namespace = self.rt.kind == "Namespace" && self.rt.group.is_empty();
            if policy == "Foreground" && !finalizers.iter().any(|f| f == "foregroundDeletion") && !cur.meta.deleting {
                finalizers.push(json!("foregroundDeletion"));
            }
            if finalizers.is_empty() && !is_namespace {
                return Ok(Change::Delete);
            }
            if cur.meta.deleting && v["metadata"]["finalizers"].as_array().map(Vec::len) == Some(finalizers.len()) && !is_namespace {
                return Ok(Change::Unchanged);
            }
            if !cur.meta.deleting {
                v["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
                v["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                if has_generation(&self.rt) {
                    let g = v["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                    v["metadata"]["generation"] = json!(g);
                }
            }
            if !finalizers.is_empty() {
                v["metadata"]["finalizers"] = Value::Array(finalizers);
            }
            if is_namespace {
                v["status"]["phase"] = json!("Terminating");
            }
            Ok(Change::Put(v))
        })?;
        let e = written
            .entry
            .ok_or_else(|| ApiError::not_found(g, p, name))?;
        if !dry && written.deleted {
            self.after_write(&e, true);
        }
        let code = if written.deleted { 200 } else { 202 };
        self.respond_entry(code, &e)
    }

    pub(super) fn delete_collection(&self, body: &[u8]) -> Result<Response, ApiError> {
        let (label, field) = self.query.selectors(&self.rt.kind)?;
        let ns = if self.rt.namespaced {
            self.namespace.as_deref()
        } else {
            None
        };
        let (_, entries) = self.srv.store.list(&self.rt.storage_key(), ns, None);
        let mut deleted = Vec::new();
        for (key, e) in &entries {
            if !matches(&label, &field, &self.rt, &key.namespace, &key.name, e) {
                continue;
            }
            let ctx = Ctx {
                srv: self.srv.clone(),
                rt: self.rt.clone(),
                namespace: Some(key.namespace.clone()).filter(|n| !n.is_empty()),
                name: Some(key.name.clone()),
                sub: None,
                query: Query(self.query.0.clone()),
                headers: HeaderMap::new(),
                warnings: self.warnings.clone(),
                user: self.user.clone(),
            };
            match ctx.delete(&key.name, body) {
                Ok(_) => deleted.push(e.value()),
                Err(err) if err.code == 404 => {}
                Err(err) => return Err(err),
            }
        }
        Ok(value_response(
            200,
            &json!({
                "kind": format!("{}List", self.rt.kind),
                "apiVersion": self.rt.api_version(),
                "metadata": {"resourceVersion": self.srv.store.current_rv().to_string()},
                "items": deleted,
            }),
        ))
    }
}

trait WithMessage {
    fn with_message(self, m: String) -> Self;
}

impl WithMessage for ApiError {
    fn with_message(mut self, m: String) -> Self {
        self.message = m;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_volatile(v: &Value) -> Value {
        let mut v = v.clone();
        if let Some(m) = v["metadata"].as_object_mut() {
            m.remove("resourceVersion");
            if let Some(mf) = m.get_mut("managedFields").and_then(Value::as_array_mut) {
                for e in mf {
                    if let Some(e) = e.as_object_mut() {
                        e.remove("time");
                    }
                }
            }
        }
        v
    }

    fn spec_of(v: &Value) -> Value {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            m.remove("status");
            m.remove("apiVersion");
            m.remove("kind");
        }
        v
    }

    #[test]
    fn in_place_comparisons_agree_with_stripped_copies() {
        let base = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "3", "managedFields": [{"manager": "m", "time": "2026-01-01T00:00:00Z", "fieldsV1": {"f:data": {}}}]}, "data": {"k": "v"}});
        let cases = [
            (
                "only resourceVersion differs",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "9", "managedFields": [{"manager": "m", "time": "2026-01-01T00:00:00Z", "fieldsV1": {"f:data": {}}}]}, "data": {"k": "v"}}),
            ),
            (
                "only a managedFields time differs",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "3", "managedFields": [{"manager": "m", "time": "2027-01-01T00:00:00Z", "fieldsV1": {"f:data": {}}}]}, "data": {"k": "v"}}),
            ),
            (
                "data differs",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "3", "managedFields": [{"manager": "m", "time": "2026-01-01T00:00:00Z", "fieldsV1": {"f:data": {}}}]}, "data": {"k": "w"}}),
            ),
            (
                "a label added",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"x": "y"}, "resourceVersion": "3", "managedFields": [{"manager": "m", "time": "2026-01-01T00:00:00Z", "fieldsV1": {"f:data": {}}}]}, "data": {"k": "v"}}),
            ),
            (
                "a manager added",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "3", "managedFields": [{"manager": "m", "time": "2026-01-01T00:00:00Z", "fieldsV1": {"f:data": {}}}, {"manager": "n"}]}, "data": {"k": "v"}}),
            ),
            (
                "resourceVersion missing on one side",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "managedFields": [{"manager": "m", "time": "2026-01-01T00:00:00Z", "fieldsV1": {"f:data": {}}}]}, "data": {"k": "v"}}),
            ),
        ];
        for (name, other) in cases {
            assert_eq!(
                same_ignoring_volatile(&base, &other),
                strip_volatile(&base) == strip_volatile(&other),
                "{name}"
            );
            assert_eq!(
                spec_equal(&base, &other),
                spec_of(&base) == spec_of(&other),
                "{name}"
            );
        }
    }
}
