//! Where the traffic goes: the Services' `rollouts-pod-template-hash` selectors and the two
//! traffic routers rollgit implements.
//!
//! * **Services** (`canaryService`, `stableService`): the selector gets
//!   `rollouts-pod-template-hash: <hash>` and the Service the annotation
//!   `argo-rollouts.argoproj.io/managed-by-rollouts: <rollout>`, as Argo writes them. A
//!   Service's selector is one atomic map for server-side apply, so for a Service of the app
//!   the plan stage hands Git's selector over (the Rollout's `rollgit.dev/service-selectors`)
//!   and the executor applies Git's selector plus the hash under its own field manager; a
//!   Service from elsewhere gets a merge patch of the hash alone.
//! * **NGINX** (`trafficRouting.nginx`): per stable Ingress, a canary Ingress
//!   `<rollout>-<stableIngress>-canary` controlled by the Rollout, with the stable Ingress's
//!   rules that send to the stable Service sent to the canary Service instead, its TLS and
//!   class, `additionalIngressAnnotations` (prefixed), `canaryIngressAnnotations`, and
//!   `<prefix>/canary: "true"`, `<prefix>/canary-weight: "<weight>"` (and
//!   `canary-weight-total` with `maxTrafficWeight`). Argo leaves it at weight 0 once the
//!   rollout is fully promoted; rollgit removes it.
//! * **Gateway API** (`trafficRouting.plugins["argoproj-labs/gatewayAPI"]`): in each HTTPRoute,
//!   the `backendRefs` naming the canary Service get the canary's weight and those naming the
//!   stable Service the rest. An HTTPRoute that comes from the Rollout's app in Git is the
//!   executor's to apply (the plan stage hands it over in the Rollout's
//!   `rollgit.dev/http-routes` annotation, so the apply stage never resets the weights); one
//!   that does not is patched in place.

use super::{
    FIELD_MANAGER, HASH_LABEL, HTTP_ROUTES_ANNOTATION, MANAGED_BY_ROLLOUTS_ANNOTATION,
    SERVICE_SELECTORS_ANNOTATION,
};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use rollgit_core::argo_exec::ServiceObs;
use rollgit_render::ArgoRouting;
use serde_json::{Value, json};

/// Errors of routing traffic.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    /// A request failed.
    #[error("{what}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    /// The objects do not allow routing (a missing stable Ingress, no rule to the stable
    /// Service, a canary Ingress someone else controls).
    #[error("{0}")]
    Invalid(String),
}

fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> TrafficError {
    let what = what.into();
    move |source| TrafficError::Kube { what, source }
}

fn merge_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

/// The canary Ingress of `stable` for `rollout` (`GetCanaryIngressName`: at most 253
/// characters).
pub fn canary_ingress_name(rollout: &str, stable: &str) -> String {
    const SUFFIX: &str = "-canary";
    let mut prefix = format!("{rollout}-{stable}");
    prefix.truncate(253 - SUFFIX.len());
    format!("{prefix}{SUFFIX}")
}

fn ingress_resource() -> ApiResource {
    ApiResource::erase::<k8s_openapi::api::networking::v1::Ingress>(&())
}

/// The Gateway API HTTPRoute resource at `version` (`v1`, `v1beta1`); the Kruise executor's too.
pub fn http_route_resource(version: &str) -> ApiResource {
    ApiResource {
        group: "gateway.networking.k8s.io".into(),
        version: version.into(),
        api_version: format!("gateway.networking.k8s.io/{version}"),
        kind: "HTTPRoute".into(),
        plural: "httproutes".into(),
    }
}

/// A Service as the core sees it (`None` when it does not exist).
pub async fn observe_service(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Result<Option<ServiceObs>, kube::Error> {
    let api: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client.clone(), ns);
    Ok(api.get_opt(name).await?.map(|s| ServiceObs {
        name: name.to_string(),
        selector: s
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .and_then(|m| m.get(HASH_LABEL).cloned()),
        managed: s
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(MANAGED_BY_ROLLOUTS_ANNOTATION)),
    }))
}

