//! Authentication and authorization as kube-apiserver does them.
//!
//! - **Who**: a bearer token is the cluster admin's (the token in the dev cluster's kubeconfig:
//!   `kubernetes-admin`, group `system:masters`) or a ServiceAccount token issued through
//!   `serviceaccounts/token` ([`token`]): `system:serviceaccount:NS:NAME`, groups
//!   `system:serviceaccounts`, `system:serviceaccounts:NS`, `system:authenticated`. Any other
//!   token is 401. A request without credentials is what [`Anonymous`] says: the admin (the
//!   default, so that plain HTTP on loopback needs no setup), or `system:anonymous` in
//!   `system:unauthenticated` as kube-apiserver treats it.
//! - **As whom**: `Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid` and
//!   `Impersonate-Extra-*` (what `kubectl --as`/`--as-group` send) switch the identity when the
//!   caller may `impersonate` each of them.
//! - **May they**: `system:masters` may do anything; everyone else is authorized by RBAC
//!   ([`rbac`]) against the stored Roles, ClusterRoles and bindings, with the default policy of
//!   [`bootstrap`]. A refusal is 403 with kube-apiserver's message.

pub mod bootstrap;
pub mod rbac;
pub mod token;

use crate::error::ApiError;
use axum::http::{HeaderMap, Method, header};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The group whose members may do anything (kube-apiserver's privileged group).
pub const MASTERS: &str = "system:masters";
/// Every authenticated user is in this group.
pub const AUTHENTICATED: &str = "system:authenticated";
/// Every unauthenticated request is in this group.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The user of unauthenticated requests.
pub const ANONYMOUS: &str = "system:anonymous";
/// The user name of the admin token in the dev cluster's kubeconfig.
pub const ADMIN: &str = "kubernetes-admin";

/// Who a request is from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    /// User name (`system:serviceaccount:default:robot`).
    pub name: String,
    /// Unique id (a ServiceAccount's uid), if any.
    pub uid: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Extra attributes (`authentication.kubernetes.io/credential-id`).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// The cluster admin of the dev cluster's kubeconfig.
    pub fn admin() -> Self {
        Self {
            name: ADMIN.into(),
            groups: vec![MASTERS.into(), AUTHENTICATED.into()],
            ..Self::default()
        }
    }

    /// The identity of the simulated controllers and kubelet, which write in process.
    pub fn controllers() -> Self {
        Self {
            name: "system:kube-controller-manager".into(),
            groups: vec![MASTERS.into(), AUTHENTICATED.into()],
            ..Self::default()
        }
    }

    /// `system:anonymous`.
    pub fn anonymous() -> Self {
        Self {
            name: ANONYMOUS.into(),
            groups: vec![UNAUTHENTICATED.into()],
            ..Self::default()
        }
    }

    /// A ServiceAccount's user name.
    pub fn service_account_name(namespace: &str, name: &str) -> String {
        format!("system:serviceaccount:{namespace}:{name}")
    }

    /// The groups of a ServiceAccount in `namespace`.
    pub fn service_account_groups(namespace: &str) -> Vec<String> {
        vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{namespace}"),
        ]
    }

    /// `(namespace, name)` of a ServiceAccount user name.
    pub fn split_service_account(user: &str) -> Option<(&str, &str)> {
        let rest = user.strip_prefix("system:serviceaccount:")?;
        let (ns, name) = rest.split_once(':')?;
        (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
    }

    /// Whether the user may do anything without RBAC.
    pub fn is_privileged(&self) -> bool {
        self.groups.iter().any(|g| g == MASTERS)
    }

    /// The `userInfo` of a SelfSubjectReview or TokenReview.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"username": self.name, "groups": self.groups});
        if !self.uid.is_empty() {
            v["uid"] = json!(self.uid);
        }
        if !self.extra.is_empty() {
            v["extra"] = json!(self.extra);
        }
        v
    }
}

/// What a request without credentials is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Anonymous {
    /// The cluster admin, as the dev cluster has always treated plain loopback HTTP (the
    /// default: raw HTTP clients, benchmarks and in-process tools need no token).
    #[default]
    Admin,
    /// `system:anonymous` in `system:unauthenticated`, authorized by RBAC, as kube-apiserver
    /// with `--anonymous-auth=true`.
    Anonymous,
    /// 401, as kube-apiserver with `--anonymous-auth=false`.
    Reject,
}

