//! The **apply** stage: an app's objects applied with server-side apply under one field
//! manager, all or nothing, in the order of one kind table ([`order`]), then prune of what left
//! Git.
//!
//! ```text
//! apply_app(app, objects, prev_inventory, options)
//!   1. look up what is live (metadata only: a LIST per kind and namespace, or a GET each for
//!      a few; or once for every app of a sync, `SharedLookup`); an object of another
//!      rollgit app is refused unless it says rollgit.dev/adopt;
//!      an object that existed before rollgit applied it is adopted (never pruned by default)
//!   2. Namespaces and CRDs: dry run, then applied (CRDs waited for until Established)
//!   3. everything else: dry run of every object (dryRun=All) ─ any refusal refuses the app's
//!      commit whole: nothing of it is applied (ApplyOutcome::Refused). Except: the first
//!      object of the Resources phase that needs a dry run is applied for real instead, right
//!      after the others' dry runs and before anything else (its apply is all or nothing, and
//!      its refusal refuses the commit as its dry run's would); in a sync of many apps, creates
//!      of plainly valid ConfigMaps and ServiceAccounts are vouched for locally once their kind
//!      and namespace passed one dry run in the sync ([`vouch`]); a drift re-apply of the last
//!      good commit has none (`ApplyOptions::dry_run`)
//!   4. everything else applied (then admission webhook configurations); an object that fails
//!      now is reported as behind and retried (the dry run accepted it, or it was vouched for)
//!   5. prune: prev_inventory − new set, in the reverse order; never an object another app
//!      took over, one rollgit adopted (unless the app opts in), or a protected namespace; a
//!      prune of more than half the inventory (or all of it) is held until allowed
//! ```
//!
//! Every applied object is labelled `app.kubernetes.io/managed-by: rollgit` and
//! `rollgit.dev/app: <app>`, and applied with `PatchParams::apply("rollgit").force()`. An object
//! counts as **changed** when the resourceVersion the apply returned differs from the one the
//! look-up saw. Error texts name the object and never include Secret data (for Secrets only
//! the reason and the field paths are kept).

pub mod discovery;
pub mod drift;
pub mod health;
pub mod namespaces;
pub mod order;
pub mod prune;
pub mod vouch;

pub use health::{Health, HealthStatus, aggregate, health};

use crate::ErrorClass;
use crate::k8s::{APP_LABEL, FIELD_MANAGER, Inventory, MANAGED_BY, MANAGED_BY_LABEL, ObjRef};
use discovery::forget_crd_versions;
use futures::{StreamExt, future};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::discovery::{ApiCapabilities, Scope};
use kube::runtime::wait::{await_condition, conditions};
use order::Phase;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tracing::{debug, info, warn};

/// Default bound on concurrent requests of one apply.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Default bound on waiting for a CRD to be Established.
pub const DEFAULT_CRD_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of the apply stage as a whole (per-object failures go into [`ApplyReport::errors`]).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The API server could not be reached for discovery (transient: retry with backoff).
    #[error("discovering the API resources of {api_version}")]
    Discover {
        api_version: String,
        #[source]
        source: kube::Error,
    },
    /// Reading an object failed.
    #[error("reading {object}")]
    Read {
        object: String,
        #[source]
        source: kube::Error,
    },
    /// The app name is not a valid label value.
    #[error("app name {app:?} is not a valid label value")]
    InvalidAppName { app: String },
}

impl ApplyError {
    /// How a caller retries it.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Discover { source, .. } | Self::Read { source, .. } => {
                ErrorClass::of_kube(source)
            }
            Self::InvalidAppName { .. } => ErrorClass::Terminal,
        }
    }
}

/// Annotation on an object in Git that lets its app take it over from another rollgit app.
pub const ADOPT_ANNOTATION: &str = "rollgit.dev/adopt";
/// Namespaces prune never deletes (kube-apiserver refuses the first three anyway).
pub const PROTECTED_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// How one [`Applier::apply_app`] applies and prunes.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Delete objects that left the app.
    pub prune: bool,
    /// Also delete objects rollgit adopted (they existed before it first applied them).
    pub prune_adopted: bool,
    /// Let a prune remove more than half of the inventory, or all of it.
    pub allow_mass_prune: bool,
    /// Namespaces never deleted besides [`PROTECTED_NAMESPACES`] (rollgit's own).
    pub protected_namespaces: Vec<String>,
    /// A look-up shared by the apps of one sync (see [`SharedLookup`]); `None`: each apply
    /// looks up its own objects.
    pub lookup: Option<Arc<SharedLookup>>,
    /// Dry-run a commit's objects before applying any (all or nothing). Off only to re-apply
    /// what the app's last good commit already applied (drift): those objects passed their dry
    /// run with that commit, and applying some of them cannot mix two commits.
    pub dry_run: bool,
}

/// What the ownership check needs of a live object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LiveMeta {
    /// Its `rollgit.dev/app` label.
    owner: Option<String>,
    /// Its repository label.
    repo: Option<String>,
    /// Its resourceVersion (`None`: claimed in this sync, not applied yet).
    version: Option<String>,
}

impl LiveMeta {
    fn of(meta: &kube::api::ObjectMeta) -> Self {
        let label = |k: &str| meta.labels.as_ref().and_then(|l| l.get(k)).cloned();
        Self {
            owner: label(APP_LABEL),
            repo: label(crate::k8s::REPO_LABEL),
            version: meta.resource_version.clone(),
        }
    }
}