/// The Git selectors of the app's Services the executor owns (from the Rollout's annotation).
pub fn git_selectors(rollout: &Value) -> serde_json::Map<String, Value> {
    rollout["metadata"]["annotations"][SERVICE_SELECTORS_ANNOTATION]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

/// Points Service `service` at the pods of `hash` (with `git`, its selector from Git, applied
/// as the whole selector; without, the hash alone merged into the live one). `hash: None`
/// applies Git's selector alone.
pub async fn set_service_selector(
    client: &kube::Client,
    ns: &str,
    rollout: &str,
    service: &str,
    git: Option<&Value>,
    hash: Option<&str>,
) -> Result<(), TrafficError> {
    let api: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client.clone(), ns);
    let what = format!(
        "pointing Service {service} at {}",
        hash.map_or_else(
            || "Git's selector".to_string(),
            |h| format!("{rollout}-{h}")
        )
    );
    match git {
        Some(sel) => {
            let mut selector = sel.clone();
            if !selector.is_object() {
                selector = json!({});
            }
            let mut metadata = json!({"name": service, "namespace": ns});
            if let Some(h) = hash {
                selector[HASH_LABEL] = json!(h);
                metadata["annotations"] = json!({MANAGED_BY_ROLLOUTS_ANNOTATION: rollout});
            }
            let body = json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": metadata,
                "spec": {"selector": selector},
            });
            api.patch(
                service,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map(|_| ())
            .map_err(kube_err(what))
        }
        None => {
            let Some(h) = hash else { return Ok(()) };
            let patch = json!({
                "metadata": {"annotations": {MANAGED_BY_ROLLOUTS_ANNOTATION: rollout}},
                "spec": {"selector": {HASH_LABEL: h}},
            });
            api.patch(service, &merge_params(), &Patch::Merge(&patch))
                .await
                .map(|_| ())
                .map_err(kube_err(what))
        }
    }
}

/// Whether a live Service's selector, without the hash, is Git's.
pub async fn base_selector_is(
    client: &kube::Client,
    ns: &str,
    service: &str,
    git: &Value,
) -> Result<(bool, Option<String>), kube::Error> {
    let api: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client.clone(), ns);
    let Some(s) = api.get_opt(service).await? else {
        return Ok((true, None));
    };
    let mut live: serde_json::Map<String, Value> = s
        .spec
        .and_then(|s| s.selector)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let hash = live
        .remove(HASH_LABEL)
        .and_then(|h| h.as_str().map(str::to_string));
    Ok((Value::Object(live) == *git, hash))
}

/// What a weight is routed with.
pub struct Route<'a> {
    /// The live Rollout.
    pub rollout: &'a Value,
    /// Its routing (from the one Argo parser).
    pub routing: &'a ArgoRouting,
    /// `trafficRouting.maxTrafficWeight`, when written (100 otherwise).
    pub max_weight: i64,
}

impl Route<'_> {
    fn name(&self) -> &str {
        self.rollout["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
    }

    fn ns(&self) -> &str {
        self.rollout["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
    }

    fn owner(&self) -> Value {
        json!({
            "apiVersion": super::API_VERSION,
            "kind": super::KIND,
            "name": self.name(),
            "uid": self.rollout["metadata"]["uid"],
            "controller": true,
            "blockOwnerDeletion": true,
        })
    }

    fn controlled(&self, obj: &Value) -> bool {
        obj["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|o| o["uid"] == self.rollout["metadata"]["uid"] && o["controller"] == true)
    }
}

/// Sends `weight` of the traffic to the canary (`canary_hash`), the rest to the stable, with
/// every router the Rollout names.
pub async fn set_weight(
    client: &kube::Client,
    route: &Route<'_>,
    weight: i64,
) -> Result<(), TrafficError> {
    if route.routing.nginx.is_some() {
        nginx_set_weight(client, route, weight).await?;
    }
    if route.routing.gateway_api.is_some() {
        gateway_set_weight(client, route, weight).await?;
    }
    Ok(())
}

/// The rollout is fully promoted: the canary routes go (the canary Ingress is deleted, the
/// HTTPRoutes send everything to the stable Service).
pub async fn remove_canary_route(
    client: &kube::Client,
    route: &Route<'_>,
) -> Result<(), TrafficError> {
    if let Some(nginx) = &route.routing.nginx {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), route.ns(), &ingress_resource());
        for stable in &nginx.stable_ingresses {
            let name = canary_ingress_name(route.name(), stable);
            let Some(live) = api
                .get_opt(&name)
                .await
                .map_err(kube_err(format!("reading canary Ingress {name}")))?
            else {
                continue;
            };
            let live = serde_json::to_value(&live).unwrap_or_default();
            if !route.controlled(&live) {
                continue;
            }
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => tracing::info!(ingress = %name, "canary Ingress removed after promotion"),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(kube_err(format!("deleting canary Ingress {name}"))(e)),
            }
        }
    }
    if route.routing.gateway_api.is_some() {
        gateway_set_weight(client, route, 0).await?;
    }
    Ok(())
}