/// Marks a request made in process by the simulated controllers (an extension no network
/// client can set).
#[derive(Debug, Clone, Copy)]
pub struct InProcess;

/// 401 as kube-apiserver answers it.
pub fn unauthorized() -> ApiError {
    ApiError::unauthorized()
}

/// Authenticates a request: its bearer token, or what an unauthenticated request is.
pub fn authenticate(
    auth: &token::Auth,
    store: &crate::store::Store,
    anonymous: Anonymous,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return match anonymous {
            Anonymous::Admin => Ok(UserInfo::admin()),
            Anonymous::Anonymous => Ok(UserInfo::anonymous()),
            Anonymous::Reject => Err(unauthorized()),
        };
    };
    let text = value.to_str().map_err(|_| unauthorized())?;
    let Some(tok) = text
        .strip_prefix("Bearer ")
        .or_else(|| text.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Err(unauthorized());
    };
    auth.authenticate(tok, store).ok_or_else(unauthorized)
}

/// A request's attributes as kube-apiserver's RequestInfo and authorizer see them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`,
    /// `impersonate`, ... (a lowercased HTTP method for non-resource requests).
    pub verb: String,
    /// A resource request (otherwise a non-resource path).
    pub resource_request: bool,
    /// API group.
    pub group: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// Object name (also from a `metadata.name=` field selector of a list or watch).
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// The URL path (non-resource requests).
    pub path: String,
}

impl Attributes {
    /// The attributes of an HTTP request, as `RequestInfoFactory` derives them.
    pub fn of_request(method: &Method, path: &str, query: Option<&str>) -> Self {
        let mut a = Attributes {
            verb: method.as_str().to_ascii_lowercase(),
            path: path.to_string(),
            ..Attributes::default()
        };
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
            return a;
        }
        let mut rest: &[&str] = &parts[1..];
        if parts[0] == "apis" {
            if rest.len() < 3 {
                return a;
            }
            a.group = rest[0].to_string();
            rest = &rest[1..];
        }
        a.resource_request = true;
        rest = &rest[1..];
        a.verb = match *method {
            Method::POST => "create",
            Method::GET | Method::HEAD => "get",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "",
        }
        .to_string();
        if rest.first() == Some(&"namespaces")
            && let Some(ns) = rest.get(1)
        {
            a.namespace = ns.to_string();
            if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
                rest = &rest[2..];
            }
        }
        if rest.len() >= 3 {
            a.subresource = rest[2].to_string();
        }
        if rest.len() >= 2 {
            a.name = rest[1].to_string();
        }
        if let Some(r) = rest.first() {
            a.resource = r.to_string();
        }
        if a.name.is_empty() && a.verb == "get" {
            let q: Vec<(String, String)> = query
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default();
            let watch = q
                .iter()
                .find(|(k, _)| k == "watch")
                .is_some_and(|(_, v)| !matches!(v.to_ascii_lowercase().as_str(), "false" | "0"));
            a.verb = if watch { "watch" } else { "list" }.to_string();
            if let Some((_, fs)) = q.iter().find(|(k, _)| k == "fieldSelector")
                && let Some(name) = exact_name(fs)
            {
                a.name = name;
            }
        }
        if a.name.is_empty() && a.verb == "delete" {
            a.verb = "deletecollection".into();
        }
        a
    }

    /// The message kube-apiserver gives when these attributes are refused.
    pub fn forbidden_message(&self, user: &str) -> String {
        if !self.resource_request {
            return format!("User {user:?} cannot {} path {:?}", self.verb, self.path);
        }
        let mut resource = self.resource.clone();
        if !self.subresource.is_empty() {
            resource = format!("{resource}/{}", self.subresource);
        }
        if self.namespace.is_empty() {
            format!(
                "User {user:?} cannot {} resource {resource:?} in API group {:?} at the cluster scope",
                self.verb, self.group
            )
        } else {
            format!(
                "User {user:?} cannot {} resource {resource:?} in API group {:?} in the namespace {:?}",
                self.verb, self.group, self.namespace
            )
        }
    }

    /// The 403 for these attributes (`reason`: the authorizer's, appended after a colon).
    pub fn forbidden(&self, user: &str, reason: &str) -> ApiError {
        let msg = self
            .forbidden_message(user)
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        let why = if reason.is_empty() {
            msg
        } else {
            format!("{msg}: {reason}")
        };
        ApiError::forbidden_resource(&self.group, &self.resource, &self.name, &why)
    }
}

