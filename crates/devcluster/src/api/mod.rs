//! The Kubernetes REST API: the server's shared state, routing a request path, and dispatching
//! a request to its verb. The verbs live in the submodules, one job each.

mod body;
pub mod metrics;
mod patch;
mod query;
mod read;
mod review;
mod scale;
mod strict;
mod watch;
mod write;

use crate::auth::{self, Attributes, UserInfo};
use crate::discovery;
use crate::error::ApiError;
use crate::resources::{GroupResource, Registry, ResourceType};
use crate::store::{ObjKey, Store};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use query::Query;
use serde_json::Value;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

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
    /// Token keys (the admin token, ServiceAccount tokens).
    pub auth: auth::token::Auth,
    /// What a request without credentials is.
    pub anonymous: auth::Anonymous,
    next_ip: AtomicU32,
    /// Turns true when the server stops: open watches end and kept-alive connections close,
    /// as when a kube-apiserver process goes away.
    stopped: tokio::sync::watch::Sender<bool>,
    /// Requests clients made (`/metrics`).
    pub requests: metrics::RequestCounter,
}

impl Server {
    /// A server over `store`.
    pub fn new(
        store: Arc<Store>,
        address: String,
        bookmark_every: Duration,
        auth: auth::token::Auth,
        anonymous: auth::Anonymous,
    ) -> Self {
        let srv = Self {
            store,
            registry: RwLock::new(Registry::new()),
            address,
            generation: AtomicU64::new(1),
            bookmark_every,
            auth,
            anonymous,
            next_ip: AtomicU32::new(10),
            stopped: tokio::sync::watch::Sender::new(false),
            requests: metrics::RequestCounter::default(),
        };
        srv.reload_crds();
        srv
    }

    /// Stops serving: open watches end, and requests on connections still open get 503 and
    /// `Connection: close` (clients reconnect to whatever listens next).
    pub fn stop(&self) {
        self.stopped.send_replace(true);
    }

    /// Whether [`Server::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        *self.stopped.borrow()
    }

    /// Resolves when the server stops.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopped.subscribe()
    }

    /// Authorizes a request of `user`: `Ok(reason)` or `Err(reason)` (kube-apiserver's
    /// reasons: empty, or RBAC's allow or resolution-error text).
    pub fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Result<String, String> {
        if user.is_privileged() {
            return Ok(String::new());
        }
        auth::rbac::Policy::read(&self.store, Some(&attrs.namespace)).authorize(user, attrs)
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
    Metrics,
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
        ["metrics"] => return Ok(Route::Metrics),
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

/// Who a request is from, after impersonation, and whether they may make it: the user, or
/// the 401/403 response.
fn admit(srv: &Server, parts: &axum::http::request::Parts) -> Result<UserInfo, ApiError> {
    let user = if parts.extensions.get::<auth::InProcess>().is_some() {
        UserInfo::controllers()
    } else {
        auth::authenticate(&srv.auth, &srv.store, srv.anonymous, &parts.headers)?
    };
    let user = auth::impersonate(user, &parts.headers, |u, a| srv.authorize(u, a).map(drop))?;
    if !user.is_privileged() {
        let attrs = Attributes::of_request(&parts.method, parts.uri.path(), parts.uri.query());
        if let Err(reason) = srv.authorize(&user, &attrs) {
            return Err(attrs.forbidden(&user.name, &reason));
        }
    }
    Ok(user)
}

/// The single entry point for every request.
pub async fn handle(State(srv): State<Arc<Server>>, req: Request) -> Response {
    if srv.is_stopped() {
        let mut r = ApiError::unavailable("the server is shutting down").into_response();
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    let (parts, body) = req.into_parts();
    let user = match admit(&srv, &parts) {
        Ok(u) => Arc::new(u),
        Err(e) => return e.into_response(),
    };
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
    if parts.extensions.get::<auth::InProcess>().is_none() {
        match &route {
            Route::Resource { rt, name, sub, .. } => srv.requests.resource(&metrics::Counted {
                method: &parts.method,
                headers: &parts.headers,
                group: &rt.group,
                resource: &rt.plural,
                subresource: sub.as_deref(),
                named: name.is_some(),
                watch: query.flag("watch"),
                dry_run: query.get("dryRun").is_some(),
            }),
            Route::Metrics => {}
            _ => srv.requests.other(),
        }
    }
    let result = match route {
        Route::Version => Ok(value_response(200, &discovery::version())),
        Route::Health => Ok((StatusCode::OK, "ok").into_response()),
        Route::Metrics => {
            let mut r = Response::new(Body::from(srv.requests.render()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            Ok(r)
        }
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
            let warnings = Arc::new(Mutex::new(Vec::new()));
            let ctx = Ctx {
                srv: srv.clone(),
                rt,
                namespace,
                name,
                sub,
                query,
                headers: parts.headers,
                warnings: warnings.clone(),
                user,
            };
            let mut response = ctx
                .dispatch(&parts.method, body)
                .await
                .unwrap_or_else(IntoResponse::into_response);
            add_warnings(&mut response, &warnings);
            return response;
        }
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Adds each warning as a `Warning: 299 - "text"` header, as kube-apiserver does.
fn add_warnings(response: &mut Response, warnings: &Mutex<Vec<String>>) {
    let warnings = warnings.lock().unwrap_or_else(|p| p.into_inner());
    for w in warnings.iter() {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            response.headers_mut().append(header::WARNING, v);
        }
    }
}

struct Ctx {
    srv: Arc<Server>,
    rt: Arc<ResourceType>,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
    query: Query,
    headers: HeaderMap,
    /// `Warning` headers of the response.
    warnings: Arc<Mutex<Vec<String>>>,
    /// Who the request is from.
    user: Arc<UserInfo>,
}

/// Decodes a JSON, YAML or protobuf request body into one object.
pub fn decode_body(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    body::decode(body, content_type).map(|p| p.value)
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
        if self.rt.create_only {
            return match (method, &self.name) {
                (&Method::POST, None) => self.create_review(&body),
                _ => Err(ApiError::method_not_allowed(
                    "the server does not allow this method on the requested resource",
                )),
            };
        }
        match self.sub.as_deref() {
            None => {}
            Some("status") if self.rt.status => {}
            Some("scale") if self.rt.scale.is_some() => {}
            Some("token") if self.rt.group.is_empty() && self.rt.plural == "serviceaccounts" => {
                return match (method, self.name.clone()) {
                    (&Method::POST, Some(name)) => self.create_token(&name, &body),
                    _ => Err(ApiError::method_not_allowed(
                        "the server does not allow this method on the requested resource",
                    )),
                };
            }
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
                let parsed = body::decode(&body, &self.content_type())?;
                self.create(parsed.value, parsed.duplicates)
            }
            (&Method::PUT, Some(name)) => {
                let parsed = body::decode(&body, &self.content_type())?;
                self.update(&name, parsed.value, parsed.duplicates)
            }
            (&Method::PATCH, Some(name)) => self.patch(&name, &body),
            (&Method::DELETE, Some(name)) => self.delete(&name, &body),
            (&Method::DELETE, None) => self.delete_collection(&body),
            _ => Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
