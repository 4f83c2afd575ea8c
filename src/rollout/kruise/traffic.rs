//! The traffic objects of a Kruise Rollout (`trafficRoutings[0]`), read into the core's
//! [`TrafficObs`] and changed as Kruise's traffic routing manager does: the stable Service's
//! selector narrowed to the stable pods (and restored), the canary Service `<service>-canary`
//! selecting the canary pods, the canary Ingress `<ingress>-canary` (the stable Ingress's rules
//! that reach the stable Service, pointed at the canary Service) with the class's canary
//! annotations, both owned by the Rollout and deleted at the end; and the Gateway API
//! HTTPRoute of `gateway.httpRouteName`, whose `spec.rules` are set to what
//! [`rollgit_core::kruise_gateway`] decides (an HTTPRoute of the app is the executor's to
//! apply, as the stable Service's selector is: Git's rules travel in its
//! `rollgit.dev/rules` annotation; one from elsewhere is patched in place, as Kruise updates it).

use super::workload::{Owner, strip_nulls};
use crate::k8s::kruise::{FIELD_MANAGER_KRUISE, GIT_RULES_ANNOTATION, GIT_SELECTOR_ANNOTATION};
use crate::k8s::{APP_LABEL, MANAGED_BY_LABEL, REPO_LABEL};
use crate::rollout::argo::traffic::http_route_resource;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use rollgit_core::kruise_run::{HttpRouteObs, ServiceObs, TrafficObs, TrafficRouting};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The canary Service's name.
pub fn canary_service(service: &str) -> String {
    format!("{service}-canary")
}

/// The canary Ingress's name.
pub fn canary_ingress(ingress: &str) -> String {
    format!("{ingress}-canary")
}

fn pp() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER_KRUISE.into()),
        ..PatchParams::default()
    }
}

/// Reads the traffic objects (`revision_label`: the workload's pod revision label).
pub async fn observe(
    client: &kube::Client,
    namespace: &str,
    tr: &TrafficRouting,
    revision_label: &str,
) -> Result<TrafficObs, kube::Error> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let selected = |s: Service| ServiceObs {
        revision: s
            .spec
            .and_then(|s| s.selector)
            .and_then(|m| m.get(revision_label).cloned()),
    };
    let stable_service = services.get_opt(&tr.service).await?.map(selected);
    let canary_service = services
        .get_opt(&canary_service(&tr.service))
        .await?
        .map(selected);
    let (ingress, canary_ingress) = match &tr.ingress {
        None => (false, None),
        Some((name, _)) => {
            let ingresses: Api<Ingress> = Api::namespaced(client.clone(), namespace);
            let stable = ingresses.get_opt(name).await?.is_some();
            let canary = ingresses
                .get_opt(&canary_ingress(name))
                .await?
                .map(|i| i.metadata.annotations.unwrap_or_default());
            (stable, canary)
        }
    };
    let http_route = match &tr.http_route {
        None => None,
        Some(name) => read_route(client, namespace, name)
            .await?
            .map(|r| HttpRouteObs {
                rules: rules_of(&r),
                git_rules: git_rules(&r),
            }),
    };
    Ok(TrafficObs {
        stable_service,
        canary_service,
        ingress,
        canary_ingress,
        http_route,
    })
}

/// The HTTPRoutes of a namespace, at `version` (`v1` unless an app's route says otherwise).
fn routes(client: &kube::Client, namespace: &str, version: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &http_route_resource(version))
}