/// The name a `metadata.name=NAME` (or `==`) field selector asks for exactly.
fn exact_name(selector: &str) -> Option<String> {
    let terms: Vec<&str> = selector.split(',').collect();
    terms.iter().find_map(|t| {
        let (k, v) = t.split_once("==").or_else(|| t.split_once('='))?;
        (k.trim() == "metadata.name" && !v.contains('!') && !v.is_empty())
            .then(|| v.trim().to_string())
            .filter(|n| n != "." && n != ".." && !n.contains('/') && !n.contains('%'))
    })
}

/// What an impersonation request asks to act as.
enum Target {
    User(String),
    ServiceAccount(String, String),
    Group(String),
    Extra(String, String),
    Uid(String),
}

/// Applies the impersonation headers: the identity to act as, once the caller may
/// `impersonate` each part of it (`authorize` decides, returning a reason when refused).
pub fn impersonate(
    user: UserInfo,
    headers: &HeaderMap,
    mut authorize: impl FnMut(&UserInfo, &Attributes) -> Result<(), String>,
) -> Result<UserInfo, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };
    let mut targets = Vec::new();
    let requested_user = values("impersonate-user")
        .into_iter()
        .next()
        .unwrap_or_default();
    let has_user = !requested_user.is_empty();
    if has_user {
        match UserInfo::split_service_account(&requested_user) {
            Some((ns, name)) => targets.push(Target::ServiceAccount(ns.into(), name.into())),
            None => targets.push(Target::User(requested_user.clone())),
        }
    }
    let groups_specified = headers.get("impersonate-group").is_some();
    for g in values("impersonate-group") {
        targets.push(Target::Group(g));
    }
    let mut has_extra = false;
    for (name, value) in headers {
        if let Some(key) = name.as_str().strip_prefix("impersonate-extra-") {
            has_extra = true;
            let key = percent_decode(key);
            if let Ok(v) = value.to_str() {
                targets.push(Target::Extra(key, v.to_string()));
            }
        }
    }
    let uid = values("impersonate-uid")
        .into_iter()
        .next()
        .unwrap_or_default();
    if !uid.is_empty() {
        targets.push(Target::Uid(uid.clone()));
    }
    if targets.is_empty() {
        return Ok(user);
    }
    if !has_user {
        let _ = has_extra;
        return Err(ApiError::unknown(
            500,
            "Internal Server Error: requested impersonation without impersonating a user",
        ));
    }
    let mut out = UserInfo::default();
    for t in &targets {
        let mut attrs = Attributes {
            verb: "impersonate".into(),
            resource_request: true,
            ..Attributes::default()
        };
        match t {
            Target::ServiceAccount(ns, name) => {
                attrs.resource = "serviceaccounts".into();
                attrs.namespace = ns.clone();
                attrs.name = name.clone();
                out.name = UserInfo::service_account_name(ns, name);
                if !groups_specified {
                    out.groups = UserInfo::service_account_groups(ns);
                }
            }
            Target::User(name) => {
                attrs.resource = "users".into();
                attrs.name = name.clone();
                out.name = name.clone();
            }
            Target::Group(g) => {
                attrs.resource = "groups".into();
                attrs.name = g.clone();
                out.groups.push(g.clone());
            }
            Target::Extra(key, value) => {
                attrs.group = "authentication.k8s.io".into();
                attrs.resource = "userextras".into();
                attrs.subresource = key.clone();
                attrs.name = value.clone();
                out.extra
                    .entry(key.clone())
                    .or_default()
                    .push(value.clone());
            }
            Target::Uid(u) => {
                attrs.group = "authentication.k8s.io".into();
                attrs.resource = "uids".into();
                attrs.name = u.clone();
                out.uid = u.clone();
            }
        }
        if let Err(reason) = authorize(&user, &attrs) {
            return Err(attrs.forbidden(&user.name, &reason));
        }
    }
    if out.name != ANONYMOUS {
        if !out
            .groups
            .iter()
            .any(|g| g == AUTHENTICATED || g == UNAUTHENTICATED)
        {
            out.groups.push(AUTHENTICATED.into());
        }
    } else if !out.groups.iter().any(|g| g == UNAUTHENTICATED) {
        out.groups.push(UNAUTHENTICATED.into());
    }
    Ok(out)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(hex).unwrap_or(""), 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: Method, path: &str, query: Option<&str>) -> Attributes {
        Attributes::of_request(&method, path, query)
    }

    #[test]
    fn request_attributes_table() {
        let a = attrs(Method::GET, "/api/v1/namespaces/default/pods", None);
        assert_eq!(
            (a.verb.as_str(), a.resource.as_str(), a.namespace.as_str()),
            ("list", "pods", "default")
        );
        let a = attrs(
            Method::GET,
            "/api/v1/namespaces/default/pods",
            Some("watch=true"),
        );
        assert_eq!(a.verb, "watch");
        let a = attrs(
            Method::GET,
            "/api/v1/namespaces/default/pods",
            Some("fieldSelector=metadata.name%3Dweb&watch=1"),
        );
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("watch", "web"));
        let a = attrs(
            Method::PUT,
            "/apis/apps/v1/namespaces/ns/deployments/web/scale",
            None,
        );
        assert_eq!(
            (
                a.verb.as_str(),
                a.group.as_str(),
                a.resource.as_str(),
                a.name.as_str(),
                a.subresource.as_str()
            ),
            ("update", "apps", "deployments", "web", "scale")
        );
        let a = attrs(Method::DELETE, "/api/v1/namespaces/ns/configmaps", None);
        assert_eq!(a.verb, "deletecollection");
        let a = attrs(Method::GET, "/api/v1/namespaces/team", None);
        assert_eq!(
            (a.resource.as_str(), a.name.as_str(), a.namespace.as_str()),
            ("namespaces", "team", "team")
        );
        let a = attrs(Method::PUT, "/api/v1/namespaces/team/status", None);
        assert_eq!(
            (a.resource.as_str(), a.name.as_str(), a.subresource.as_str()),
            ("namespaces", "team", "status")
        );
        for p in [
            "/api",
            "/api/v1",
            "/apis/apps/v1",
            "/version",
            "/openapi/v3",
        ] {
            let a = attrs(Method::GET, p, None);
            assert!(!a.resource_request, "{p}");
            assert_eq!(a.verb, "get");
        }
    }

    #[test]
    fn forbidden_messages_read_like_kube_apiserver() {
        let sa = "system:serviceaccount:ns:robot";
        let a = attrs(
            Method::GET,
            "/apis/apps/v1/namespaces/ns/deployments/web/scale",
            None,
        );
        let e = a.forbidden(sa, "");
        assert_eq!(
            e.message,
            r#"deployments.apps "web" is forbidden: User "system:serviceaccount:ns:robot" cannot get resource "deployments/scale" in API group "apps" in the namespace "ns""#
        );
        assert_eq!(e.code, 403);
        let a = attrs(Method::GET, "/api/v1/nodes", None);
        assert_eq!(
            a.forbidden(sa, "").message,
            r#"nodes is forbidden: User "system:serviceaccount:ns:robot" cannot list resource "nodes" in API group "" at the cluster scope"#
        );
        let a = attrs(Method::GET, "/api", None);
        assert_eq!(
            a.forbidden("system:anonymous", "").message,
            r#"forbidden: User "system:anonymous" cannot get path "/api""#
        );
    }

    #[test]
    fn impersonating_a_service_account_gives_its_groups() {
        let mut h = HeaderMap::new();
        h.insert(
            "impersonate-user",
            "system:serviceaccount:ns:robot".parse().expect("header"),
        );
        let mut asked = Vec::new();
        let u = impersonate(UserInfo::admin(), &h, |_, a| {
            asked.push((a.resource.clone(), a.namespace.clone(), a.name.clone()));
            Ok(())
        })
        .expect("allowed");
        assert_eq!(u.name, "system:serviceaccount:ns:robot");
        assert_eq!(
            u.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ns",
                "system:authenticated"
            ]
        );
        assert_eq!(
            asked,
            [("serviceaccounts".into(), "ns".into(), "robot".into())]
        );
        let mut h = HeaderMap::new();
        h.insert("impersonate-user", "bob".parse().expect("header"));
        h.append("impersonate-group", "devs".parse().expect("header"));
        let err = impersonate(UserInfo::admin(), &h, |_, a| {
            if a.resource == "groups" {
                Err(String::new())
            } else {
                Ok(())
            }
        })
        .expect_err("groups refused");
        assert_eq!(
            err.message,
            r#"groups "devs" is forbidden: User "kubernetes-admin" cannot impersonate resource "groups" in API group "" at the cluster scope"#
        );
    }
}
