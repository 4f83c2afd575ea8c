//! The Kubernetes REST API: routing, the verbs, content negotiation, watches.

use crate::admission;
use crate::discovery;
use crate::error::{ApiError, Cause};
use crate::fields;
use crate::resources::{GroupResource, Registry, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Change, Entry, EventType, ObjKey, Store, WatchEvent};
use crate::table;
use crate::time::now_rfc3339;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// Largest request body accepted, as kube-apiserver (3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// The API server's shared state.
pub struct Server {
    /// Object storage.
    pub store: Arc<Store>,
    /// Served types.
    pub registry: RwLock<Registry>,
    /// `host:port` clients reach.
    pub address: String,
    /// Bumped when the set of served types changes (OpenAPI hashes).
    pub generation: AtomicU64,
    /// Interval of watch bookmarks.
    pub bookmark_every: Duration,
    next_ip: AtomicU32,
}

impl Server {
    /// A server over `store`.
    pub fn new(store: Arc<Store>, address: String, bookmark_every: Duration) -> Self {
        let srv = Self {
            store,
            registry: RwLock::new(Registry::new()),
            address,
            generation: AtomicU64::new(1),
            bookmark_every,
            next_ip: AtomicU32::new(10),
        };
        srv.reload_crds();
        srv
    }

    /// Registers every stored CRD's types (after a restart from a data directory).
    pub fn reload_crds(&self) {
        let gr = GroupResource {
            group: "apiextensions.k8s.io".into(),
            resource: "customresourcedefinitions".into(),
        };
        let (_, crds) = self.store.list(&gr, None, None);
        let mut reg = self.registry_write();
        for (key, e) in crds {
            reg.set_crd(&key.name, crate::resources::from_crd(&e.value()));
        }
        for (_, e) in self
            .store
            .list(
                &GroupResource {
                    group: String::new(),
                    resource: "services".into(),
                },
                None,
                None,
            )
            .1
        {
            if let Some(ip) = e.value()["spec"]["clusterIP"].as_str()
                && let Some(last) = ip.rsplit('.').next().and_then(|l| l.parse::<u32>().ok())
            {
                let third = ip
                    .split('.')
                    .nth(2)
                    .and_then(|l| l.parse::<u32>().ok())
                    .unwrap_or(0);
                self.next_ip
                    .fetch_max(third * 256 + last + 1, Ordering::Relaxed);
            }
        }
    }

    fn registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|p| p.into_inner())
    }

    fn registry_write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|p| p.into_inner())
    }

    fn allocate_ip(&self) -> String {
        let n = self.next_ip.fetch_add(1, Ordering::Relaxed);
        format!("10.96.{}.{}", (n / 256) % 256, n % 256)
    }
}

fn json_response(code: u16, body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn value_response(code: u16, v: &Value) -> Response {
    json_response(code, Bytes::from(v.to_string()))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        value_response(self.code, &self.to_status())
    }
}

/// Parsed query parameters.
struct Query(HashMap<String, String>);

impl Query {
    fn parse(q: Option<&str>) -> Self {
        let mut m = HashMap::new();
        if let Some(q) = q {
            for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                m.insert(k.into_owned(), v.into_owned());
            }
        }
        Self(m)
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|s| !s.is_empty())
    }
    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true") | Some("1"))
    }
    fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "unsupported dry run option {other:?}, supported values: All"
            ))),
        }
    }
}

/// What a request path names.
enum Route {
    Version,
    Health,
    CoreVersions,
    Groups,
    Group(String),
    ResourceList(String, String),
    OpenApiV2,
    OpenApiV3Index,
    OpenApiV3(String, String),
    Resource {
        rt: Arc<ResourceType>,
        namespace: Option<String>,
        name: Option<String>,
        sub: Option<String>,
    },
}