/// The look-up of the apps of one sync, shared: each kind and namespace is listed once
/// (metadata, paged) for all of them instead of once (or once per object) per app, and an
/// object one app of the sync claims is seen as that app's by the others, so that two apps of
/// one commit cannot both take it while they apply concurrently. It is a snapshot: made for
/// one sync (of many apps), then dropped.
#[derive(Default)]
pub struct SharedLookup {
    groups: std::sync::Mutex<HashMap<GroupKey, Arc<LookupGroup>>>,
    /// Which dry runs this sync may skip ([`vouch`]).
    vouching: vouch::Vouching,
}

/// A kind (`apiVersion/plural`) and a namespace (`None`: cluster-scoped).
type GroupKey = (String, Option<String>);

/// One kind and namespace of a [`SharedLookup`]: listed once, then claimed into.
type LookupGroup = tokio::sync::OnceCell<std::sync::Mutex<HashMap<String, LiveMeta>>>;

impl std::fmt::Debug for SharedLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLookup").finish_non_exhaustive()
    }
}

impl SharedLookup {
    /// An empty look-up for one sync.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    fn group(&self, key: GroupKey) -> Arc<LookupGroup> {
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        groups.entry(key).or_default().clone()
    }
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ApplyOptions {
    /// Prune on, adopted objects and mass prunes guarded.
    pub fn new() -> Self {
        Self {
            prune: true,
            prune_adopted: false,
            allow_mass_prune: false,
            protected_namespaces: Vec::new(),
            lookup: None,
            dry_run: true,
        }
    }

    /// With prune on or off.
    pub fn prune(mut self, prune: bool) -> Self {
        self.prune = prune;
        self
    }

    fn protects(&self, r: &ObjRef) -> bool {
        r.group.is_empty()
            && r.kind == "Namespace"
            && (PROTECTED_NAMESPACES.contains(&r.name.as_str())
                || self.protected_namespaces.contains(&r.name))
    }
}

/// An object that stops the app's commit: nothing of the commit is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Its index in the objects given (`None`: not one of them).
    pub index: Option<usize>,
    /// The object.
    pub object: ObjRef,
    /// Why (the API's message, or rollgit's rule), never Secret data.
    pub message: String,
    /// Whether the same commit may pass later (a kind not served yet, the API unreachable).
    pub transient: bool,
}

/// What one [`Applier::apply_app`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The commit was applied (see the report for objects still behind).
    Applied(ApplyReport),
    /// The commit was refused whole: its objects failed the look-up or the dry run. Namespaces
    /// and CRDs it needs may have been applied; nothing else was.
    Refused(Vec<Refused>),
}

/// A prune held back for confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldPrune {
    /// What it would delete.
    pub objects: Vec<ObjRef>,
    /// The inventory it would delete them from.
    pub inventory: usize,
}

/// What an applied commit did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Every object applied successfully (changed or not), in input order.
    pub applied: Vec<ObjRef>,
    /// The applied objects whose resourceVersion changed (created or updated), in input order.
    pub changed: Vec<ObjRef>,
    /// Objects deleted because they left the app.
    pub pruned: Vec<ObjRef>,
    /// Objects that failed after the dry run accepted them (behind: retried), or could not be
    /// pruned, with a message naming the failure (never Secret data).
    pub errors: Vec<(ObjRef, String)>,
    /// Whether some error may go away when tried again.
    pub transient: bool,
    /// The inventory to record: the new set, plus objects that left but were not pruned
    /// (prune off, held, or the delete failed), so that a later prune still finds them.
    pub inventory: Inventory,
    /// The applied objects as the server returned them (in input order; may hold Secret data:
    /// never log them).
    pub live: Vec<Value>,
    /// A prune held back because it would delete too much.
    pub held_prune: Option<HeldPrune>,
}

impl ApplyReport {
    /// True when nothing failed.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Served resources of one `apiVersion`.
pub(crate) type Resources = Arc<Vec<(ApiResource, ApiCapabilities)>>;

/// Applies apps' objects to one cluster. Cheap to share (`&self` everywhere); the discovery
/// cache is per `apiVersion` and refreshed when a kind is not found in it.
pub struct Applier {
    client: Client,
    namespace: String,
    pub(crate) discovery: RwLock<HashMap<String, Resources>>,
    pub(crate) concurrency: usize,
    crd_timeout: Duration,
}

/// One object ready to apply.
#[derive(Clone)]
struct Prepared {
    index: usize,
    oref: ObjRef,
    ar: ApiResource,
    is_secret: bool,
    object: Value,
    /// The resourceVersion of the live object, when it exists.
    live_version: Option<String>,
}

enum Outcome {
    Applied {
        index: usize,
        oref: ObjRef,
        changed: bool,
        live: Box<Value>,
    },
    Failed {
        index: usize,
        oref: ObjRef,
        message: String,
        /// Whether trying again later may succeed.
        transient: bool,
    },
}

/// Text of a kube error for a report: the API status (reason, code, message) or the transport
/// error. For Secrets only the reason, code and field paths of the causes.
pub(crate) fn error_text(e: &kube::Error, is_secret: bool) -> String {
    match e {
        kube::Error::Api(s) if is_secret => {
            let fields: Vec<String> = s
                .details
                .as_ref()
                .map(|d| {
                    d.causes
                        .iter()
                        .map(|c| format!("{} ({})", c.field, c.reason))
                        .collect()
                })
                .unwrap_or_default();
            if fields.is_empty() {
                format!("{} ({})", s.reason, s.code)
            } else {
                format!("{} ({}): {}", s.reason, s.code, fields.join(", "))
            }
        }
        kube::Error::Api(s) => format!("{} ({}): {}", s.reason, s.code, s.message),
        other if is_secret => "request failed".to_string() + &transport_kind(other),
        other => other.to_string(),
    }
}

fn transport_kind(e: &kube::Error) -> String {
    match e {
        kube::Error::HyperError(_) | kube::Error::Service(_) => ": transport error".into(),
        _ => String::new(),
    }
}

/// The object as it is applied: server-populated metadata removed, rollgit's labels added.
fn prepare_object(obj: &Value, app: &str, namespace: Option<&str>) -> Value {
    let mut obj = obj.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "managedFields",
            "selfLink",
        ] {
            meta.remove(k);
        }
        match namespace {
            Some(ns) => {
                meta.insert("namespace".into(), Value::String(ns.into()));
            }
            None => {
                meta.remove("namespace");
            }
        }
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if !labels.is_object() {
            *labels = Value::Object(Map::new());
        }
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(MANAGED_BY_LABEL.into(), Value::String(MANAGED_BY.into()));
            labels.insert(APP_LABEL.into(), Value::String(app.into()));
        }
    }
    obj
}

