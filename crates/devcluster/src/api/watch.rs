//! Watches: the initial list or the backlog since a resourceVersion, then live events filtered
//! by the request's selectors, bookmarks, and the timeout, as a stream of JSON frames.

use super::Ctx;
use super::query::matches;
use crate::error::ApiError;
use crate::selector::LabelSelector;
use crate::store::{Entry, EventType, ObjKey, WatchEvent};
use crate::table;
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

impl Ctx {
    pub(super) async fn watch(self) -> Result<Response, ApiError> {
        let (label, field) = self.query.selectors(&self.rt.kind)?;
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
            let gr = gr.clone();
            let rt = this.rt.clone();
            move |key: &ObjKey, e: &Entry| -> bool {
                key.gr == gr
                    && ns.as_ref().is_none_or(|n| *n == key.namespace)
                    && want_name.as_ref().is_none_or(|n| *n == key.name)
                    && matches(&label, &field, &rt, &key.namespace, &key.name, e)
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
                    return Ok(stream_response(rx, this.srv.stopping()));
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
        Ok(stream_response(rx, this.srv.stopping()))
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

fn stream_response(
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> Response {
    // The stream ends when the events end or the server stops.
    let stream = futures::stream::unfold((rx, stopping), |(mut rx, mut stopping)| async move {
        if *stopping.borrow() {
            return None;
        }
        let next = tokio::select! {
            b = rx.recv() => b,
            _ = stopping.wait_for(|s| *s) => None,
        };
        next.map(|b| (Ok::<Bytes, std::convert::Infallible>(b), (rx, stopping)))
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