/// The canary Ingress for `stable` (the live stable Ingress) at `weight`
/// (`buildCanaryIngress`).
pub fn canary_ingress(
    route: &Route<'_>,
    stable: &Value,
    weight: i64,
) -> Result<Value, TrafficError> {
    let nginx = route
        .routing
        .nginx
        .as_ref()
        .ok_or_else(|| TrafficError::Invalid("no nginx traffic routing".into()))?;
    let stable_name = stable["metadata"]["name"].as_str().unwrap_or_default();
    let stable_svc = route.routing.stable_service.clone().unwrap_or_default();
    let canary_svc = route.routing.canary_service.clone().unwrap_or_default();
    let prefix = &nginx.annotation_prefix;
    let mut rules = Vec::new();
    for rule in stable["spec"]["rules"].as_array().into_iter().flatten() {
        let mut rule = rule.clone();
        let mut uses_stable = false;
        if let Some(paths) = rule["http"]["paths"].as_array_mut() {
            for p in paths {
                if p["backend"]["service"]["name"] == stable_svc.as_str() {
                    uses_stable = true;
                    p["backend"]["service"]["name"] = json!(canary_svc);
                }
            }
        }
        if uses_stable {
            rules.push(rule);
        }
    }
    if rules.is_empty() {
        return Err(TrafficError::Invalid(format!(
            "ingress `{stable_name}` has no rules using service {stable_svc} backend"
        )));
    }
    let mut annotations = serde_json::Map::new();
    if let Some(class) = stable["metadata"]["annotations"]["kubernetes.io/ingress.class"].as_str() {
        annotations.insert("kubernetes.io/ingress.class".into(), json!(class));
    }
    for (k, v) in &nginx.additional_ingress_annotations {
        let key = if k.starts_with(prefix.as_str()) {
            k.clone()
        } else {
            format!("{prefix}/{k}")
        };
        annotations.insert(key, json!(v));
    }
    for (k, v) in &nginx.canary_ingress_annotations {
        annotations.insert(k.clone(), json!(v));
    }
    annotations.insert(format!("{prefix}/canary"), json!("true"));
    annotations.insert(format!("{prefix}/canary-weight"), json!(weight.to_string()));
    if route.max_weight != 100 {
        annotations.insert(
            format!("{prefix}/canary-weight-total"),
            json!(route.max_weight.to_string()),
        );
    }
    let mut spec = json!({"rules": rules});
    if let Some(tls) = stable["spec"].get("tls").filter(|t| !t.is_null()) {
        spec["tls"] = tls.clone();
    }
    if let Some(class) = stable["spec"]
        .get("ingressClassName")
        .filter(|c| !c.is_null())
    {
        spec["ingressClassName"] = class.clone();
    }
    Ok(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": canary_ingress_name(route.name(), stable_name),
            "namespace": route.ns(),
            "annotations": annotations,
            "ownerReferences": [route.owner()],
        },
        "spec": spec,
    }))
}

