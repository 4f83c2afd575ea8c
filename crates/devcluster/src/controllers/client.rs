//! An in-process API client: controllers write through [`crate::api::handle`], so admission,
//! defaults, managedFields, generation, resourceVersion conflicts and garbage collection apply
//! exactly as for kubectl, without a TCP round trip.

use crate::api::{self, Server};
use crate::resources::GroupResource;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use serde_json::Value;
use std::sync::Arc;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error status.
    #[error("{method} {path}: {code} {message}")]
    Status {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
        /// HTTP status.
        code: u16,
        /// The Status message.
        message: String,
    },
    /// The request could not be built or the answer could not be read.
    #[error("{method} {path}: {message}")]
    Transport {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
        /// What went wrong.
        message: String,
    },
}

impl ClientError {
    /// Whether the write lost a resourceVersion race (409) and should be retried after a re-read.
    pub fn is_conflict(&self) -> bool {
        matches!(self, ClientError::Status { code: 409, .. })
    }

    /// Whether the object was not found.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Status { code: 404, .. })
    }
}

/// The URL path of a resource collection or object.
pub fn path(gr: &GroupResource, namespace: &str, name: Option<&str>) -> String {
    let version = match gr.group.as_str() {
        "" => "v1",
        "apps.kruise.io" => "v1alpha1",
        _ => "v1",
    };
    let mut p = if gr.group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{}/{version}", gr.group)
    };
    if !namespace.is_empty() {
        p.push_str("/namespaces/");
        p.push_str(namespace);
    }
    p.push('/');
    p.push_str(&gr.resource);
    if let Some(n) = name {
        p.push('/');
        p.push_str(n);
    }
    p
}

/// A client that calls the API handler in process.
#[derive(Clone)]
pub struct Client {
    srv: Arc<Server>,
}

impl Client {
    /// A client of `srv`.
    pub fn new(srv: Arc<Server>) -> Self {
        Self { srv }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        manager: &str,
        content_type: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let transport = |message: String| ClientError::Transport {
            method: method.to_string(),
            path: path.to_string(),
            message,
        };
        let uri = format!("{path}?fieldManager={manager}");
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| transport(e.to_string()))?,
            None => Vec::new(),
        };
        let req = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, format!("{manager}/v1.33.0"))
            .extension(crate::auth::InProcess)
            .body(Body::from(bytes))
            .map_err(|e| transport(e.to_string()))?;
        let resp = api::handle(State(self.srv.clone()), req).await;
        let code = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), api::MAX_BODY * 4)
            .await
            .map_err(|e| transport(e.to_string()))?;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if code >= 400 {
            return Err(ClientError::Status {
                method: method.to_string(),
                path: path.to_string(),
                code,
                message: v["message"].as_str().unwrap_or_default().to_string(),
            });
        }
        Ok(v)
    }

    /// POSTs a new object to a collection.
    pub async fn create(
        &self,
        gr: &GroupResource,
        namespace: &str,
        obj: &Value,
        manager: &str,
    ) -> Result<Value, ClientError> {
        let p = path(gr, namespace, None);
        self.send(Method::POST, &p, manager, "application/json", Some(obj))
            .await
    }

    /// PUTs an object (its resourceVersion makes this a compare-and-swap).
    pub async fn update(
        &self,
        gr: &GroupResource,
        namespace: &str,
        obj: &Value,
        manager: &str,
    ) -> Result<Value, ClientError> {
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let p = path(gr, namespace, Some(name));
        self.send(Method::PUT, &p, manager, "application/json", Some(obj))
            .await
    }

    /// PUTs an object's status subresource.
    pub async fn update_status(
        &self,
        gr: &GroupResource,
        namespace: &str,
        obj: &Value,
        manager: &str,
    ) -> Result<Value, ClientError> {
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let p = format!("{}/status", path(gr, namespace, Some(name)));
        self.send(Method::PUT, &p, manager, "application/json", Some(obj))
            .await
    }

    /// Applies a JSON merge patch.
    pub async fn merge_patch(
        &self,
        gr: &GroupResource,
        namespace: &str,
        name: &str,
        patch: &Value,
        manager: &str,
    ) -> Result<Value, ClientError> {
        let p = path(gr, namespace, Some(name));
        self.send(
            Method::PATCH,
            &p,
            manager,
            "application/merge-patch+json",
            Some(patch),
        )
        .await
    }

    /// Deletes an object (background propagation); a missing object is not an error.
    pub async fn delete(
        &self,
        gr: &GroupResource,
        namespace: &str,
        name: &str,
        manager: &str,
    ) -> Result<(), ClientError> {
        let p = path(gr, namespace, Some(name));
        match self
            .send(Method::DELETE, &p, manager, "application/json", None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}