impl Applier {
    /// An applier for the cluster behind `client`.
    pub fn new(client: Client) -> Self {
        Self {
            namespace: client.default_namespace().to_string(),
            client,
            discovery: RwLock::new(HashMap::new()),
            concurrency: DEFAULT_CONCURRENCY,
            crd_timeout: DEFAULT_CRD_TIMEOUT,
        }
    }

    /// Namespaced objects that name no namespace go to `namespace` (default: the client's).
    pub fn with_namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.to_string();
        self
    }

    /// At most `n` requests in flight per phase (at least 1).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// How long to wait for an applied CRD to be Established.
    pub fn with_crd_timeout(mut self, timeout: Duration) -> Self {
        self.crd_timeout = timeout;
        self
    }

    /// The client this applier uses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn api_for(&self, ar: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, ar),
            None => Api::all_with(self.client.clone(), ar),
        }
    }

    /// Resolves an object's resource and namespace and prepares it, or says why not.
    fn prepare(
        &self,
        index: usize,
        obj: &Value,
        app: &str,
    ) -> Result<Prepared, Box<(ObjRef, String)>> {
        let Some(raw) = ObjRef::from_object(obj) else {
            let oref = ObjRef {
                group: String::new(),
                version: String::new(),
                kind: obj["kind"].as_str().unwrap_or("").to_string(),
                namespace: None,
                name: format!("#{index}"),
            };
            return Err(Box::new((
                oref,
                "object has no apiVersion, kind or metadata.name".into(),
            )));
        };
        let api_version = raw.api_version();
        let Some((ar, caps)) = self.resolve(&api_version, &raw.kind) else {
            return Err(Box::new((
                raw.clone(),
                format!(
                    "the server does not serve kind {} in {api_version}",
                    raw.kind
                ),
            )));
        };
        let namespace = match caps.scope {
            Scope::Namespaced => Some(
                raw.namespace
                    .clone()
                    .unwrap_or_else(|| self.namespace.clone()),
            ),
            Scope::Cluster => {
                if raw.namespace.is_some() {
                    warn!(object = %raw, "namespace ignored on a cluster-scoped object");
                }
                None
            }
        };
        let oref = ObjRef {
            namespace: namespace.clone(),
            ..raw
        };
        let object = prepare_object(obj, app, namespace.as_deref());
        Ok(Prepared {
            index,
            is_secret: oref.group.is_empty() && oref.kind == "Secret",
            oref,
            ar,
            object,
            live_version: None,
        })
    }

    async fn apply_one(&self, p: Prepared) -> Outcome {
        let api = self.api_for(&p.ar, p.oref.namespace.as_deref());
        let pp = PatchParams::apply(FIELD_MANAGER)
            .force()
            .validation_strict();
        // The object is sent and read back as JSON values, not through `DynamicObject`: no
        // copy of the object to convert it, none of the response to keep it.
        let sent = kube::core::Request::new(api.resource_url())
            .patch(&p.oref.name, &pp, &Patch::Apply(&p.object))
            .map_err(kube::Error::BuildRequest);
        let result = match sent {
            Ok(mut req) => {
                req.extensions_mut().insert("patch");
                self.client.request::<Value>(req).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(after) => {
                let version = after["metadata"]["resourceVersion"].as_str();
                let changed = p.live_version.is_none() || version != p.live_version.as_deref();
                if changed {
                    info!(object = %p.oref, created = p.live_version.is_none(), "applied");
                } else {
                    debug!(object = %p.oref, "unchanged");
                }
                Outcome::Applied {
                    index: p.index,
                    oref: p.oref,
                    changed,
                    live: Box::new(after),
                }
            }
            Err(e) => Outcome::Failed {
                index: p.index,
                message: format!("apply: {}", error_text(&e, p.is_secret)),
                transient: ErrorClass::of_kube(&e) == ErrorClass::Transient,
                oref: p.oref,
            },
        }
    }

    /// Applies one phase concurrently; outcomes in completion order.
    async fn apply_phase(&self, items: Vec<Prepared>) -> Vec<Outcome> {
        // The futures are built into a Vec first: a stream that maps with a closure producing
        // borrowing futures is not `Send` for every lifetime (rust-lang/rust#102211), and the
        // daemon runs this on a multi-thread runtime.
        let futs: Vec<_> = items.into_iter().map(|p| self.apply_one(p)).collect();
        futures::stream::iter(futs)
            .buffer_unordered(self.concurrency)
            .collect()
            .await
    }

    /// Waits (bounded) until the CRD `name` is Established.
    async fn wait_established(&self, name: &str) -> Result<(), String> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        match tokio::time::timeout(
            self.crd_timeout,
            await_condition(api, name, conditions::is_crd_established()),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!(
                "waiting for Established: {}",
                crate::error_chain(&e)
            )),
            Err(_) => Err(format!(
                "not Established within {}s",
                self.crd_timeout.as_secs()
            )),
        }
    }

    /// Applies `objects` as app `app`, all or nothing, then prunes what left
    /// `prev_inventory`. See the module documentation.
    pub async fn apply_app(
        &self,
        app: &str,
        objects: &[Value],
        prev_inventory: &Inventory,
        opts: &ApplyOptions,
    ) -> Result<ApplyOutcome, ApplyError> {
        if app.is_empty() || !rollgit_syntax::is_label_value(app) {
            return Err(ApplyError::InvalidAppName { app: app.into() });
        }
        let needed: BTreeSet<(String, String)> = objects
            .iter()
            .filter_map(ObjRef::from_object)
            .map(|r| (r.api_version(), r.kind))
            .collect();
        self.ensure_discovered(&needed).await?;
        let (first, rest): (Indexed<'_>, Indexed<'_>) =
            objects.iter().enumerate().partition(|(_, o)| {
                matches!(Phase::of_object(o), Phase::Namespaces | Phase::Definitions)
            });
        let mut done: Vec<Outcome> = Vec::with_capacity(objects.len());
        let mut adopted: BTreeSet<usize> = BTreeSet::new();
        // Namespaces and CRDs first: checked and dry-run, then applied for real, so that the
        // objects that live in them can be resolved and dry-run.
        let first = match self.check(app, &first, &mut adopted, opts).await? {
            Ok(p) => p,
            Err(refused) => return Ok(ApplyOutcome::Refused(refused)),
        };
        // One object needs no dry run: its apply is all or nothing by itself, and a refusal
        // of it refuses the commit as its dry run would have (nothing else was applied yet).
        if opts.dry_run
            && first.len() > 1
            && let Err(refused) = self.dry_run_all(&first).await
        {
            return Ok(ApplyOutcome::Refused(refused));
        }
        for phase in [Phase::Namespaces, Phase::Definitions] {
            let items: Vec<Prepared> = first
                .iter()
                .filter(|p| Phase::of(&p.oref.group, &p.oref.kind) == phase)
                .cloned()
                .collect();
            let mut outcomes = self.apply_phase(items).await;
            if phase == Phase::Definitions {
                self.establish(&mut outcomes, objects).await;
            }
            done.extend(outcomes);
        }
        if let Some(refused) = refusals(&done) {
            return Ok(ApplyOutcome::Refused(refused));
        }
        // Everything else: checked, dry-run as a whole, then applied.
        if !rest.is_empty() {
            let needed: BTreeSet<(String, String)> = rest
                .iter()
                .filter_map(|(_, o)| ObjRef::from_object(o))
                .map(|r| (r.api_version(), r.kind))
                .collect();
            self.ensure_discovered(&needed).await?;
        }
        let rest = match self.check(app, &rest, &mut adopted, opts).await? {
            Ok(p) => p,
            Err(refused) => return Ok(ApplyOutcome::Refused(refused)),
        };
        let mut rest = rest;
        let mut applied_rest = Vec::with_capacity(rest.len());
        if opts.dry_run {
            // The objects whose dry run cannot be skipped; one of them (the first of the
            // Resources phase) is applied first, for real, instead: its apply is all or
            // nothing, and nothing else of the commit is applied before it, so its refusal
            // refuses the commit whole as its dry run's would.
            let (checked, probes) = self.needing_dry_run(&rest, opts).await;
            let first = checked
                .iter()
                .copied()
                .find(|&i| Phase::of(&rest[i].oref.group, &rest[i].oref.kind) == Phase::Resources);
            let dry: Vec<Prepared> = checked
                .iter()
                .filter(|&&i| Some(i) != first)
                .map(|&i| rest[i].clone())
                .collect();
            if !dry.is_empty()
                && let Err(refused) = self.dry_run_all(&dry).await
            {
                return Ok(ApplyOutcome::Refused(refused));
            }
            if let Some(i) = first {
                let lead = rest.remove(i);
                let outcome = self.apply_phase(vec![lead]).await;
                if let Some(mut refused) = refusals(&outcome) {
                    for r in &mut refused {
                        if let Some(m) = r.message.strip_prefix("apply: ") {
                            r.message = m.to_string();
                        }
                    }
                    return Ok(ApplyOutcome::Refused(refused));
                }
                applied_rest.extend(outcome);
            }
            // Every dry run passed and the first apply was accepted: the probed kinds and
            // namespaces need no dry run for the rest of the sync.
            if let Some(shared) = &opts.lookup {
                shared.vouching.prove(probes);
            }
        }
        for phase in [Phase::Resources, Phase::Webhooks] {
            let items: Vec<Prepared> = rest
                .iter()
                .filter(|p| Phase::of(&p.oref.group, &p.oref.kind) == phase)
                .cloned()
                .collect();
            applied_rest.extend(self.apply_phase(items).await);
        }
        done.extend(applied_rest);
        done.sort_by_key(|o| match o {
            Outcome::Applied { index, .. } | Outcome::Failed { index, .. } => *index,
        });

        let mut report = ApplyReport::default();
        let mut new_refs = Vec::with_capacity(done.len());
        let mut adopted_refs = Vec::new();
        for o in done {
            match o {
                Outcome::Applied {
                    index,
                    oref,
                    changed,
                    live,
                } => {
                    if changed {
                        report.changed.push(oref.clone());
                    }
                    report.live.push(*live);
                    new_refs.push(oref.clone());
                    if adopted.contains(&index) {
                        adopted_refs.push(oref.clone());
                    }
                    report.applied.push(oref);
                }
                Outcome::Failed {
                    index,
                    oref,
                    message,
                    transient,
                } => {
                    warn!(object = %oref, error = %message, "apply failed after its dry run passed; it is behind");
                    new_refs.push(oref.clone());
                    if adopted.contains(&index) {
                        adopted_refs.push(oref.clone());
                    }
                    report.transient |= transient;
                    report.errors.push((oref, message));
                }
            }
        }
        let new_inventory = Inventory::from_refs(new_refs.clone());
        // What rollgit adopted stays adopted while the app keeps it.
        adopted_refs.extend(
            prev_inventory
                .adopted
                .iter()
                .filter(|r| new_inventory.contains(r))
                .cloned(),
        );
        let gone = prev_inventory.diff(&new_inventory);
        let mut kept = Vec::new();
        if !gone.is_empty() {
            let total = prev_inventory.len();
            let mass = gone.len() == total || gone.len() * 2 > total;
            if !opts.prune {
                debug!(
                    app,
                    count = gone.len(),
                    "prune disabled: objects that left are kept"
                );
                kept = gone;
            } else if mass && !opts.allow_mass_prune {
                warn!(
                    app,
                    count = gone.len(),
                    inventory = total,
                    "prune held: it would delete more than half of the app's objects; allow it to proceed"
                );
                report.held_prune = Some(HeldPrune {
                    objects: gone.clone(),
                    inventory: total,
                });
                kept = gone;
            } else {
                let (deletable, spared): (Vec<ObjRef>, Vec<ObjRef>) =
                    gone.into_iter().partition(|r| {
                        !opts.protects(r) && (opts.prune_adopted || !prev_inventory.is_adopted(r))
                    });
                for r in &spared {
                    info!(app, object = %r, "not pruned: adopted by rollgit or a protected namespace; it stays in the cluster");
                }
                let (pruned, failed) = self.prune(app, deletable).await?;
                report.pruned = pruned;
                for (oref, message) in failed {
                    kept.push(oref.clone());
                    report.transient = true;
                    report.errors.push((oref, message));
                }
            }
        }
        let mut inventory = Inventory::from_refs(new_refs.into_iter().chain(kept.iter().cloned()));
        inventory.adopted = Inventory::from_refs(
            adopted_refs
                .into_iter()
                .chain(kept.into_iter().filter(|r| prev_inventory.is_adopted(r))),
        )
        .entries;
        report.inventory = inventory;
        info!(
            app,
            applied = report.applied.len(),
            changed = report.changed.len(),
            pruned = report.pruned.len(),
            errors = report.errors.len(),
            "apply finished"
        );
        Ok(ApplyOutcome::Applied(report))
    }

    /// Waits until the applied CRDs are Established, then forgets the discovery of their
    /// groups so that their custom resources resolve.
    async fn establish(&self, outcomes: &mut [Outcome], objects: &[Value]) {
        let waits: Vec<(usize, String)> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Applied { oref, index, .. } => Some((*index, oref.name.clone())),
                Outcome::Failed { .. } => None,
            })
            .collect();
        let results = future::join_all(waits.iter().map(|(_, name)| {
            let name = name.clone();
            async move { self.wait_established(&name).await }
        }))
        .await;
        for ((index, _), r) in waits.iter().zip(results) {
            forget_crd_versions(self, &objects[*index]);
            if let Err(message) = r
                && let Some(slot) = outcomes
                    .iter_mut()
                    .find(|o| matches!(o, Outcome::Applied { index: i, .. } if i == index))
                && let Outcome::Applied { oref, .. } = slot
            {
                warn!(object = %oref, error = %message, "CRD not established");
                *slot = Outcome::Failed {
                    index: *index,
                    oref: oref.clone(),
                    message,
                    transient: true,
                };
            }
        }
    }

    /// Resolves, prepares and looks up `items`: the prepared objects, or why the commit is
    /// refused (a kind not served, no name, another app's object). Objects that exist without
    /// being any rollgit app's are noted in `adopted`.
    async fn check(
        &self,
        app: &str,
        items: &[(usize, &Value)],
        adopted: &mut BTreeSet<usize>,
        opts: &ApplyOptions,
    ) -> Result<Result<Vec<Prepared>, Vec<Refused>>, ApplyError> {
        let mut ready = Vec::with_capacity(items.len());
        let mut refused = Vec::new();
        for (i, obj) in items {
            match self.prepare(*i, obj, app) {
                Ok(p) => ready.push(p),
                Err(failed) => {
                    let (oref, message) = *failed;
                    refused.push(Refused {
                        index: Some(*i),
                        object: oref,
                        message,
                        // A kind may be served soon (its CRD applied by another app).
                        transient: true,
                    });
                }
            }
        }
        if !refused.is_empty() {
            return Ok(Err(refused));
        }
        let live = match &opts.lookup {
            Some(shared) => self.look_up_shared(shared, &ready, app).await?,
            None => self.look_up(&ready).await?,
        };
        for p in &mut ready {
            let Some(meta) = live.get(&p.oref) else {
                continue;
            };
            p.live_version = meta.version.clone();
            let owner = meta.owner.as_ref();
            let repo = meta.repo.as_ref();
            let wanted_repo = p.object["metadata"]["labels"][crate::k8s::REPO_LABEL].as_str();
            let adopts = p.object["metadata"]["annotations"][ADOPT_ANNOTATION] == "true";
            match owner {
                None => {
                    adopted.insert(p.index);
                }
                Some(o) if o == app && (repo.is_none() || repo.map(String::as_str) == wanted_repo) => {}
                Some(o) if adopts => {
                    info!(object = %p.oref, from = %o, "taken over from another app (rollgit.dev/adopt)");
                }
                Some(o) => refused.push(Refused {
                    index: Some(p.index),
                    object: p.oref.clone(),
                    message: format!(
                        "belongs to app {o:?}{}; annotate it {ADOPT_ANNOTATION}: \"true\" in Git to move it to app {app:?}",
                        repo.map(|r| format!(" of repository {r:?}")).unwrap_or_default()
                    ),
                    transient: false,
                }),
            }
        }
        Ok(if refused.is_empty() {
            Ok(ready)
        } else {
            Err(refused)
        })
    }

    /// The live metadata of `items` that exist: a metadata LIST per kind and namespace when
    /// several objects share them, a metadata GET each otherwise.
    async fn look_up(&self, items: &[Prepared]) -> Result<HashMap<ObjRef, LiveMeta>, ApplyError> {
        // Owned groups, and the futures built into a Vec before they are polled: futures
        // borrowing from a closure's argument are not `Send` for every lifetime
        // (rust-lang/rust#102211), and the daemon runs this on a multi-thread runtime.
        let mut groups: BTreeMap<(String, Option<String>), (ApiResource, Vec<ObjRef>)> =
            BTreeMap::new();
        for p in items {
            groups
                .entry((
                    format!("{}/{}", p.ar.api_version, p.ar.plural),
                    p.oref.namespace.clone(),
                ))
                .or_insert_with(|| (p.ar.clone(), Vec::new()))
                .1
                .push(p.oref.clone());
        }
        let lookups: Vec<_> = groups
            .into_values()
            .map(|(ar, refs)| self.look_up_group(ar, refs))
            .collect();
        let mut live = HashMap::new();
        for r in futures::stream::iter(lookups)
            .buffer_unordered(self.concurrency)
            .collect::<Vec<_>>()
            .await
        {
            live.extend(r?);
        }
        Ok(live)
    }

    /// The live metadata of objects of one kind and namespace.
    async fn look_up_group(
        &self,
        ar: ApiResource,
        refs: Vec<ObjRef>,
    ) -> Result<Vec<(ObjRef, LiveMeta)>, ApplyError> {
        let Some(first) = refs.first().cloned() else {
            return Ok(Vec::new());
        };
        let api = self.api_for(&ar, first.namespace.as_deref());
        let read_err = |source| ApplyError::Read {
            object: first.to_string(),
            source,
        };
        let mut found = Vec::new();
        if refs.len() <= LOOKUP_GETS {
            for r in refs {
                if let Some(m) = api.get_metadata_opt(&r.name).await.map_err(read_err)? {
                    found.push((r, LiveMeta::of(&m.metadata)));
                }
            }
            return Ok(found);
        }
        let names: HashMap<String, ObjRef> =
            refs.into_iter().map(|r| (r.name.clone(), r)).collect();
        let mut lp = kube::api::ListParams::default().limit(500);
        loop {
            let page = api.list_metadata(&lp).await.map_err(read_err)?;
            for m in page.items {
                if let Some(r) = m.metadata.name.as_deref().and_then(|n| names.get(n)) {
                    found.push((r.clone(), LiveMeta::of(&m.metadata)));
                }
            }
            match page.metadata.continue_ {
                Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
                _ => break,
            }
        }
        Ok(found)
    }

    /// The live metadata of `items` through the sync's shared look-up: each kind and
    /// namespace listed once for the whole sync; the objects no one has are claimed for `app`.
    async fn look_up_shared(
        &self,
        shared: &SharedLookup,
        items: &[Prepared],
        app: &str,
    ) -> Result<HashMap<ObjRef, LiveMeta>, ApplyError> {
        let mut groups: BTreeMap<GroupKey, (ApiResource, Vec<&Prepared>)> = BTreeMap::new();
        for p in items {
            groups
                .entry((
                    format!("{}/{}", p.ar.api_version, p.ar.plural),
                    p.oref.namespace.clone(),
                ))
                .or_insert_with(|| (p.ar.clone(), Vec::new()))
                .1
                .push(p);
        }
        let mut live = HashMap::new();
        for (key, (ar, members)) in groups {
            let ns = key.1.clone();
            let group = shared.group(key);
            let listed = group
                .get_or_try_init(|| async {
                    self.list_group(&ar, ns.as_deref())
                        .await
                        .map(std::sync::Mutex::new)
                })
                .await?;
            let mut listed = listed.lock().unwrap_or_else(|p| p.into_inner());
            for p in members {
                match listed.get(&p.oref.name) {
                    Some(m) => {
                        live.insert(p.oref.clone(), m.clone());
                    }
                    None => {
                        let claim = LiveMeta {
                            owner: Some(app.to_string()),
                            repo: p.object["metadata"]["labels"][crate::k8s::REPO_LABEL]
                                .as_str()
                                .map(str::to_string),
                            version: None,
                        };
                        listed.insert(p.oref.name.clone(), claim);
                    }
                }
            }
        }
        Ok(live)
    }

    /// The live metadata of every object of one kind in one namespace (paged metadata LIST).
    async fn list_group(
        &self,
        ar: &ApiResource,
        namespace: Option<&str>,
    ) -> Result<HashMap<String, LiveMeta>, ApplyError> {
        let api = self.api_for(ar, namespace);
        let mut out = HashMap::new();
        let mut lp = kube::api::ListParams::default().limit(500);
        loop {
            let page = api
                .list_metadata(&lp)
                .await
                .map_err(|source| ApplyError::Read {
                    object: format!("{} in {}", ar.plural, namespace.unwrap_or("the cluster")),
                    source,
                })?;
            for m in page.items {
                if let Some(n) = m.metadata.name.clone() {
                    out.insert(n, LiveMeta::of(&m.metadata));
                }
            }
            match page.metadata.continue_ {
                Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
                _ => break,
            }
        }
        Ok(out)
    }

    /// The indexes in `items` of the objects to dry-run (all of them, unless the sync's
    /// look-up vouches for some, see [`vouch`]), and the kinds and namespaces that a passing
    /// dry run of them proves for the rest of the sync.
    async fn needing_dry_run(
        &self,
        items: &[Prepared],
        opts: &ApplyOptions,
    ) -> (Vec<usize>, BTreeSet<GroupKey>) {
        let Some(shared) = &opts.lookup else {
            return ((0..items.len()).collect(), BTreeSet::new());
        };
        let v = &shared.vouching;
        if items
            .iter()
            .any(|p| p.oref.group == "admissionregistration.k8s.io")
        {
            // This app brings admission webhooks or policies: from now on, nothing is vouched
            // for in this sync.
            v.stop();
        }
        let mut checked = Vec::new();
        let mut probes = BTreeSet::new();
        for (i, p) in items.iter().enumerate() {
            match self.vouch(v, p).await {
                vouch::Verdict::Vouched => {}
                // One probe per kind and namespace: the others of this commit are vouched for
                // once it passes, and if it does not, the commit is refused before any of
                // them is applied.
                vouch::Verdict::Probe => {
                    if probes.insert(vouch::key_of(p)) {
                        checked.push(i);
                    }
                }
                vouch::Verdict::DryRun => checked.push(i),
            }
        }
        (checked, probes)
    }

    /// Dry-runs every prepared object (server-side apply with `dryRun=All`): the objects the
    /// server refuses, if any.
    async fn dry_run_all(&self, items: &[Prepared]) -> Result<(), Vec<Refused>> {
        let futs: Vec<_> = items
            .iter()
            .map(|p| async move {
                let api = self.api_for(&p.ar, p.oref.namespace.as_deref());
                let pp = PatchParams::apply(FIELD_MANAGER)
                    .force()
                    .validation_strict()
                    .dry_run();
                match api.patch(&p.oref.name, &pp, &Patch::Apply(&p.object)).await {
                    Ok(_) => None,
                    Err(e) => Some(Refused {
                        index: Some(p.index),
                        object: p.oref.clone(),
                        message: error_text(&e, p.is_secret),
                        transient: ErrorClass::of_kube(&e) == ErrorClass::Transient,
                    }),
                }
            })
            .collect();
        let mut refused: Vec<Refused> = futures::stream::iter(futs)
            .buffer_unordered(self.concurrency)
            .filter_map(|r| async move { r })
            .collect()
            .await;
        if refused.is_empty() {
            Ok(())
        } else {
            refused.sort_by_key(|r| r.index);
            Err(refused)
        }
    }
}

