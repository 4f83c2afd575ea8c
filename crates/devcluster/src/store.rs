//! Object storage: objects kept as compact JSON bytes, one global resourceVersion counter,
//! a bounded event log for watches that resume from a resourceVersion, and optional
//! persistence to a data directory.

use crate::error::ApiError;
use crate::resources::GroupResource;
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// Identifies one stored object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjKey {
    /// Storage group and resource.
    pub gr: GroupResource,
    /// Namespace; empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// What the store indexes about an object, so selectors and the garbage collector need not parse it.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// metadata.uid.
    pub uid: String,
    /// metadata.resourceVersion.
    pub rv: u64,
    /// metadata.labels.
    pub labels: BTreeMap<String, String>,
    /// uids in metadata.ownerReferences.
    pub owners: Vec<String>,
    /// apiVersion as stored.
    pub api_version: String,
    /// Whether metadata.deletionTimestamp is set.
    pub deleting: bool,
}

impl Meta {
    fn of(v: &Value) -> Self {
        let m = &v["metadata"];
        Self {
            uid: m["uid"].as_str().unwrap_or_default().to_string(),
            rv: m["resourceVersion"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            labels: m["labels"]
                .as_object()
                .map(|l| {
                    l.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            owners: m["ownerReferences"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|o| o["uid"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            api_version: v["apiVersion"].as_str().unwrap_or_default().to_string(),
            deleting: m.get("deletionTimestamp").is_some_and(|d| !d.is_null()),
        }
    }
}

/// A stored object: its JSON bytes and its index.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The object as compact JSON.
    pub bytes: Bytes,
    /// What is indexed about it.
    pub meta: Arc<Meta>,
}

impl Entry {
    /// Parses the stored JSON.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

/// Watch event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// ADDED.
    Added,
    /// MODIFIED.
    Modified,
    /// DELETED.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as delivered to watchers.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// resourceVersion of the change.
    pub rv: u64,
    /// What happened.
    pub etype: EventType,
    /// Which object.
    pub key: ObjKey,
    /// The object after the change (before it, for deletions, with the deletion's resourceVersion).
    pub entry: Entry,
    /// What was indexed about the object before a modification (selectors use it to turn a
    /// change that leaves or enters a selection into DELETED or ADDED).
    pub prev: Option<Arc<Meta>>,
}

/// A receiver of live changes.
pub type EventReceiver = broadcast::Receiver<Arc<WatchEvent>>;

/// What a write closure decides.
pub enum Change {
    /// Store this object (its resourceVersion is set by the store).
    Put(Value),
    /// Remove the object.
    Delete,
    /// Leave it as it is; answer with the current object.
    Unchanged,
}

/// The result of a write.
#[derive(Debug, Clone)]
pub struct Written {
    /// The object after the write (the removed object for deletions), `None` if nothing existed.
    pub entry: Option<Entry>,
    /// Whether the write created the object.
    pub created: bool,
    /// Whether the object was removed.
    pub deleted: bool,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    buckets: HashMap<GroupResource, BTreeMap<(String, String), Entry>>,
    log: VecDeque<Arc<WatchEvent>>,
    compacted: u64,
    by_uid: HashMap<String, ObjKey>,
    dependents: HashMap<String, BTreeSet<ObjKey>>,
}

/// The object store shared by the API server and the simulated controllers.
pub struct Store {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<WatchEvent>>,
    log_cap: usize,
    persist: Option<Mutex<Persist>>,
}

/// An error opening or writing the data directory.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing a file failed.
    #[error("data directory {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A record did not parse.
    #[error("data directory {path}:{line}: corrupt record: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

struct Persist {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
    failed: bool,
}

impl Persist {
    fn record(&mut self, key: &ObjKey, obj: Option<&Bytes>, rv: u64) {
        if self.failed {
            return;
        }
        let head = json!([key.gr.group, key.gr.resource, key.namespace, key.name]);
        let res = (|| -> std::io::Result<()> {
            self.out.write_all(b"{\"k\":")?;
            self.out.write_all(head.to_string().as_bytes())?;
            self.out.write_all(b",\"o\":")?;
            match obj {
                Some(b) => self.out.write_all(b)?,
                None => self.out.write_all(b"null")?,
            }
            writeln!(self.out, ",\"rv\":{rv}}}")?;
            self.out.flush()
        })();
        if let Err(e) = res {
            tracing::error!(path = %self.path.display(), error = %e, "persisting to the data directory failed; later writes stay in memory only");
            self.failed = true;
        }
    }
}

/// Default number of events kept for watches that resume from an older resourceVersion.
pub const DEFAULT_LOG_CAP: usize = 20_000;

impl Store {
    /// An in-memory store.
    pub fn new(log_cap: usize) -> Self {
        let (tx, _) = broadcast::channel(65_536);
        Self {
            inner: Mutex::new(Inner::default()),
            tx,
            log_cap: log_cap.max(1),
            persist: None,
        }
    }

    /// A store that keeps its objects in `dir` and reloads them from there.
    pub fn open(dir: &Path, log_cap: usize) -> Result<Self, StoreError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join("objects.jsonl");
        let mut objects: BTreeMap<ObjKey, Bytes> = BTreeMap::new();
        let mut max_rv = 0u64;
        if path.exists() {
            let f = std::fs::File::open(&path).map_err(io(&path))?;
            for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
                let line = line.map_err(io(&path))?;
                if line.trim().is_empty() {
                    continue;
                }
                let rec: Value = match serde_json::from_str(&line) {
                    Ok(r) => r,
                    Err(source) => {
                        // A torn last line after a crash is expected; anything else is corruption.
                        tracing::warn!(path = %path.display(), line = i + 1, error = %source, "skipping unreadable record");
                        continue;
                    }
                };
                max_rv = max_rv.max(rec["rv"].as_u64().unwrap_or(0));
                let k = &rec["k"];
                let key = ObjKey {
                    gr: GroupResource {
                        group: k[0].as_str().unwrap_or_default().into(),
                        resource: k[1].as_str().unwrap_or_default().into(),
                    },
                    namespace: k[2].as_str().unwrap_or_default().into(),
                    name: k[3].as_str().unwrap_or_default().into(),
                };
                match &rec["o"] {
                    Value::Null => {
                        objects.remove(&key);
                    }
                    o => {
                        let bytes =
                            serde_json::to_vec(o).map_err(|source| StoreError::Corrupt {
                                path: path.clone(),
                                line: i + 1,
                                source,
                            })?;
                        objects.insert(key, Bytes::from(bytes));
                    }
                }
            }
        }
        let mut store = Self::new(log_cap);
        {
            let inner = store.inner.get_mut().unwrap_or_else(|p| p.into_inner());
            for (key, bytes) in &objects {
                let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
                let meta = Arc::new(Meta::of(&v));
                inner.rv = inner.rv.max(meta.rv);
                index_add(inner, key, &meta);
                inner.buckets.entry(key.gr.clone()).or_default().insert(
                    (key.namespace.clone(), key.name.clone()),
                    Entry {
                        bytes: bytes.clone(),
                        meta,
                    },
                );
            }
            inner.rv = inner.rv.max(max_rv);
            inner.compacted = inner.rv;
        }
        // Compact: rewrite the file with only the live objects.
        let tmp = dir.join("objects.jsonl.tmp");
        {
            let f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            let mut p = Persist {
                path: tmp.clone(),
                out: BufWriter::new(f),
                failed: false,
            };
            for (key, bytes) in &objects {
                p.record(key, Some(bytes), max_rv);
            }
            if p.failed {
                return Err(StoreError::Io {
                    path: tmp,
                    source: std::io::Error::other("write failed"),
                });
            }
        }
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        store.persist = Some(Mutex::new(Persist {
            path,
            out: BufWriter::new(f),
            failed: false,
        }));
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The latest resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// One object.
    pub fn get(&self, key: &ObjKey) -> Option<Entry> {
        self.lock()
            .buckets
            .get(&key.gr)
            .and_then(|b| b.get(&(key.namespace.clone(), key.name.clone())))
            .cloned()
    }

    /// The key of the object with this uid, if it exists.
    pub fn key_of_uid(&self, uid: &str) -> Option<ObjKey> {
        self.lock().by_uid.get(uid).cloned()
    }

    /// Objects whose ownerReferences name `uid`.
    pub fn dependents_of(&self, uid: &str) -> Vec<ObjKey> {
        self.lock()
            .dependents
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// A consistent snapshot of a bucket (optionally one namespace), sorted by namespace and name,
    /// starting after `after` when continuing a paginated list.
    pub fn list(
        &self,
        gr: &GroupResource,
        namespace: Option<&str>,
        after: Option<&(String, String)>,
    ) -> (u64, Vec<(ObjKey, Entry)>) {
        let (rv, items, _) = self.list_page(gr, namespace, after, 0, |_, _, _| true);
        (rv, items)
    }

    /// One page of a paginated list: the first `limit` objects (every one when `limit` is 0)
    /// of a bucket (optionally one namespace) after `after`, in namespace and name order, that
    /// `select(namespace, name, entry)` keeps, and whether another kept object follows them.
    /// Only the page is copied, and the scan stops at the first object past it, so listing a
    /// bucket page by page costs one pass over it, not one per page.
    pub fn list_page(
        &self,
        gr: &GroupResource,
        namespace: Option<&str>,
        after: Option<&(String, String)>,
        limit: usize,
        mut select: impl FnMut(&str, &str, &Entry) -> bool,
    ) -> (u64, Vec<(ObjKey, Entry)>, bool) {
        let inner = self.lock();
        let mut out = Vec::new();
        let mut more = false;
        if let Some(bucket) = inner.buckets.get(gr) {
            use std::ops::Bound;
            let lower = match after {
                Some(a) => Bound::Excluded(a.clone()),
                None => match namespace {
                    Some(ns) => Bound::Included((ns.to_string(), String::new())),
                    None => Bound::Unbounded,
                },
            };
            for ((ns, name), e) in bucket.range((lower, Bound::Unbounded)) {
                if let Some(want) = namespace
                    && ns.as_str() != want
                {
                    if ns.as_str() > want {
                        break;
                    }
                    continue;
                }
                if !select(ns, name, e) {
                    continue;
                }
                if limit > 0 && out.len() == limit {
                    more = true;
                    break;
                }
                out.push((
                    ObjKey {
                        gr: gr.clone(),
                        namespace: ns.clone(),
                        name: name.clone(),
                    },
                    e.clone(),
                ));
            }
        }
        (inner.rv, out, more)
    }

    /// Every object that has ownerReferences, with the owner uids (for a garbage collector resync).
    pub fn owned_objects(&self) -> Vec<(ObjKey, Vec<String>)> {
        let inner = self.lock();
        let mut out = Vec::new();
        for (gr, bucket) in &inner.buckets {
            for ((ns, name), e) in bucket {
                if !e.meta.owners.is_empty() {
                    out.push((
                        ObjKey {
                            gr: gr.clone(),
                            namespace: ns.clone(),
                            name: name.clone(),
                        },
                        e.meta.owners.clone(),
                    ));
                }
            }
        }
        out
    }

    /// Every namespaced key in `namespace`, across all buckets.
    pub fn keys_in_namespace(&self, namespace: &str) -> Vec<ObjKey> {
        let inner = self.lock();
        let mut out = Vec::new();
        for (gr, bucket) in &inner.buckets {
            for (ns, name) in bucket.keys() {
                if ns == namespace {
                    out.push(ObjKey {
                        gr: gr.clone(),
                        namespace: ns.clone(),
                        name: name.clone(),
                    });
                }
            }
        }
        out
    }

    /// Runs `decide` on the current object under the store lock and commits its decision.
    /// `decide` receives the current entry and the resourceVersion the write will get.
    /// With `dry_run`, the decision is returned but not stored.
    pub fn write<F>(&self, key: &ObjKey, dry_run: bool, decide: F) -> Result<Written, ApiError>
    where
        F: FnOnce(Option<&Entry>, u64) -> Result<Change, ApiError>,
    {
        let mut inner = self.lock();
        let current = inner
            .buckets
            .get(&key.gr)
            .and_then(|b| b.get(&(key.namespace.clone(), key.name.clone())))
            .cloned();
        let next_rv = inner.rv + 1;
        let change = decide(current.as_ref(), next_rv)?;
        self.commit(&mut inner, key, current, change, dry_run)
    }

    /// Like [`Store::write`], but `decide` runs outside the store lock (so writes to different
    /// objects are computed in parallel) and its decision is committed only if the object has
    /// not changed meanwhile; otherwise `decide` runs again on the newer object, as the
    /// apiserver's GuaranteedUpdate does. `decide` may read the store.
    pub fn write_optimistic<F>(
        &self,
        key: &ObjKey,
        dry_run: bool,
        mut decide: F,
    ) -> Result<Written, ApiError>
    where
        F: FnMut(Option<&Entry>) -> Result<Change, ApiError>,
    {
        const ATTEMPTS: usize = 32;
        for _ in 0..ATTEMPTS {
            let current = self.get(key);
            let change = decide(current.as_ref())?;
            let mut inner = self.lock();
            let now = inner
                .buckets
                .get(&key.gr)
                .and_then(|b| b.get(&(key.namespace.clone(), key.name.clone())))
                .map(|e| e.meta.rv);
            if now != current.as_ref().map(|e| e.meta.rv) {
                continue;
            }
            return self.commit(&mut inner, key, current, change, dry_run);
        }
        Err(ApiError::stale(&key.gr.group, &key.gr.resource, &key.name))
    }

    fn commit(
        &self,
        inner: &mut MutexGuard<'_, Inner>,
        key: &ObjKey,
        current: Option<Entry>,
        change: Change,
        dry_run: bool,
    ) -> Result<Written, ApiError> {
        let next_rv = inner.rv + 1;
        match change {
            Change::Unchanged => Ok(Written {
                entry: current,
                created: false,
                deleted: false,
            }),
            Change::Put(mut v) => {
                v["metadata"]["resourceVersion"] = Value::String(next_rv.to_string());
                let bytes = Bytes::from(
                    serde_json::to_vec(&v).map_err(|e| ApiError::internal(e.to_string()))?,
                );
                let meta = Arc::new(Meta::of(&v));
                let entry = Entry { bytes, meta };
                let created = current.is_none();
                if dry_run {
                    return Ok(Written {
                        entry: Some(entry),
                        created,
                        deleted: false,
                    });
                }
                inner.rv = next_rv;
                if let Some(old) = &current {
                    index_remove(inner, key, &old.meta);
                }
                index_add(inner, key, &entry.meta);
                inner
                    .buckets
                    .entry(key.gr.clone())
                    .or_default()
                    .insert((key.namespace.clone(), key.name.clone()), entry.clone());
                let etype = if created {
                    EventType::Added
                } else {
                    EventType::Modified
                };
                let prev = current.as_ref().map(|c| c.meta.clone());
                self.emit(inner, key, etype, entry.clone(), prev);
                Ok(Written {
                    entry: Some(entry),
                    created,
                    deleted: false,
                })
            }
            Change::Delete => {
                let Some(old) = current else {
                    return Ok(Written {
                        entry: None,
                        created: false,
                        deleted: false,
                    });
                };
                // The deleted object carries the resourceVersion of its deletion, as on a real server.
                let mut v = old.value();
                v["metadata"]["resourceVersion"] = Value::String(next_rv.to_string());
                let bytes = Bytes::from(
                    serde_json::to_vec(&v).map_err(|e| ApiError::internal(e.to_string()))?,
                );
                let entry = Entry {
                    bytes,
                    meta: Arc::new(Meta::of(&v)),
                };
                if dry_run {
                    return Ok(Written {
                        entry: Some(entry),
                        created: false,
                        deleted: true,
                    });
                }
                inner.rv = next_rv;
                index_remove(inner, key, &old.meta);
                if let Some(b) = inner.buckets.get_mut(&key.gr) {
                    b.remove(&(key.namespace.clone(), key.name.clone()));
                }
                self.emit(inner, key, EventType::Deleted, entry.clone(), None);
                Ok(Written {
                    entry: Some(entry),
                    created: false,
                    deleted: true,
                })
            }
        }
    }

    fn emit(
        &self,
        inner: &mut Inner,
        key: &ObjKey,
        etype: EventType,
        entry: Entry,
        prev: Option<Arc<Meta>>,
    ) {
        if let Some(p) = &self.persist {
            let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
            p.record(
                key,
                (etype != EventType::Deleted).then_some(&entry.bytes),
                inner.rv,
            );
        }
        let ev = Arc::new(WatchEvent {
            rv: inner.rv,
            etype,
            key: key.clone(),
            entry,
            prev,
        });
        inner.log.push_back(ev.clone());
        while inner.log.len() > self.log_cap {
            if let Some(old) = inner.log.pop_front() {
                inner.compacted = old.rv;
            }
        }
        // No receivers is fine.
        let _ = self.tx.send(ev);
    }

    /// Subscribes to changes after `from_rv`. Returns the logged events after it, then a receiver
    /// for the live ones, with no gap or overlap between them. A `from_rv` older than the log
    /// answers 410 Gone.
    pub fn watch_from(
        &self,
        from_rv: u64,
    ) -> Result<(Vec<Arc<WatchEvent>>, EventReceiver), ApiError> {
        let inner = self.lock();
        if from_rv < inner.compacted {
            return Err(ApiError::gone(from_rv, inner.compacted));
        }
        let rx = self.tx.subscribe();
        let start = inner.log.partition_point(|e| e.rv <= from_rv);
        let backlog = inner.log.iter().skip(start).cloned().collect();
        Ok((backlog, rx))
    }

    /// A snapshot of a bucket and a receiver for changes after it, atomically.
    pub fn list_and_subscribe(
        &self,
        gr: &GroupResource,
    ) -> (
        u64,
        Vec<(ObjKey, Entry)>,
        broadcast::Receiver<Arc<WatchEvent>>,
    ) {
        let inner = self.lock();
        let rx = self.tx.subscribe();
        let mut out = Vec::new();
        if let Some(bucket) = inner.buckets.get(gr) {
            for ((ns, name), e) in bucket {
                out.push((
                    ObjKey {
                        gr: gr.clone(),
                        namespace: ns.clone(),
                        name: name.clone(),
                    },
                    e.clone(),
                ));
            }
        }
        (inner.rv, out, rx)
    }

    /// A receiver for every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<WatchEvent>> {
        self.tx.subscribe()
    }

    /// Number of stored objects (all buckets).
    pub fn len(&self) -> usize {
        self.lock().buckets.values().map(BTreeMap::len).sum()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn index_add(inner: &mut Inner, key: &ObjKey, meta: &Meta) {
    if !meta.uid.is_empty() {
        inner.by_uid.insert(meta.uid.clone(), key.clone());
    }
    for o in &meta.owners {
        inner
            .dependents
            .entry(o.clone())
            .or_default()
            .insert(key.clone());
    }
}

fn index_remove(inner: &mut Inner, key: &ObjKey, meta: &Meta) {
    if !meta.uid.is_empty() {
        inner.by_uid.remove(&meta.uid);
    }
    for o in &meta.owners {
        if let Some(s) = inner.dependents.get_mut(o) {
            s.remove(key);
            if s.is_empty() {
                inner.dependents.remove(o);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ObjKey {
        ObjKey {
            gr: GroupResource {
                group: String::new(),
                resource: "configmaps".into(),
            },
            namespace: "default".into(),
            name: name.into(),
        }
    }

    fn put(store: &Store, name: &str) -> u64 {
        let w = store
            .write(&key(name), false, |_, _| {
                Ok(Change::Put(
                    json!({"metadata": {"name": name, "uid": format!("u-{name}")}}),
                ))
            })
            .expect("write");
        w.entry.expect("entry").meta.rv
    }

    /// Pages: at most `limit` kept objects after the continuation key, `more` only when another
    /// kept object follows, and the scan stops there (the selector is not asked past it).
    #[test]
    fn list_pages_keep_only_selected_objects_and_stop_after_the_page() {
        let store = Store::new(100);
        for n in ["a", "b", "c", "d", "e", "f"] {
            put(&store, n);
        }
        let gr = key("a").gr;
        let names =
            |v: &[(ObjKey, Entry)]| v.iter().map(|(k, _)| k.name.clone()).collect::<Vec<_>>();
        let after = |n: &str| ("default".to_string(), n.to_string());
        let not_b = |_: &str, name: &str, _: &Entry| name != "b";
        // (case, continue after, limit, names wanted, more wanted)
        type Row<'a> = (&'a str, Option<(String, String)>, usize, Vec<&'a str>, bool);
        let rows: Vec<Row<'_>> = vec![
            ("first page", None, 2, vec!["a", "c"], true),
            ("continued", Some(after("c")), 2, vec!["d", "e"], true),
            (
                "last page exactly full",
                Some(after("d")),
                2,
                vec!["e", "f"],
                false,
            ),
            ("no limit", None, 0, vec!["a", "c", "d", "e", "f"], false),
            ("past the end", Some(after("f")), 2, vec![], false),
        ];
        for (case, from, limit, want, want_more) in rows {
            let (_, page, more) =
                store.list_page(&gr, Some("default"), from.as_ref(), limit, not_b);
            assert_eq!(names(&page), want, "{case}");
            assert_eq!(more, want_more, "{case}");
        }
        let mut asked = 0;
        store.list_page(&gr, None, None, 2, |_, _, _| {
            asked += 1;
            true
        });
        assert_eq!(asked, 3, "two for the page, one to know more follow");
        let (_, other_ns, _) = store.list_page(&gr, Some("other"), None, 0, not_b);
        assert!(other_ns.is_empty());
    }

    #[test]
    fn resource_versions_increase_and_watch_resumes_without_gaps() {
        let store = Store::new(100);
        let a = put(&store, "a");
        let b = put(&store, "b");
        assert!(b > a);
        let (backlog, _rx) = store.watch_from(a).expect("in window");
        assert_eq!(backlog.len(), 1);
        assert_eq!(backlog[0].key.name, "b");
    }

    #[test]
    fn watch_from_compacted_version_is_gone() {
        let store = Store::new(2);
        let first = put(&store, "a");
        put(&store, "b");
        put(&store, "c");
        put(&store, "d");
        let err = store.watch_from(first).expect_err("compacted");
        assert_eq!(err.code, 410);
    }

    #[test]
    fn dry_run_changes_nothing() {
        let store = Store::new(10);
        store
            .write(&key("x"), true, |_, _| {
                Ok(Change::Put(json!({"metadata": {"name": "x"}})))
            })
            .expect("dry run");
        assert!(store.get(&key("x")).is_none());
        assert_eq!(store.current_rv(), 0);
    }

    #[test]
    fn data_dir_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(dir.path(), 10).expect("open");
            put(&store, "a");
            put(&store, "b");
            store
                .write(&key("a"), false, |_, _| Ok(Change::Delete))
                .expect("delete");
        }
        let store = Store::open(dir.path(), 10).expect("reopen");
        assert!(store.get(&key("a")).is_none());
        assert!(store.get(&key("b")).is_some());
        assert_eq!(
            store.current_rv(),
            3,
            "the deletion's resourceVersion is not reused"
        );
        assert_eq!(store.key_of_uid("u-b"), Some(key("b")));
    }
}