async fn nginx_set_weight(
    client: &kube::Client,
    route: &Route<'_>,
    weight: i64,
) -> Result<(), TrafficError> {
    let Some(nginx) = &route.routing.nginx else {
        return Ok(());
    };
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), route.ns(), &ingress_resource());
    for stable_name in &nginx.stable_ingresses {
        let stable = api
            .get_opt(stable_name)
            .await
            .map_err(kube_err(format!("reading stable Ingress {stable_name}")))?
            .ok_or_else(|| {
                TrafficError::Invalid(format!("the stable Ingress `{stable_name}` does not exist"))
            })?;
        let stable = serde_json::to_value(&stable).unwrap_or_default();
        let desired = canary_ingress(route, &stable, weight)?;
        let name = desired["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let live = api
            .get_opt(&name)
            .await
            .map_err(kube_err(format!("reading canary Ingress {name}")))?;
        let Some(live) = live else {
            let obj: DynamicObject = serde_json::from_value(desired.clone()).map_err(|e| {
                TrafficError::Invalid(format!("building canary Ingress {name}: {e}"))
            })?;
            match api.create(&PostParams::default(), &obj).await {
                Ok(_) => {
                    tracing::info!(ingress = %name, weight, "canary Ingress created");
                    continue;
                }
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(kube_err(format!("creating canary Ingress {name}"))(e)),
            }
            continue;
        };
        let live = serde_json::to_value(&live).unwrap_or_default();
        if !route.controlled(&live) {
            return Err(TrafficError::Invalid(format!(
                "canary ingress `{name}` controlled by different object"
            )));
        }
        let same_annotations = desired["metadata"]["annotations"]
            .as_object()
            .into_iter()
            .flatten()
            .all(|(k, v)| live["metadata"]["annotations"][k] == *v);
        if same_annotations && live["spec"]["rules"] == desired["spec"]["rules"] {
            continue;
        }
        let patch = json!({
            "metadata": {"annotations": desired["metadata"]["annotations"]},
            "spec": desired["spec"],
        });
        api.patch(&name, &merge_params(), &Patch::Merge(&patch))
            .await
            .map_err(kube_err(format!("updating canary Ingress {name}")))?;
        tracing::info!(ingress = %name, weight, "canary Ingress updated");
    }
    Ok(())
}

/// The HTTPRoute `route` with the weights of `weight` to the canary Service.
pub fn weighted_http_route(
    http_route: &Value,
    routing: &ArgoRouting,
    weight: i64,
    max_weight: i64,
) -> Value {
    let mut r = http_route.clone();
    let canary = routing.canary_service.clone().unwrap_or_default();
    let stable = routing.stable_service.clone().unwrap_or_default();
    for rule in r["spec"]["rules"].as_array_mut().into_iter().flatten() {
        for b in rule["backendRefs"].as_array_mut().into_iter().flatten() {
            if b["name"] == canary.as_str() {
                b["weight"] = json!(weight);
            } else if b["name"] == stable.as_str() {
                b["weight"] = json!(max_weight - weight);
            }
        }
    }
    r
}

/// The HTTPRoutes the plan stage handed to the executor (from the Rollout's annotation).
pub fn routes_from_git(rollout: &Value) -> Vec<Value> {
    rollout["metadata"]["annotations"][HTTP_ROUTES_ANNOTATION]
        .as_str()
        .and_then(|s| serde_json::from_str::<Vec<Value>>(s).ok())
        .unwrap_or_default()
}