/// Objects with their index in the input.
type Indexed<'a> = Vec<(usize, &'a Value)>;

/// How many objects of one kind and namespace are looked up with a GET each (more: one LIST).
pub const LOOKUP_GETS: usize = 8;

/// The failures among applied Namespaces and CRDs, as refusals of the commit.
fn refusals(done: &[Outcome]) -> Option<Vec<Refused>> {
    let refused: Vec<Refused> = done
        .iter()
        .filter_map(|o| match o {
            Outcome::Failed {
                index,
                oref,
                message,
                transient,
            } => Some(Refused {
                index: Some(*index),
                object: oref.clone(),
                message: message.clone(),
                transient: *transient,
            }),
            Outcome::Applied { .. } => None,
        })
        .collect();
    (!refused.is_empty()).then_some(refused)
}

impl Applier {
    /// The API of `obj`'s kind in its namespace (the client's default namespace when it has
    /// none), with the object's reference; `None` when its kind is not served.
    async fn target(
        &self,
        obj: &Value,
    ) -> Result<Option<(ObjRef, Api<DynamicObject>)>, ApplyError> {
        let Some(r) = ObjRef::from_object(obj) else {
            return Ok(None);
        };
        let needed = BTreeSet::from([(r.api_version(), r.kind.clone())]);
        self.ensure_discovered(&needed).await?;
        let Some((ar, caps)) = self.resolve(&r.api_version(), &r.kind) else {
            return Ok(None);
        };
        let ns = match caps.scope {
            Scope::Namespaced => Some(
                r.namespace
                    .clone()
                    .unwrap_or_else(|| self.namespace.clone()),
            ),
            Scope::Cluster => None,
        };
        let api = self.api_for(&ar, ns.as_deref());
        Ok(Some((r, api)))
    }