async fn read_route(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Option<Value>, kube::Error> {
    let route = routes(client, namespace, "v1").get_opt(name).await?;
    route
        .map(|r| serde_json::to_value(&r).map_err(kube::Error::SerdeError))
        .transpose()
}

/// `spec.rules` (`[]` when absent).
fn rules_of(route: &Value) -> Value {
    match &route["spec"]["rules"] {
        Value::Null => json!([]),
        r => r.clone(),
    }
}

/// Git's rules of an HTTPRoute of the app (its annotation), if it has them.
fn git_rules(route: &Value) -> Option<Value> {
    let a = route["metadata"]["annotations"][GIT_RULES_ANNOTATION].as_str()?;
    serde_json::from_str::<Value>(a)
        .ok()
        .filter(Value::is_array)
}

/// Whether the executor's field manager owns `spec.rules` of `route`.
fn owns_rules(route: &Value) -> bool {
    route["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["manager"] == FIELD_MANAGER_KRUISE)
        .any(|m| m["fieldsV1"]["f:spec"].get("f:rules").is_some())
}

/// Server-side applies `rules` as the executor's.
async fn apply_rules(
    client: &kube::Client,
    namespace: &str,
    api_version: &str,
    name: &str,
    rules: &Value,
) -> Result<(), kube::Error> {
    let version = api_version.rsplit('/').next().unwrap_or("v1");
    let body = json!({
        "apiVersion": api_version,
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"rules": rules},
    });
    routes(client, namespace, version)
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER_KRUISE).force(),
            &Patch::Apply(&body),
        )
        .await
        .map(|_| ())
}

/// Before an apply leaves an HTTPRoute's rules out: makes the executor co-own them (applying
/// the live value, so nothing changes and the apply does not remove them). False when the
/// route does not exist (it is created with Git's rules).
pub async fn take_rules(
    client: &kube::Client,
    namespace: &str,
    api_version: &str,
    name: &str,
) -> Result<bool, kube::Error> {
    let version = api_version.rsplit('/').next().unwrap_or("v1");
    let Some(route) = routes(client, namespace, version).get_opt(name).await? else {
        return Ok(false);
    };
    let route = serde_json::to_value(&route).map_err(kube::Error::SerdeError)?;
    if !owns_rules(&route) {
        apply_rules(client, namespace, api_version, name, &rules_of(&route)).await?;
    }
    Ok(true)
}

/// Sets the HTTPRoute's `spec.rules`: applied as the executor's for a route of the app (it
/// owns them), merge-patched into one from elsewhere (as Kruise updates it).
pub async fn set_route_rules(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    rules: &Value,
) -> Result<(), kube::Error> {
    let Some(route) = read_route(client, namespace, name).await? else {
        return Ok(());
    };
    if git_rules(&route).is_some() && owns_rules(&route) {
        let api_version = route["apiVersion"]
            .as_str()
            .unwrap_or("gateway.networking.k8s.io/v1");
        return apply_rules(client, namespace, api_version, name, rules).await;
    }
    let patch = json!({"spec": {"rules": rules}});
    routes(client, namespace, "v1")
        .patch(name, &pp(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

/// The labels of a copy of one of Git's objects: without the ones that make it an app's.
fn copied_labels(labels: &Value) -> Value {
    let mut l = labels.clone();
    if let Some(m) = l.as_object_mut() {
        for k in [APP_LABEL, REPO_LABEL, MANAGED_BY_LABEL] {
            m.remove(k);
        }
    }
    if l.is_object() { l } else { json!({}) }
}

fn copied_annotations(annotations: &Value) -> Map<String, Value> {
    let mut a = annotations.as_object().cloned().unwrap_or_default();
    a.remove("kubectl.kubernetes.io/last-applied-configuration");
    a
}

/// Whether the executor's field manager owns `spec.selector` of `svc`.
fn owns_selector(svc: &Service) -> bool {
    svc.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() == Some(FIELD_MANAGER_KRUISE))
        .any(|m| {
            m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0["f:spec"].get("f:selector").is_some())
        })
}

/// Server-side applies `selector` as the executor's.
async fn apply_selector(
    api: &Api<Service>,
    namespace: &str,
    service: &str,
    selector: &Value,
) -> Result<(), kube::Error> {
    let body = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": service, "namespace": namespace},
        "spec": {"selector": selector},
    });
    api.patch(
        service,
        &PatchParams::apply(FIELD_MANAGER_KRUISE).force(),
        &Patch::Apply(&body),
    )
    .await
    .map(|_| ())
}

