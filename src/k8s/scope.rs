//! Watches limited to the namespaces rollgit is scoped to ([`WatchScope`]): one watch per
//! namespace (a Role per namespace authorizes it) or one over the cluster, merged into one
//! stream; and a reflector store over them for `kube::runtime::Controller`.

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::hash::Hash;

/// Which namespaces rollgit watches (and so may need rights in).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WatchScope {
    /// Every namespace (cluster-wide list and watch rights).
    #[default]
    Cluster,
    /// Only these (a Role per namespace suffices).
    Namespaces(std::collections::BTreeSet<String>),
}

impl WatchScope {
    /// Whether `namespace` is watched.
    pub fn contains(&self, namespace: &str) -> bool {
        match self {
            Self::Cluster => true,
            Self::Namespaces(n) => n.contains(namespace),
        }
    }

    /// The namespaces, `None` for the whole cluster.
    pub fn namespaces(&self) -> Option<Vec<String>> {
        match self {
            Self::Cluster => None,
            Self::Namespaces(n) => Some(n.iter().cloned().collect()),
        }
    }
}

impl WatchScope {
    /// One `Api` per watched namespace (`make(Some(ns))`), or one for the cluster
    /// (`make(None)`).
    pub fn apis<K>(&self, make: impl Fn(Option<&str>) -> Api<K>) -> Vec<Api<K>> {
        match self.namespaces() {
            None => vec![make(None)],
            Some(list) => list.iter().map(|ns| make(Some(ns))).collect(),
        }
    }
}

/// The watch events of every api in `apis`, merged, each watch retrying with rollgit's
/// backoff. For consumers that react to `Apply`/`InitApply`/`Delete` (not a reflector).
pub fn watch_all<K>(
    apis: Vec<Api<K>>,
    cfg: watcher::Config,
) -> BoxStream<'static, Result<watcher::Event<K>, watcher::Error>>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    futures::stream::select_all(apis.into_iter().map(|api| {
        say_denied(watcher(api, cfg.clone()).backoff(super::WatchBackoff::default())).boxed()
    }))
    .boxed()
}

/// Whether a watch failed because rollgit may not list or watch (403).
fn is_forbidden(e: &watcher::Error) -> bool {
    match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s.code == 403,
        watcher::Error::WatchError(s) => s.code == 403,
        _ => false,
    }
}

/// Logs a watch that rollgit's rights do not allow as one clear error naming the verb,
/// resource and scope (the API server's words), once per doubling while it lasts; other
/// watch errors stay at debug (the watcher retries them).
fn say_denied<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: Send + 'static,
{
    let mut repeats = crate::Repeats::default();
    events.inspect(move |r| match r {
        Err(e) if is_forbidden(e) => {
            let text = crate::error_chain(e);
            if let Some(times) = repeats.note(&text) {
                tracing::error!(error = %text, times, "rollgit lacks a permission it needs (see the README's RBAC table); retrying");
            }
        }
        Err(e) => tracing::debug!(error = %crate::error_chain(e), "watch error; the watcher retries"),
        Ok(_) => repeats.clear(),
    })
}

/// A reflector store over `apis` and the stream of applied objects that fills it, for
/// `Controller::for_stream_with`. One api is kube's reflector as is. Several (one per
/// namespace) share one store: each watch's relist is turned into applies and the deletes of
/// what its namespace no longer holds, so that one namespace's relist never empties another's
/// objects from the store.
pub fn reflect<K>(
    apis: Vec<Api<K>>,
    cfg: watcher::Config,
    dyntype: K::DynamicType,
) -> (Store<K>, BoxStream<'static, Result<K, watcher::Error>>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    let mut writer = reflector::store::Writer::new(dyntype);
    let reader = writer.as_reader();
    if apis.len() == 1 {
        let stream = apis.into_iter().map(|api| {
            say_denied(watcher(api, cfg.clone()).backoff(super::WatchBackoff::default())).boxed()
        });
        let stream = reflector::reflector(writer, futures::stream::select_all(stream))
            .applied_objects()
            .boxed();
        return (reader, stream);
    }
    // The store is ready at once (empty): every object reaches it as an apply.
    writer.apply_watcher_event(&watcher::Event::Init);
    writer.apply_watcher_event(&watcher::Event::InitDone);
    let streams = apis.into_iter().map(|api| {
        let namespace = api.namespace().map(str::to_string).unwrap_or_default();
        relist_as_changes(
            say_denied(watcher(api, cfg.clone()).backoff(super::WatchBackoff::default())),
            namespace,
            reader.clone(),
        )
        .boxed()
    });
    let stream = futures::stream::select_all(streams)
        .map(move |res| match res {
            Ok(events) => {
                let mut applied = Vec::new();
                for ev in &events {
                    writer.apply_watcher_event(ev);
                    if let watcher::Event::Apply(o) = ev {
                        applied.push(Ok(o.clone()));
                    }
                }
                futures::stream::iter(applied)
            }
            Err(e) => futures::stream::iter(vec![Err(e)]),
        })
        .flatten()
        .boxed();
    (reader, stream)
}

/// One namespace's watch events as changes only: `InitApply` becomes `Apply`, and at
/// `InitDone` the objects of the namespace the store holds but the relist did not list
/// become `Delete`s.
fn relist_as_changes<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    namespace: String,
    store: Store<K>,
) -> impl Stream<Item = Result<Vec<watcher::Event<K>>, watcher::Error>> + Send
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    let mut seen: Option<BTreeSet<String>> = None;
    events.map(move |ev| {
        let ev = ev?;
        Ok(match ev {
            watcher::Event::Init => {
                seen = Some(BTreeSet::new());
                Vec::new()
            }
            watcher::Event::InitApply(o) => {
                if let Some(s) = seen.as_mut() {
                    s.insert(o.meta().name.clone().unwrap_or_default());
                }
                vec![watcher::Event::Apply(o)]
            }
            watcher::Event::InitDone => {
                let listed = seen.take().unwrap_or_default();
                store
                    .state()
                    .into_iter()
                    .filter(|o| {
                        o.meta().namespace.as_deref().unwrap_or_default() == namespace
                            && !listed.contains(o.meta().name.as_deref().unwrap_or_default())
                    })
                    .map(|o| watcher::Event::Delete(o.as_ref().clone()))
                    .collect()
            }
            other => vec![other],
        })
    })
}

/// What the controllers of one cluster watch: the namespaces, and (under sharding) only the
/// objects of some repositories.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The namespaces.
    pub namespaces: WatchScope,
    /// The repositories whose objects are this process's (`None`: every object).
    pub repos: Option<Vec<String>>,
}

impl Target {
    /// The watch configuration selecting the repositories' objects.
    pub fn config(&self) -> watcher::Config {
        match &self.repos {
            Some(repos) => watcher::Config::default().labels(&format!(
                "{} in ({})",
                super::REPO_LABEL,
                repos.join(",")
            )),
            None => watcher::Config::default(),
        }
    }
}