    /// The live copy of `obj` (`None` when missing or its kind is not served).
    pub async fn live(&self, obj: &Value) -> Result<Option<Value>, ApplyError> {
        let Some((r, api)) = self.target(obj).await? else {
            return Ok(None);
        };
        match api.get_opt(&r.name).await {
            Ok(o) => Ok(o.map(|o| serde_json::to_value(o).unwrap_or(Value::Null))),
            Err(source) => Err(ApplyError::Read {
                object: r.to_string(),
                source,
            }),
        }
    }

    /// The aggregate health of an app's objects (read live, concurrently, bounded). An object
    /// that cannot be read counts as Missing.
    pub async fn app_health(&self, objects: &[Value]) -> Health {
        let futs: Vec<_> = objects
            .iter()
            .map(|o| async move {
                let who = ObjRef::from_object(o).map_or_else(String::new, |r| r.to_string());
                let h = match self.live(o).await {
                    Ok(Some(live)) => health::health(&live),
                    Ok(None) => Health::missing(),
                    Err(e) => {
                        debug!(object = %who, error = %crate::error_chain(&e), "health: cannot read");
                        Health::missing()
                    }
                };
                (who, h)
            })
            .collect();
        let healths: Vec<(String, Health)> = futures::stream::iter(futs)
            .buffered(self.concurrency)
            .collect()
            .await;
        aggregate(healths.iter().map(|(w, h)| (w.as_str(), h)))
    }
}