fn route(reg: &Registry, path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["version"] => return Ok(Route::Version),
        ["healthz"] | ["readyz"] | ["livez"] => return Ok(Route::Health),
        ["healthz" | "readyz" | "livez", _] => return Ok(Route::Health),
        ["api"] => return Ok(Route::CoreVersions),
        ["apis"] => return Ok(Route::Groups),
        ["apis", g] => return Ok(Route::Group(g.to_string())),
        ["openapi", "v2"] => return Ok(Route::OpenApiV2),
        ["openapi", "v3"] => return Ok(Route::OpenApiV3Index),
        ["openapi", "v3", "api", v] => return Ok(Route::OpenApiV3(String::new(), v.to_string())),
        ["openapi", "v3", "apis", g, v] => {
            return Ok(Route::OpenApiV3(g.to_string(), v.to_string()));
        }
        _ => {}
    }
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", v, rest),
        ["apis", g, v, rest @ ..] => (g, v, rest),
        _ => return Err(ApiError::no_route()),
    };
    if rest.is_empty() {
        return Ok(Route::ResourceList(group.to_string(), version.to_string()));
    }
    // /namespaces/{ns}/{resource}[/{name}[/{sub}]]
    if rest.len() >= 3
        && rest[0] == "namespaces"
        && let Some(rt) = reg.get(group, version, rest[2])
        && rt.namespaced
    {
        if rest.len() > 5 {
            return Err(ApiError::no_route());
        }
        return Ok(Route::Resource {
            rt,
            namespace: Some(rest[1].to_string()),
            name: rest.get(3).map(|s| s.to_string()),
            sub: rest.get(4).map(|s| s.to_string()),
        });
    }
    let rt = reg
        .get(group, version, rest[0])
        .ok_or_else(ApiError::no_route)?;
    if rest.len() > 3 {
        return Err(ApiError::no_route());
    }
    Ok(Route::Resource {
        rt,
        namespace: None,
        name: rest.get(1).map(|s| s.to_string()),
        sub: rest.get(2).map(|s| s.to_string()),
    })
}

/// The single entry point for every request.
pub async fn handle(State(srv): State<Arc<Server>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return ApiError::too_large(MAX_BODY).into_response(),
    };
    let query = Query::parse(parts.uri.query());
    let route = {
        let reg = srv.registry();
        route(&reg, parts.uri.path())
    };
    let route = match route {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let result = match route {
        Route::Version => Ok(value_response(200, &discovery::version())),
        Route::Health => Ok((StatusCode::OK, "ok").into_response()),
        Route::CoreVersions => Ok(value_response(200, &discovery::core_versions(&srv.address))),
        Route::Groups => Ok(value_response(200, &discovery::group_list(&srv.registry()))),
        Route::Group(g) => discovery::group(&srv.registry(), &g)
            .map(|d| value_response(200, &d))
            .ok_or_else(ApiError::no_route),
        Route::ResourceList(g, v) => discovery::resource_list(&srv.registry(), &g, &v)
            .map(|d| value_response(200, &d))
            .ok_or_else(ApiError::no_route),
        Route::OpenApiV2 => {
            let protobuf = parts
                .headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("protobuf"));
            let (content_type, body) = discovery::openapi_v2(protobuf);
            let mut r = Response::new(Body::from(body));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            Ok(r)
        }
        Route::OpenApiV3Index => Ok(value_response(
            200,
            &discovery::openapi_v3_index(&srv.registry(), srv.generation.load(Ordering::Relaxed)),
        )),
        Route::OpenApiV3(g, v) => discovery::openapi_v3_group_version(&srv.registry(), &g, &v)
            .map(|d| value_response(200, &d))
            .ok_or_else(ApiError::no_route),
        Route::Resource {
            rt,
            namespace,
            name,
            sub,
        } => {
            let ctx = Ctx {
                srv: srv.clone(),
                rt,
                namespace,
                name,
                sub,
                query,
                headers: parts.headers,
            };
            ctx.dispatch(&parts.method, body).await
        }
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

struct Ctx {
    srv: Arc<Server>,
    rt: Arc<ResourceType>,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
    query: Query,
    headers: HeaderMap,
}

/// How a write names its field manager.
fn manager_of(query: &Query, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(m) = query.get("fieldManager") {
        if m.len() > 128 {
            return Err(ApiError::bad_request(
                "fieldManager: Too long: may not be more than 128 bytes",
            ));
        }
        return Ok(m.to_string());
    }
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    Ok(ua.split('/').next().unwrap_or("unknown").to_string())
}

/// Decodes a JSON or YAML request body into one object.
pub fn decode_body(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let v: Value = if content_type.contains("yaml") {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => {
                let text = std::str::from_utf8(body)
                    .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
                serde_saphyr::from_str(text).map_err(|e| {
                    ApiError::bad_request(format!("error converting YAML to JSON: {e}"))
                })?
            }
        }
    } else if content_type.contains("protobuf") {
        crate::protobuf::decode_to_json(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding protobuf body: {e}")))?
    } else if content_type.contains("cbor") {
        return Err(ApiError::unsupported_media_type(content_type));
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("json: cannot unmarshal the request body: {e}"))
        })?
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    Ok(v)
}

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

