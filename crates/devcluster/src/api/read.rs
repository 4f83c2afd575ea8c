//! Reads: get and list (with `limit`/`continue` paging), and how an object is presented: in the
//! client's group version, as JSON, or as a Table (`Accept: ...;as=Table`).

use super::query::{decode_continue, encode_continue, matches};
use super::{Ctx, json_response, value_response};
use crate::error::ApiError;
use crate::store::Entry;
use crate::table;
use axum::http::header;
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};
use std::time::SystemTime;

impl Ctx {
    pub(super) fn wants_table(&self) -> bool {
        self.headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("as=Table"))
    }

    /// The object as a client of this group/version sees it.
    pub(super) fn present(&self, e: &Entry) -> Bytes {
        if e.meta.api_version == self.rt.api_version() {
            return e.bytes.clone();
        }
        let mut v = e.value();
        crate::convert::to_version(&self.rt, &mut v);
        Bytes::from(v.to_string())
    }

    pub(super) fn present_value(&self, e: &Entry) -> Value {
        let mut v = e.value();
        if e.meta.api_version != self.rt.api_version() {
            crate::convert::to_version(&self.rt, &mut v);
        }
        v
    }

    pub(super) fn respond_entry(&self, code: u16, e: &Entry) -> Result<Response, ApiError> {
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

    pub(super) fn get(&self, name: &str) -> Result<Response, ApiError> {
        let e = self
            .srv
            .store
            .get(&self.key(name))
            .ok_or_else(|| ApiError::not_found(&self.rt.group, &self.rt.plural, name))?;
        self.respond_entry(200, &e)
    }

    pub(super) fn list(&self) -> Result<Response, ApiError> {
        let (label, field) = self.query.selectors(&self.rt.kind)?;
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
        // A field selector on the object's content decodes each object: not under the store
        // lock, so such a list takes the rest of the bucket (labels kept) and selects after.
        let deep = !field.is_empty() && !field.metadata_only();
        let (rv, mut items, mut more) = self.srv.store.list_page(
            &self.rt.storage_key(),
            ns,
            after_key.as_ref(),
            if deep { 0 } else { limit },
            |ns, name, e| {
                if deep {
                    label.matches(&e.meta.labels)
                } else {
                    matches(&label, &field, &self.rt, ns, name, e)
                }
            },
        );
        if deep {
            items.retain(|(k, e)| matches(&label, &field, &self.rt, &k.namespace, &k.name, e));
            if limit > 0 && items.len() > limit {
                items.truncate(limit);
                more = true;
            }
        }
        let rv = match after {
            Some((_, _, token_rv)) if token_rv > 0 => token_rv,
            _ => rv,
        };
        let continue_token = match items.last() {
            Some(last) if more => Some(encode_continue(&last.0, rv)),
            _ => None,
        };
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
}