/// One object of [`Applier::dry_run_app`]: what is live and what an apply would store.
#[derive(Debug, Clone)]
pub struct DryRun {
    /// The object (namespace resolved as the apply resolves it).
    pub oref: ObjRef,
    /// Whether it is a Secret (its data must be masked when shown).
    pub is_secret: bool,
    /// The live object, `None` when it does not exist.
    pub live: Option<Value>,
    /// What the server would store if it were applied now (server-side apply with
    /// `dryRun=All`, rollgit's field manager, force: what `kubectl diff` computes), or why it
    /// cannot be applied.
    pub desired: Result<Value, String>,
}

impl Applier {
    /// What applying `objects` as app `app` would change, object by object, prepared exactly
    /// as [`Applier::apply_app`] prepares them (labels, namespace): the desired side of
    /// `rollgit diff`. Nothing is changed in the cluster.
    pub async fn dry_run_app(
        &self,
        app: &str,
        objects: &[Value],
    ) -> Result<Vec<DryRun>, ApplyError> {
        let needed: BTreeSet<(String, String)> = objects
            .iter()
            .filter_map(ObjRef::from_object)
            .map(|r| (r.api_version(), r.kind))
            .collect();
        self.ensure_discovered(&needed).await?;
        let mut out = Vec::with_capacity(objects.len());
        for (i, obj) in objects.iter().enumerate() {
            let p = match self.prepare(i, obj, app) {
                Ok(p) => p,
                Err(failed) => {
                    let (oref, message) = *failed;
                    out.push(DryRun {
                        is_secret: oref.group.is_empty() && oref.kind == "Secret",
                        oref,
                        live: None,
                        desired: Err(message),
                    });
                    continue;
                }
            };
            let api = self.api_for(&p.ar, p.oref.namespace.as_deref());
            let live = api
                .get_opt(&p.oref.name)
                .await
                .map_err(|source| ApplyError::Read {
                    object: p.oref.to_string(),
                    source,
                })?
                .map(|o| serde_json::to_value(o).unwrap_or(Value::Null));
            let pp = PatchParams::apply(FIELD_MANAGER)
                .force()
                .validation_strict()
                .dry_run();
            let desired = match api.patch(&p.oref.name, &pp, &Patch::Apply(&p.object)).await {
                Ok(o) => Ok(serde_json::to_value(o).unwrap_or(Value::Null)),
                Err(e) => Err(error_text(&e, p.is_secret)),
            };
            out.push(DryRun {
                oref: p.oref,
                is_secret: p.is_secret,
                live,
                desired,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prepare_object_labels_and_strips_server_fields() {
        let obj = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "x", "resourceVersion": "7", "uid": "u",
                "labels": {"team": "blue"}},
            "data": {"k": "v"},
        });
        let out = prepare_object(&obj, "demo", Some("x"));
        assert_eq!(
            out,
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "x", "labels": {
                    "team": "blue", MANAGED_BY_LABEL: "rollgit", APP_LABEL: "demo"}},
                "data": {"k": "v"},
            })
        );
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "namespace": "bogus"}});
        assert_eq!(
            prepare_object(&ns, "demo", None)["metadata"],
            json!({"name": "n", "labels": {MANAGED_BY_LABEL: "rollgit", APP_LABEL: "demo"}})
        );
    }

    #[test]
    fn secret_errors_keep_only_reason_and_fields() {
        let status = kube::core::Status::failure(
            r#"Secret "s" is invalid: data[bad key]: Invalid value: "hunter2""#,
            "Invalid",
        )
        .with_code(422);
        let mut status = status;
        status.details = Some(kube::core::response::StatusDetails {
            causes: vec![kube::core::response::StatusCause {
                field: "data[bad key]".into(),
                reason: "FieldValueInvalid".into(),
                message: "Invalid value: \"hunter2\"".into(),
            }],
            name: "s".into(),
            group: String::new(),
            kind: "secrets".into(),
            uid: String::new(),
            retry_after_seconds: 0,
        });
        let e = kube::Error::Api(Box::new(status));
        let secret = error_text(&e, true);
        assert_eq!(secret, "Invalid (422): data[bad key] (FieldValueInvalid)");
        assert!(!secret.contains("hunter2"));
        assert!(error_text(&e, false).contains("is invalid"));
    }
}