async fn gateway_set_weight(
    client: &kube::Client,
    route: &Route<'_>,
    weight: i64,
) -> Result<(), TrafficError> {
    let Some(gw) = &route.routing.gateway_api else {
        return Ok(());
    };
    let ns = gw
        .namespace
        .clone()
        .unwrap_or_else(|| route.ns().to_string());
    let from_git = routes_from_git(route.rollout);
    for name in &gw.http_routes {
        let git = from_git
            .iter()
            .find(|r| r["metadata"]["name"] == name.as_str());
        let version = git
            .and_then(|g| g["apiVersion"].as_str())
            .and_then(|a| a.split_once('/'))
            .map_or("v1", |(_, v)| v)
            .to_string();
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &ns, &http_route_resource(&version));
        let live = api
            .get_opt(name)
            .await
            .map_err(kube_err(format!("reading HTTPRoute {ns}/{name}")))?;
        let live = live.map(|l| serde_json::to_value(&l).unwrap_or_default());
        match git {
            Some(g) => {
                let mut desired = weighted_http_route(g, route.routing, weight, route.max_weight);
                desired["metadata"]["namespace"] = json!(ns);
                desired["metadata"]["ownerReferences"] = json!([route.owner()]);
                if let Some(l) = &live
                    && l["spec"] == desired["spec"]
                    && route.controlled(l)
                {
                    continue;
                }
                api.patch(
                    name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&desired),
                )
                .await
                .map_err(kube_err(format!("applying HTTPRoute {ns}/{name}")))?;
                tracing::info!(httproute = %name, weight, "HTTPRoute weights set");
            }
            None => {
                let Some(l) = live else {
                    return Err(TrafficError::Invalid(format!(
                        "the HTTPRoute `{ns}/{name}` does not exist"
                    )));
                };
                let desired = weighted_http_route(&l, route.routing, weight, route.max_weight);
                if desired["spec"]["rules"] == l["spec"]["rules"] {
                    continue;
                }
                let patch = json!({"spec": {"rules": desired["spec"]["rules"]}});
                api.patch(name, &merge_params(), &Patch::Merge(&patch))
                    .await
                    .map_err(kube_err(format!(
                        "setting the weights of HTTPRoute {ns}/{name}"
                    )))?;
                tracing::info!(httproute = %name, weight, "HTTPRoute weights set");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollgit_render::NginxRouting;

    fn routing() -> ArgoRouting {
        ArgoRouting {
            canary_service: Some("web-canary".into()),
            stable_service: Some("web-stable".into()),
            nginx: Some(NginxRouting {
                stable_ingresses: vec!["web".into()],
                annotation_prefix: "nginx.ingress.kubernetes.io".into(),
                additional_ingress_annotations: [(
                    "canary-by-header".to_string(),
                    "X-Canary".to_string(),
                )]
                .into_iter()
                .collect(),
                canary_ingress_annotations: Default::default(),
            }),
            gateway_api: None,
        }
    }

    #[test]
    fn the_canary_ingress_copies_the_stable_rules_to_the_canary_service() {
        let rollout = json!({"metadata": {"name": "ro", "namespace": "default", "uid": "u1"}});
        let routing = routing();
        let route = Route {
            rollout: &rollout,
            routing: &routing,
            max_weight: 100,
        };
        let stable = json!({
            "metadata": {"name": "web", "annotations": {"kubernetes.io/ingress.class": "nginx"}},
            "spec": {"rules": [
                {"host": "web.example", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web-stable", "port": {"number": 80}}}}]}},
                {"host": "other.example", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "other", "port": {"number": 80}}}}]}},
            ]},
        });
        let c = canary_ingress(&route, &stable, 20).expect("builds");
        assert_eq!(c["metadata"]["name"], "ro-web-canary");
        let a = &c["metadata"]["annotations"];
        assert_eq!(a["nginx.ingress.kubernetes.io/canary"], "true");
        assert_eq!(a["nginx.ingress.kubernetes.io/canary-weight"], "20");
        assert_eq!(
            a["nginx.ingress.kubernetes.io/canary-by-header"],
            "X-Canary"
        );
        assert_eq!(a["kubernetes.io/ingress.class"], "nginx");
        let rules = c["spec"]["rules"].as_array().expect("rules");
        assert_eq!(
            rules.len(),
            1,
            "only the rules that send to the stable Service"
        );
        assert_eq!(
            rules[0]["http"]["paths"][0]["backend"]["service"]["name"],
            "web-canary"
        );
        assert_eq!(c["metadata"]["ownerReferences"][0]["uid"], "u1");
        let none = json!({"metadata": {"name": "web"}, "spec": {"rules": []}});
        assert!(canary_ingress(&route, &none, 20).is_err());
    }

    #[test]
    fn http_route_weights_follow_the_canary_weight() {
        let mut routing = routing();
        routing.nginx = None;
        let r = json!({"spec": {"rules": [{"backendRefs": [
            {"name": "web-stable", "port": 80, "weight": 100},
            {"name": "web-canary", "port": 80, "weight": 0},
        ]}]}});
        let w = weighted_http_route(&r, &routing, 30, 100);
        assert_eq!(w["spec"]["rules"][0]["backendRefs"][0]["weight"], 70);
        assert_eq!(w["spec"]["rules"][0]["backendRefs"][1]["weight"], 30);
    }

    #[test]
    fn canary_ingress_names_are_limited_to_253_characters() {
        assert_eq!(canary_ingress_name("ro", "web"), "ro-web-canary");
        assert_eq!(
            canary_ingress_name(&"r".repeat(200), &"s".repeat(100)).len(),
            253
        );
    }
}