#[cfg(test)]
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

#[cfg(test)]
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
    fn gr_name(&self) -> (&str, &str) {
        (&self.rt.group, &self.rt.plural)
    }

    fn key(&self, name: &str) -> ObjKey {
        ObjKey {
            gr: self.rt.storage_key(),
            namespace: if self.rt.namespaced {
                self.namespace.clone().unwrap_or_default()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }

    fn wants_table(&self) -> bool {
        self.headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("as=Table"))
    }

    fn content_type(&self) -> String {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_ascii_lowercase()
    }

    async fn dispatch(self, method: &Method, body: Bytes) -> Result<Response, ApiError> {
        if self.rt.namespaced && self.namespace.is_none() && self.name.is_some() {
            return Err(ApiError::no_route());
        }
        match self.sub.as_deref() {
            None => {}
            Some("status") if self.rt.status => {}
            Some("scale") if self.rt.scale.is_some() => {}
            Some(_) => return Err(ApiError::no_route()),
        }
        match (method, self.name.clone()) {
            (&Method::GET, None) if self.query.flag("watch") => self.watch().await,
            (&Method::GET, None) => self.list(),
            (&Method::GET, Some(name)) => self.get(&name),
            (&Method::POST, None) => {
                if self.namespace.is_none() && self.rt.namespaced {
                    return Err(ApiError::method_not_allowed(format!(
                        "the server does not allow this method on the requested resource ({} is namespaced)",
                        self.rt.plural
                    )));
                }
                let obj = decode_body(&body, &self.content_type())?;
                self.create(obj)
            }
            (&Method::PUT, Some(name)) => {
                let obj = decode_body(&body, &self.content_type())?;
                self.update(&name, obj)
            }
            (&Method::PATCH, Some(name)) => self.patch(&name, &body),
            (&Method::DELETE, Some(name)) => self.delete(&name, &body),
            (&Method::DELETE, None) => self.delete_collection(&body),
            _ => Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            )),
        }
    }

    /// The object as a client of this group/version sees it.
    fn present(&self, e: &Entry) -> Bytes {
        if e.meta.api_version == self.rt.api_version() {
            return e.bytes.clone();
        }
        let mut v = e.value();
        crate::convert::to_version(&self.rt, &mut v);
        Bytes::from(v.to_string())
    }

    fn present_value(&self, e: &Entry) -> Value {
        let mut v = e.value();
        if e.meta.api_version != self.rt.api_version() {
            crate::convert::to_version(&self.rt, &mut v);
        }
        v
    }

    fn respond_entry(&self, code: u16, e: &Entry) -> Result<Response, ApiError> {
        match self.sub.as_deref() {
            Some("scale") => Ok(value_response(
                code,
                &self.scale_of(&self.present_value(e))?,
            )),
            _ if self.wants_table() => {
                let v = self.present_value(e);
                let rv = v["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                Ok(value_response(
                    code,
                    &table::table(
                        &self.rt,
                        &[v],
                        &rv,
                        None,
                        SystemTime::now(),
                        self.query.get("includeObject").unwrap_or("Metadata"),
                    ),
                ))
            }
            _ => Ok(json_response(code, self.present(e))),
        }
    }

    fn get(&self, name: &str) -> Result<Response, ApiError> {
        let e = self
            .srv
            .store
            .get(&self.key(name))
            .ok_or_else(|| ApiError::not_found(&self.rt.group, &self.rt.plural, name))?;
        self.respond_entry(200, &e)
    }

    fn selectors(&self) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let label = LabelSelector::parse(self.query.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let field =
            FieldSelector::parse(self.query.get("fieldSelector").unwrap_or(""), &self.rt.kind)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok((label, field))
    }

    fn matches(
        &self,
        label: &LabelSelector,
        field: &FieldSelector,
        key: &ObjKey,
        e: &Entry,
    ) -> bool {
        if !label.matches(&e.meta.labels) {
            return false;
        }
        if field.is_empty() {
            return true;
        }
        if field.metadata_only() {
            field.matches_meta(&key.namespace, &key.name)
        } else {
            field.matches(&e.value())
        }
    }

    fn list(&self) -> Result<Response, ApiError> {
        let (label, field) = self.selectors()?;
        let limit: usize = match self.query.get("limit") {
            Some(l) => l
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
            None => 0,
        };
        let after = match self.query.get("continue") {
            Some(c) => Some(decode_continue(c)?),
            None => None,
        };
        let ns = if self.rt.namespaced {
            self.namespace.as_deref()
        } else {
            None
        };
        let after_key = after.as_ref().map(|(n, m, _)| (n.clone(), m.clone()));
        let (rv, entries) = self
            .srv
            .store
            .list(&self.rt.storage_key(), ns, after_key.as_ref());
        let rv = match after {
            Some((_, _, token_rv)) if token_rv > 0 => token_rv,
            _ => rv,
        };
        let mut items: Vec<&(ObjKey, Entry)> = Vec::new();
        let mut continue_token = None;
        for item in &entries {
            if !self.matches(&label, &field, &item.0, &item.1) {
                continue;
            }
            if limit > 0 && items.len() == limit {
                if let Some(last) = items.last() {
                    continue_token = Some(encode_continue(&last.0, rv));
                }
                break;
            }
            items.push(item);
        }
        if self.wants_table() {
            let values: Vec<Value> = items.iter().map(|(_, e)| self.present_value(e)).collect();
            let t = table::table(
                &self.rt,
                &values,
                &rv.to_string(),
                continue_token.as_deref(),
                SystemTime::now(),
                self.query.get("includeObject").unwrap_or("Metadata"),
            );
            return Ok(value_response(200, &t));
        }
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if let Some(c) = &continue_token {
            meta["continue"] = json!(c);
        }
        let head = json!({"kind": format!("{}List", self.rt.kind), "apiVersion": self.rt.api_version(), "metadata": meta});
        let head = head.to_string();
        let mut out = BytesMut::with_capacity(
            head.len() + items.iter().map(|(_, e)| e.bytes.len() + 1).sum::<usize>() + 16,
        );
        out.put_slice(&head.as_bytes()[..head.len() - 1]);
        out.put_slice(b",\"items\":[");
        for (i, (_, e)) in items.iter().enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            out.put_slice(&self.present(e));
        }
        out.put_slice(b"]}");
        Ok(json_response(200, out.freeze()))
    }

    fn namespace_admits(&self, ns: &str) -> Result<(), ApiError> {
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
    fn check_identity(&self, obj: &mut Value) -> Result<(), ApiError> {
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

    /// Prepares a new object for creation: identity, server-set metadata, defaults, validation.
    fn prepare_create(
        &self,
        mut obj: Value,
        manager: &str,
        applied: bool,
    ) -> Result<Value, ApiError> {
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
        let causes = admission::validate(&self.rt, &mut obj);
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
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
                    ],
                    "storedVersions": obj["spec"]["versions"].as_array().into_iter().flatten().filter(|v| v["storage"] == true).map(|v| v["name"].clone()).collect::<Vec<_>>(),
                });
            }
            _ => {}
        }
    }

    fn after_write(&self, e: &Entry, deleted: bool) {
        if self.rt.kind == "CustomResourceDefinition" && self.rt.crd.is_none() {
            let v = e.value();
            let name = v["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let mut reg = self.srv.registry_write();
            if deleted {
                reg.remove_crd(&name);
            } else {
                reg.set_crd(&name, crate::resources::from_crd(&v));
            }
            self.srv.generation.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn create(&self, mut obj: Value) -> Result<Response, ApiError> {
        if self.sub.is_some() {
            return Err(ApiError::method_not_allowed(
                "create is not allowed on a subresource",
            ));
        }
        self.check_identity(&mut obj)?;
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
    fn finish_update(
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
            let mut causes = admission::validate(&self.rt, &mut new);
            causes.extend(admission::validate_immutable(&self.rt, &old, &new));
            if !causes.is_empty() {
                return Err(ApiError::invalid(
                    &self.rt.group,
                    &self.rt.kind,
                    &name,
                    causes,
                ));
            }
            if has_generation(&self.rt) && !spec_equal(&old, &new) {
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

    fn commit_update<F>(
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

    fn update(&self, name: &str, mut obj: Value) -> Result<Response, ApiError> {
        let manager = manager_of(&self.query, &self.headers)?;
        if self.sub.as_deref() == Some("scale") {
            return self.update_scale(name, &manager, |_| Ok(obj));
        }
        self.check_identity(&mut obj)?;
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

    fn patch(&self, name: &str, body: &[u8]) -> Result<Response, ApiError> {
        let ct = self.content_type();
        let manager = manager_of(&self.query, &self.headers)?;
        if body.is_empty() {
            return Err(ApiError::bad_request("the patch body is empty"));
        }
        if ct.starts_with("application/apply-patch") {
            if self.query.get("fieldManager").is_none() {
                return Err(ApiError::bad_request(
                    "PATCH requests with apply content type must supply fieldManager",
                ));
            }
            let applied = decode_body(body, "application/yaml")?;
            return self.server_side_apply(name, applied, &manager);
        }
        enum Kind {
            Json(json_patch::Patch),
            Merge(Value),
            Strategic(Value),
        }
        let kind = if ct.starts_with("application/json-patch+json") {
            let p: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            Kind::Json(p)
        } else if ct.starts_with("application/merge-patch+json") {
            Kind::Merge(
                serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("invalid merge patch: {e}")))?,
            )
        } else if ct.starts_with("application/strategic-merge-patch+json") {
            if self.rt.crd.is_some() {
                return Err(ApiError::unsupported_media_type(&ct));
            }
            Kind::Strategic(serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!("invalid strategic merge patch: {e}"))
            })?)
        } else {
            return Err(ApiError::unsupported_media_type(&ct));
        };
        let apply_patch = |mut doc: Value| -> Result<Value, ApiError> {
            match &kind {
                Kind::Json(p) => {
                    json_patch::patch(&mut doc, p).map_err(|e| {
                        ApiError::invalid(
                            &self.rt.group,
                            &self.rt.kind,
                            name,
                            vec![Cause {
                                reason: "FieldValueInvalid".into(),
                                message: format!("the JSON patch could not be applied: {e}"),
                                field: String::new(),
                            }],
                        )
                    })?;
                    Ok(doc)
                }
                Kind::Merge(p) => {
                    json_patch::merge(&mut doc, p);
                    Ok(doc)
                }
                Kind::Strategic(p) => fields::strategic_patch(&doc, p, &self.rt),
            }
        };
        if self.sub.as_deref() == Some("scale") {
            return self.update_scale(name, &manager, |scale| {
                let patched = apply_patch(scale)?;
                Ok(patched)
            });
        }
        self.commit_update(name, false, |cur| {
            let Some(cur) = cur else { return Ok(None) };
            let doc = self.present_value(cur);
            let mut patched = apply_patch(doc)?;
            if !patched.is_object() {
                return Err(ApiError::bad_request("the patch result is not an object"));
            }
            self.check_identity(&mut patched)?;
            if patched["metadata"]["name"].as_str() != Some(name) {
                return Err(ApiError::invalid(
                    &self.rt.group,
                    &self.rt.kind,
                    name,
                    vec![Cause::invalid(
                        "metadata.name",
                        &patched["metadata"]["name"],
                        "field is immutable",
                    )],
                ));
            }
            self.finish_update(cur, patched, &manager, true).map(Some)
        })
    }

    fn server_side_apply(
        &self,
        name: &str,
        mut applied: Value,
        manager: &str,
    ) -> Result<Response, ApiError> {
        if self.sub.as_deref() == Some("scale") {
            return Err(ApiError::unsupported_media_type(
                "application/apply-patch+yaml",
            ));
        }
        self.check_identity(&mut applied)?;
        match applied["metadata"]["name"].as_str() {
            Some(n) if n == name => {}
            None | Some("") => applied["metadata"]["name"] = json!(name),
            Some(n) => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
        }
        let force = self.query.flag("force");
        let now = now_rfc3339();
        let sub = self.sub.clone();
        let dry = self.query.dry_run()?;
        let (g, p) = self.gr_name();
        // Creation needs the namespace admission check, which reads the store: do it before
        // taking the store's write lock (reading inside `write` would deadlock), and use its
        // answer only if the object turns out not to exist.
        let admitted = if self.rt.namespaced {
            self.namespace_admits(self.namespace.as_deref().unwrap_or_default())
        } else {
            Ok(())
        };
        let written = self
            .srv
            .store
            .write_optimistic(&self.key(name), dry, |cur| match cur {
                None => {
                    if sub.is_some() {
                        return Err(ApiError::not_found(g, p, name));
                    }
                    admitted.clone()?;
                    let merged = fields::server_side_apply(
                        None, &applied, manager, force, None, &self.rt, &now,
                    )?;
                    let obj = self.prepare_create(merged, manager, true)?;
                    Ok(Change::Put(obj))
                }
                Some(cur) => {
                    let live = self.present_value(cur);
                    let merged = fields::server_side_apply(
                        Some(&live),
                        &applied,
                        manager,
                        force,
                        sub.as_deref(),
                        &self.rt,
                        &now,
                    )?;
                    self.finish_update(cur, merged, manager, false)
                }
            })?;
        let e = written
            .entry
            .ok_or_else(|| ApiError::not_found(g, p, name))?;
        if !dry {
            self.after_write(&e, written.deleted);
        }
        self.respond_entry(if written.created { 201 } else { 200 }, &e)
    }

    fn scale_of(&self, obj: &Value) -> Result<Value, ApiError> {
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

    fn update_scale<F>(&self, name: &str, manager: &str, change: F) -> Result<Response, ApiError>
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

    fn delete(&self, name: &str, body: &[u8]) -> Result<Response, ApiError> {
        if self.sub.is_some() {
            return Err(ApiError::method_not_allowed(
                "delete is not allowed on a subresource",
            ));
        }
        let opts = self.delete_options(body)?;
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

    fn delete_collection(&self, body: &[u8]) -> Result<Response, ApiError> {
        let (label, field) = self.selectors()?;
        let ns = if self.rt.namespaced {
            self.namespace.as_deref()
        } else {
            None
        };
        let (_, entries) = self.srv.store.list(&self.rt.storage_key(), ns, None);
        let mut deleted = Vec::new();
        for (key, e) in &entries {
            if !self.matches(&label, &field, key, e) {
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

    async fn watch(self) -> Result<Response, ApiError> {
        let (label, field) = self.selectors()?;
        let timeout = match self.query.get("timeoutSeconds") {
            Some(t) => Duration::from_secs(
                t.parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {t:?}")))?,
            ),
            None => Duration::from_secs(1800),
        };
        let bookmarks = self.query.flag("allowWatchBookmarks");
        let send_initial = self.query.flag("sendInitialEvents");
        let rv_param = self.query.get("resourceVersion").unwrap_or("").to_string();
        let gr = self.rt.storage_key();
        let ns = if self.rt.namespaced {
            self.namespace.clone()
        } else {
            None
        };
        let want_name = self.name.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
        let table = self.wants_table();
        let this = Arc::new(self);
        let label_for_backlog = label.clone();
        let label_live = label.clone();
        let filter = {
            let this = this.clone();
            let gr = gr.clone();
            move |key: &ObjKey, e: &Entry| -> bool {
                key.gr == gr
                    && ns.as_ref().is_none_or(|n| *n == key.namespace)
                    && want_name.as_ref().is_none_or(|n| *n == key.name)
                    && this.matches(&label, &field, key, e)
            }
        };
        let mut initial: Vec<(EventType, Entry)> = Vec::new();
        let (start_rv, mut live) = if rv_param.is_empty() || rv_param == "0" || send_initial {
            let (rv, items, live) = this.srv.store.list_and_subscribe(&gr);
            for (k, e) in items {
                if filter(&k, &e) {
                    initial.push((EventType::Added, e));
                }
            }
            (rv, live)
        } else {
            let rv: u64 = rv_param.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid resourceVersion {rv_param:?}"))
            })?;
            match this.srv.store.watch_from(rv) {
                Ok((backlog, live)) => {
                    for ev in backlog {
                        if let Some(etype) = selected_event_type(&ev, &filter, &label_for_backlog) {
                            initial.push((etype, ev.entry.clone()));
                        }
                    }
                    (rv.max(this.srv.store.current_rv().min(rv)), live)
                }
                Err(e) => {
                    let frame = error_frame(&e);
                    let _ = tx.send(frame).await;
                    drop(tx);
                    return Ok(stream_response(rx));
                }
            }
        };
        let this2 = this.clone();
        tokio::spawn(async move {
            let this = this2;
            let label = label_live;
            let frame_of = |etype: &str, e: &Entry| -> Bytes {
                if table {
                    let v = this.present_value(e);
                    let t = table::table(
                        &this.rt,
                        std::slice::from_ref(&v),
                        v["metadata"]["resourceVersion"].as_str().unwrap_or(""),
                        None,
                        SystemTime::now(),
                        this.query.get("includeObject").unwrap_or("Metadata"),
                    );
                    event_frame(etype, t.to_string().as_bytes())
                } else {
                    event_frame(etype, &this.present(e))
                }
            };
            let mut last_rv = start_rv;
            for (etype, e) in &initial {
                last_rv = last_rv.max(e.meta.rv);
                if tx.send(frame_of(etype.as_str(), e)).await.is_err() {
                    return;
                }
            }
            if send_initial && bookmarks {
                let b = this.bookmark(last_rv.max(start_rv), true);
                if tx.send(b).await.is_err() {
                    return;
                }
            }
            let deadline = tokio::time::Instant::now() + timeout;
            let mut tick = tokio::time::interval(this.srv.bookmark_every);
            tick.tick().await;
            loop {
                tokio::select! {
                    ev = live.recv() => {
                        let ev: Arc<WatchEvent> = match ev {
                            Ok(ev) => ev,
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                                let _ = tx.send(error_frame(&ApiError::gone(last_rv, this.srv.store.current_rv()))).await;
                                return;
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                        };
                        if ev.rv <= last_rv {
                            continue;
                        }
                        last_rv = ev.rv;
                        let Some(etype) = selected_event_type(&ev, &filter, &label) else {
                            continue;
                        };
                        if tx.send(frame_of(etype.as_str(), &ev.entry)).await.is_err() {
                            return;
                        }
                    }
                    _ = tick.tick(), if bookmarks => {
                        if tx.send(this.bookmark(last_rv, false)).await.is_err() {
                            return;
                        }
                    }
                    _ = tokio::time::sleep_until(deadline) => return,
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(stream_response(rx))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj =
            json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": meta});
        event_frame("BOOKMARK", obj.to_string().as_bytes())
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

/// The event type a watcher with `filter` sees for `ev`: a modification that moves an object out
/// of a label selection is DELETED, into it ADDED, as the apiserver's watch cache reports.
fn selected_event_type<F>(ev: &WatchEvent, filter: &F, label: &LabelSelector) -> Option<EventType>
where
    F: Fn(&ObjKey, &Entry) -> bool,
{
    let now = filter(&ev.key, &ev.entry);
    match (ev.etype, &ev.prev) {
        (EventType::Modified, Some(prev)) if !label.is_empty() => {
            let before = label.matches(&prev.labels);
            match (before, now) {
                (true, true) => Some(EventType::Modified),
                (false, true) => Some(EventType::Added),
                (true, false) => {
                    // Still the same object (name, namespace) but no longer selected.
                    let mut without_labels = ev.entry.clone();
                    without_labels.meta = prev.clone();
                    filter(&ev.key, &without_labels).then_some(EventType::Deleted)
                }
                (false, false) => None,
            }
        }
        _ => now.then_some(ev.etype),
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

fn event_frame(etype: &str, object: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(object.len() + 32);
    b.put_slice(b"{\"type\":\"");
    b.put_slice(etype.as_bytes());
    b.put_slice(b"\",\"object\":");
    b.put_slice(object);
    b.put_slice(b"}\n");
    b.freeze()
}

fn error_frame(e: &ApiError) -> Bytes {
    event_frame("ERROR", e.to_status().to_string().as_bytes())
}

fn stream_response(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<Bytes, std::convert::Infallible>(b), rx))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    r
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

fn encode_continue(key: &ObjKey, rv: u64) -> String {
    format!("{rv}-{}-{}", hex(&key.namespace), hex(&key.name))
}

fn decode_continue(token: &str) -> Result<(String, String, u64), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let mut parts = token.splitn(3, '-');
    let rv = parts.next().and_then(|r| r.parse().ok()).ok_or_else(bad)?;
    let ns = parts.next().and_then(unhex).ok_or_else(bad)?;
    let name = parts.next().and_then(unhex).ok_or_else(bad)?;
    Ok((ns, name, rv))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn continue_token_round_trips() {
        let key = ObjKey {
            gr: GroupResource {
                group: String::new(),
                resource: "pods".into(),
            },
            namespace: "a-b".into(),
            name: "x.y".into(),
        };
        let t = encode_continue(&key, 42);
        assert_eq!(
            decode_continue(&t).expect("valid"),
            ("a-b".into(), "x.y".into(), 42)
        );
        assert!(decode_continue("garbage").is_err());
    }

    #[test]
    fn routes_namespaced_and_cluster_paths() {
        let reg = Registry::new();
        match route(
            &reg,
            "/apis/apps/v1/namespaces/default/deployments/web/scale",
        ) {
            Ok(Route::Resource {
                rt,
                namespace,
                name,
                sub,
            }) => {
                assert_eq!(rt.kind, "Deployment");
                assert_eq!(namespace.as_deref(), Some("default"));
                assert_eq!(name.as_deref(), Some("web"));
                assert_eq!(sub.as_deref(), Some("scale"));
            }
            _ => panic!("deployment scale route"),
        }
        match route(&reg, "/api/v1/namespaces/default/status") {
            Ok(Route::Resource { rt, name, sub, .. }) => {
                assert_eq!(rt.kind, "Namespace");
                assert_eq!(name.as_deref(), Some("default"));
                assert_eq!(sub.as_deref(), Some("status"));
            }
            _ => panic!("namespace status route"),
        }
        assert!(route(&reg, "/apis/nope/v1/things").is_err());
    }
}