/// Before an apply leaves a stable Service's selector out: makes the executor co-own it
/// (applying the live value, so nothing changes and the apply does not remove it). False when
/// the Service does not exist (it is created with Git's selector).
pub async fn take_selector(
    client: &kube::Client,
    namespace: &str,
    service: &str,
) -> Result<bool, kube::Error> {
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    let Some(svc) = api.get_opt(service).await? else {
        return Ok(false);
    };
    if !owns_selector(&svc) {
        let selector = json!(svc.spec.as_ref().and_then(|s| s.selector.clone()));
        apply_selector(&api, namespace, service, &selector).await?;
    }
    Ok(true)
}

/// Git's selector of a stable Service the executor owns (its annotation), if it has one.
fn git_selector(svc: &Service) -> Option<Map<String, Value>> {
    let a = svc
        .metadata
        .annotations
        .as_ref()?
        .get(GIT_SELECTOR_ANNOTATION)?;
    serde_json::from_str::<Value>(a).ok()?.as_object().cloned()
}

/// Narrows the stable Service to `revision` (or, `None`, lets it select every version). A
/// Service of the same app gets Git's selector plus the revision (server-side applied: the
/// executor owns the field); another one is merge-patched.
pub async fn set_stable_selector(
    client: &kube::Client,
    namespace: &str,
    service: &str,
    revision_label: &str,
    revision: Option<&str>,
) -> Result<(), kube::Error> {
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    let Some(svc) = api.get_opt(service).await? else {
        return Ok(());
    };
    if let Some(mut selector) = git_selector(&svc) {
        if let Some(r) = revision {
            selector.insert(revision_label.to_string(), json!(r));
        }
        return apply_selector(&api, namespace, service, &Value::Object(selector)).await;
    }
    let patch = json!({"spec": {"selector": {revision_label: revision}}});
    api.patch(service, &pp(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

/// Keeps a stable Service the executor owns on Git's selector (plus the revision it narrows
/// to, if any): Git's selector may change while the executor holds the field.
pub async fn sync_selector(
    client: &kube::Client,
    namespace: &str,
    service: &str,
    revision_label: &str,
) -> Result<(), kube::Error> {
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    let Some(svc) = api.get_opt(service).await? else {
        return Ok(());
    };
    let Some(mut want) = git_selector(&svc) else {
        return Ok(());
    };
    if !owns_selector(&svc) {
        return Ok(());
    }
    let live = svc
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();
    if let Some(r) = live.get(revision_label) {
        want.insert(revision_label.to_string(), json!(r));
    }
    let live: Map<String, Value> = live.into_iter().map(|(k, v)| (k, json!(v))).collect();
    if live == want {
        return Ok(());
    }
    apply_selector(&api, namespace, service, &Value::Object(want)).await
}

/// Creates `<service>-canary` selecting `revision` (a copy of the stable Service), or points
/// the existing one at it.
pub async fn ensure_canary_service(
    client: &kube::Client,
    namespace: &str,
    service: &str,
    revision_label: &str,
    revision: &str,
    owner: &Owner,
) -> Result<(), kube::Error> {
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    let name = canary_service(service);
    if api.get_opt(&name).await?.is_some() {
        let patch = json!({"spec": {"selector": {revision_label: revision}}});
        api.patch(&name, &pp(), &Patch::Merge(&patch)).await?;
        return Ok(());
    }
    let Some(stable) = api.get_opt(service).await? else {
        return Ok(());
    };
    let stable = serde_json::to_value(&stable).map_err(kube::Error::SerdeError)?;
    let mut spec = strip_nulls(&stable["spec"]);
    if let Some(m) = spec.as_object_mut() {
        for k in [
            "clusterIP",
            "clusterIPs",
            "externalIPs",
            "ipFamilyPolicy",
            "ipFamilies",
            "loadBalancerIP",
        ] {
            m.remove(k);
        }
    }
    for p in spec["ports"].as_array_mut().into_iter().flatten() {
        if let Some(m) = p.as_object_mut() {
            m.remove("nodePort");
        }
    }
    spec["selector"][revision_label] = json!(revision);
    let svc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": copied_labels(&stable["metadata"]["labels"]),
            "annotations": copied_annotations(&stable["metadata"]["annotations"]),
            "ownerReferences": [owner.reference()],
        },
        "spec": spec,
    });
    let svc: Service = serde_json::from_value(svc).map_err(kube::Error::SerdeError)?;
    match api.create(&PostParams::default(), &svc).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes `name` (a Service or an Ingress), gone or not.
async fn delete<K>(api: &Api<K>, name: &str) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes `<service>-canary`.
pub async fn remove_canary_service(
    client: &kube::Client,
    namespace: &str,
    service: &str,
) -> Result<(), kube::Error> {
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    delete(&api, &canary_service(service)).await
}

/// Creates `<ingress>-canary` from the stable Ingress: its rules that reach the stable Service,
/// pointed at the canary Service, its class and TLS, its annotations and `annotations`.
pub async fn create_canary_ingress(
    client: &kube::Client,
    namespace: &str,
    tr: &TrafficRouting,
    annotations: &BTreeMap<String, String>,
    owner: &Owner,
) -> Result<(), kube::Error> {
    let Some((ingress, _)) = &tr.ingress else {
        return Ok(());
    };
    let api: Api<Ingress> = Api::namespaced(client.clone(), namespace);
    let Some(stable) = api.get_opt(ingress).await? else {
        return Ok(());
    };
    let stable = serde_json::to_value(&stable).map_err(kube::Error::SerdeError)?;
    let canary_svc = canary_service(&tr.service);
    let mut rules = Vec::new();
    for rule in stable["spec"]["rules"].as_array().into_iter().flatten() {
        let mut paths = Vec::new();
        for p in rule["http"]["paths"].as_array().into_iter().flatten() {
            if p["backend"]["service"]["name"] == tr.service.as_str() {
                let mut p = strip_nulls(p);
                p["backend"]["service"]["name"] = json!(canary_svc);
                paths.push(p);
            }
        }
        if !paths.is_empty() {
            let mut r = json!({"http": {"paths": paths}});
            if let Some(h) = rule["host"].as_str() {
                r["host"] = json!(h);
            }
            rules.push(r);
        }
    }
    let mut all = copied_annotations(&stable["metadata"]["annotations"]);
    for (k, v) in annotations {
        all.insert(k.clone(), json!(v));
    }
    let mut spec = json!({"rules": rules});
    if let Some(c) = stable["spec"]["ingressClassName"].as_str() {
        spec["ingressClassName"] = json!(c);
    }
    if stable["spec"]["tls"].is_array() {
        spec["tls"] = strip_nulls(&stable["spec"]["tls"]);
    }
    let canary = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": canary_ingress(ingress),
            "namespace": namespace,
            "labels": copied_labels(&stable["metadata"]["labels"]),
            "annotations": all,
            "ownerReferences": [owner.reference()],
        },
        "spec": spec,
    });
    let canary: Ingress = serde_json::from_value(canary).map_err(kube::Error::SerdeError)?;
    match api.create(&PostParams::default(), &canary).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets `<ingress>-canary`'s annotations to `want` (the others removed).
pub async fn patch_canary_ingress(
    client: &kube::Client,
    namespace: &str,
    ingress: &str,
    current: &BTreeMap<String, String>,
    want: &BTreeMap<String, String>,
) -> Result<(), kube::Error> {
    let api: Api<Ingress> = Api::namespaced(client.clone(), namespace);
    let mut a = Map::new();
    for k in current.keys() {
        if !want.contains_key(k) {
            a.insert(k.clone(), Value::Null);
        }
    }
    for (k, v) in want {
        a.insert(k.clone(), json!(v));
    }
    let patch = json!({"metadata": {"annotations": a}});
    api.patch(&canary_ingress(ingress), &pp(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

/// Deletes `<ingress>-canary`.
pub async fn remove_canary_ingress(
    client: &kube::Client,
    namespace: &str,
    ingress: &str,
) -> Result<(), kube::Error> {
    let api: Api<Ingress> = Api::namespaced(client.clone(), namespace);
    delete(&api, &canary_ingress(ingress)).await
}
