//! `rollgit plan`'s reading side: find the rollout spec in one file, read it with the parsers
//! the daemon's render uses (same YAML reader, same options, same errors), and let
//! rollgit-core's arithmetic say what each step does ([`rollgit_core::plan`]).
//!
//! | document | read by | arithmetic |
//! |---|---|---|
//! | KubeVela `Application` with a `rollout` trait | the trait parser of [`crate::render_app`] | [`rollgit_core::plan::kubevela_plan`] |
//! | KubeVela `AppRollout` | the AppRollout parser and admission of [`crate::render_app`] | [`rollgit_core::plan::kubevela_plan`] |
//! | KubeVela `Rollout` (`standard.oam.dev`) | the AppRollout's `rolloutPlan` reader | [`rollgit_core::plan::kubevela_plan`] |
//! | Argo Rollouts `Rollout` (canary) | [`ArgoRollout`] | [`rollgit_core::plan::argo_plan`] |
//! | OpenKruise `Rollout` v1alpha1/v1beta1 | [`KruiseRollout`] | [`rollgit_core::plan::kruise_plan`] |
//!
//! The first document of the file that is one of these (an Application only if it has a
//! `rollout` trait) is planned. The replica count is, in order: `--replicas`; the spec's own
//! (`targetSize`, Argo `spec.replicas`); for an AppRollout the `replicas` property of a component
//! it rolls in an Application of the file; for a Kruise Rollout the `spec.replicas` of its
//! workload in the file; else the first workload of the file.
//!
//! A KubeVela plan's batches are checked against the size: without `--replicas` and
//! `--from-replicas`, a trait (and an AppRollout with a `targetSize`) is planned as a first
//! release, which the daemon's render checks (`verifyBatchesWithRollout` against `targetSize`)
//! with the same error at the same place (`component "web": rollout trait: rolloutBatches:
//! rule broken`). The other checks are the plan's alone (`verifyBatchesWithRollout` against
//! `--replicas`, `verifyBatchesWithScale` with `--from-replicas`, a KubeVela Rollout's), as
//! KubeVela's controller checks them when a rollout starts and the daemon when it starts a
//! run ([`rollgit_core::batch`]); those errors are `kubevela: rolloutBatches: rule broken` at
//! the `rolloutBatches` key. A trait (or KubeVela Rollout) without batches is one batch of
//! |size − from| (from = 0 without `--from-replicas`), as KubeVela's Rollout controller
//! writes for a scale; an AppRollout without batches is rejected at admission unless
//! `numBatches` and `targetSize` (or `--replicas`) hand them out.

pub use rollgit_core::plan::{Flavor, Pause, Plan, PlanStep};

use rollgit_core::intstr::IntOrString;
use rollgit_core::kruise::WorkloadKind;
use rollgit_core::kubevela::{self, KubeVelaError};
use rollgit_core::plan::{argo_plan, kruise_plan, kubevela_plan};

use crate::argo::{ARGO_GROUP, ArgoRollout, parse_argo_rollout};
use crate::error::{RenderError, RenderErrors};
use crate::kinds::group_of;
use crate::kruise::{KRUISE_ROLLOUT_GROUP, KruiseRollout, parse_kruise_rollout};
use crate::oam::check_trait_types;
use crate::reader::INT32_MAX;
use crate::render::Sink;
use crate::rollout::{
    ROLLOUT_TRAIT, admit_rollout_plan, batches_place, check_batches_with_rollout,
    parse_rollout_trait, read_app_rollout, read_rollout_plan,
};
use crate::yaml::{Located, Node, parse_documents};

/// `rollgit plan`'s overrides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// `--replicas`: the size, instead of the workload's, `targetSize` or `spec.replicas`.
    pub replicas: Option<u32>,
    /// `--from-replicas`: the current size, which makes a KubeVela plan a scale.
    pub from_replicas: Option<u32>,
}

/// Why a file could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The file is not YAML, or its spec breaks a rule: every error `path:line: message`, the
    /// parser's errors exactly as the daemon's render reports them.
    #[error(transparent)]
    Invalid(RenderErrors),
    /// No supported rollout in the file.
    #[error(
        "{}: no rollout found: expected a KubeVela Application with a rollout trait, an AppRollout, an Argo Rollout or a Kruise Rollout",
        rollgit_syntax::escape(path)
    )]
    NoRollout {
        /// The file.
        path: String,
    },
    /// The replica count is neither given nor in the file.
    #[error(
        "{}: {}: the replica count is unknown; put the workload in the file or pass --replicas",
        rollgit_syntax::escape(path),
        rollgit_syntax::escape(what)
    )]
    UnknownReplicas {
        /// The file.
        path: String,
        /// What needs it (`AppRollout`, `Deployment web`).
        what: String,
    },
}

impl PlanError {
    /// The line of the (first) error, when there is one.
    pub fn line(&self) -> Option<u32> {
        match self {
            PlanError::Invalid(e) => e.0.first().map(|e| e.line),
            PlanError::NoRollout { .. } | PlanError::UnknownReplicas { .. } => None,
        }
    }

    /// The errors with a line (empty for the others).
    pub fn errors(&self) -> &[RenderError] {
        match self {
            PlanError::Invalid(e) => &e.0,
            PlanError::NoRollout { .. } | PlanError::UnknownReplicas { .. } => &[],
        }
    }
}

fn invalid(errors: Vec<RenderError>) -> PlanError {
    let mut errors = errors;
    errors.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    errors.dedup();
    PlanError::Invalid(RenderErrors(errors))
}

/// Plans the rollout described in `content`, the file at `path` (used in errors).
///
/// ```
/// use rollgit_render::plan::{plan_document, Pause, PlanOptions};
/// let y = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: web\nspec:\n  replicas: 10\n  strategy:\n    canary:\n      steps:\n      - setWeight: 10\n      - pause: {}\n";
/// let p = plan_document("web.yaml", y.as_bytes(), &PlanOptions::default()).unwrap();
/// assert_eq!((p.steps[0].new, p.steps[0].old), (1, 9));
/// assert_eq!(p.steps[1].pause, Some(Pause::Manual));
///
/// let bad = y.replace("setWeight: 10", "setWeight: 110");
/// let e = plan_document("web.yaml", bad.as_bytes(), &PlanOptions::default()).unwrap_err();
/// assert_eq!(e.to_string(), "web.yaml:10: argo: steps[0].setWeight: SetWeight needs to be between 0 and 100, got 110");
/// ```
pub fn plan_document(path: &str, content: &[u8], opts: &PlanOptions) -> Result<Plan, PlanError> {
    let docs = parse_documents(content)
        .map_err(|e| invalid(vec![RenderError::new(path, e.line, e.message)]))?;
    let mut sink = Sink {
        errors: Vec::new(),
        warnings: Vec::new(),
        unsupported: Vec::new(),
    };
    for doc in &docs {
        let api_version = str_at(doc, "apiVersion").unwrap_or_default();
        let planned = match (
            group_of(api_version),
            str_at(doc, "kind").unwrap_or_default(),
        ) {
            (ARGO_GROUP, "Rollout") => Some(plan_argo(path, doc, opts, &mut sink)),
            (KRUISE_ROLLOUT_GROUP, "Rollout") => {
                Some(plan_kruise(path, doc, &docs, opts, &mut sink))
            }
            ("core.oam.dev", "AppRollout") => {
                Some(plan_app_rollout(path, doc, &docs, opts, &mut sink))
            }
            ("standard.oam.dev", "Rollout")
                if spec_of(doc).and_then(|s| s.get("rolloutPlan")).is_some() =>
            {
                Some(plan_kubevela_rollout(path, doc, opts, &mut sink))
            }
            ("core.oam.dev", "Application") => plan_application(path, doc, opts, &mut sink),
            _ => None,
        };
        if let Some(planned) = planned {
            if !sink.errors.is_empty() {
                return Err(invalid(sink.errors));
            }
            // A planner returns no plan only with errors in the sink.
            return planned.and_then(|p| {
                p.ok_or_else(|| PlanError::NoRollout {
                    path: path.to_owned(),
                })
            });
        }
    }
    Err(PlanError::NoRollout {
        path: path.to_owned(),
    })
}

/// What a flavour's planner returns: `Ok(None)` when the errors are in the sink.
type Planned = Result<Option<Plan>, PlanError>;

fn str_at<'a>(doc: &'a Located, key: &str) -> Option<&'a str> {
    doc.get(key).and_then(Located::as_str)
}

fn spec_of(doc: &Located) -> Option<&Located> {
    doc.get("spec")
}

fn name_of(doc: &Located) -> &str {
    doc.get("metadata")
        .and_then(|m| str_at(m, "name"))
        .unwrap_or_default()
}

fn size(v: Option<u32>) -> Option<i64> {
    v.map(i64::from)
}

// ---------------------------------------------------------------------------------------
// Workloads in the file
// ---------------------------------------------------------------------------------------

fn workload_kind(doc: &Located) -> Option<WorkloadKind> {
    let api_version = str_at(doc, "apiVersion").unwrap_or_default();
    match (
        group_of(api_version),
        str_at(doc, "kind").unwrap_or_default(),
    ) {
        ("apps", "Deployment") => Some(WorkloadKind::Deployment),
        ("apps.kruise.io", "CloneSet") => Some(WorkloadKind::CloneSet),
        ("apps.kruise.io", "StatefulSet") => {
            let unordered = spec_of(doc)
                .and_then(|s| s.get("updateStrategy"))
                .and_then(|u| u.get("rollingUpdate"))
                .and_then(|r| r.get("unorderedUpdate"));
            Some(if unordered.is_some() {
                WorkloadKind::AdvancedStatefulSetUnordered
            } else {
                WorkloadKind::StatefulSet
            })
        }
        ("apps", "StatefulSet") => Some(WorkloadKind::StatefulSet),
        ("apps", "DaemonSet") | ("apps.kruise.io", "DaemonSet") => Some(WorkloadKind::DaemonSet),
        _ => None,
    }
}

/// A replica count read from the file, with where it is written.
struct FoundSize<'a> {
    value: i64,
    node: Option<&'a Located>,
    what: String,
}

/// `spec.replicas` (default 1) of the first workload of the file, optionally of this kind and
/// name.
fn workload_size<'a>(docs: &'a [Located], want: Option<(&str, &str)>) -> Option<FoundSize<'a>> {
    let doc = docs
        .iter()
        .filter(|d| workload_kind(d).is_some())
        .find(|d| want.is_none_or(|(k, n)| str_at(d, "kind") == Some(k) && name_of(d) == n))?;
    let node = spec_of(doc).and_then(|s| s.get("replicas"));
    let value = match node.map(|n| &n.node) {
        Some(Node::Num(n)) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|_| i64::MAX))
            .unwrap_or(1),
        _ => 1,
    };
    Some(FoundSize {
        value,
        node,
        what: format!(
            "{} {}",
            str_at(doc, "kind").unwrap_or_default(),
            name_of(doc)
        ),
    })
}

/// A size found in the file that is negative or past int32 (what `replicas` is in every
/// workload's Go type) is an error at its line.
fn checked(path: &str, found: FoundSize, sink: &mut Sink) -> Option<i64> {
    if (0..=INT32_MAX).contains(&found.value) {
        return Some(found.value);
    }
    let line = found.node.map_or(1, |n| n.key_line);
    let rule = if found.value < 0 {
        "must be an integer >= 0"
    } else {
        "must be at most 2147483647 (an int32)"
    };
    sink.error(
        RenderError::new(
            path,
            line,
            format!("{}: spec.replicas {rule}, got {}", found.what, found.value),
        )
        .with_field("spec.replicas"),
    );
    None
}

// ---------------------------------------------------------------------------------------
// KubeVela
// ---------------------------------------------------------------------------------------

/// `kubevela_plan` with its rule errors at `line` (the `rolloutBatches` key, or the plan).
fn kubevela_steps(
    path: &str,
    batches: &[IntOrString],
    batch_partition: Option<i64>,
    r: i64,
    opts: &PlanOptions,
    (field, line): (String, u32),
    sink: &mut Sink,
) -> Option<Plan> {
    let from = size(opts.from_replicas);
    let batches = if batches.is_empty() {
        // KubeVela's Rollout controller writes one batch of the difference for a scale.
        kubevela::scale_batches(&[], from.unwrap_or(0), r)
    } else {
        batches.to_vec()
    };
    match kubevela_plan(&batches, batch_partition, r, from) {
        Ok(p) => Some(p),
        Err(e) => {
            sink.error(rule_error(path, line, field, &e));
            None
        }
    }
}

fn rule_error(path: &str, line: u32, field: String, e: &KubeVelaError) -> RenderError {
    RenderError::new(path, line, format!("kubevela: {e}")).with_field(field)
}

/// An Application's first component with a `rollout` trait; `None` when it has none.
fn plan_application(
    path: &str,
    doc: &Located,
    opts: &PlanOptions,
    sink: &mut Sink,
) -> Option<Planned> {
    let Some(Located {
        node: Node::Seq(components),
        ..
    }) = spec_of(doc).and_then(|s| s.get("components"))
    else {
        return None;
    };
    for (i, c) in components.iter().enumerate() {
        let Some(Located {
            node: Node::Seq(traits),
            ..
        }) = c.get("traits")
        else {
            continue;
        };
        if !traits
            .iter()
            .any(|t| str_at(t, "type") == Some(ROLLOUT_TRAIT))
        {
            continue;
        }
        let comp_field = format!("spec.components[{i}]");
        let comp = str_at(c, "name").unwrap_or_default();
        let types_ok = check_trait_types(path, &comp_field, comp, traits, sink);
        let Some(parsed) = parse_rollout_trait(path, &comp_field, comp, traits, sink) else {
            return Some(Ok(None));
        };
        if !types_ok {
            return Some(Ok(None));
        }
        // Planned as a first release, the daemon's render checks the batches as a rollout of
        // `targetSize`: the same rule, the same error.
        if opts.replicas.is_none()
            && opts.from_replicas.is_none()
            && !check_batches_with_rollout(
                path,
                &parsed.prefix,
                &parsed.rollout.rollout_batches,
                parsed.rollout.target_size,
                &parsed.batches_place,
                sink,
            )
        {
            return Some(Ok(None));
        }
        let rollout = parsed.rollout;
        let r = size(opts.replicas).unwrap_or(rollout.target_size);
        let place = parsed.batches_place;
        return Some(Ok(kubevela_steps(
            path,
            &rollout.rollout_batches,
            rollout.batch_partition,
            r,
            opts,
            place,
            sink,
        )));
    }
    None
}

/// The `replicas` property of a component of an Application of the file (one of
/// `components`, or any when empty), else the first workload of the file.
fn component_size<'a>(docs: &'a [Located], components: &[String]) -> Option<FoundSize<'a>> {
    for doc in docs {
        if str_at(doc, "kind") != Some("Application") {
            continue;
        }
        let Some(Located {
            node: Node::Seq(items),
            ..
        }) = spec_of(doc).and_then(|s| s.get("components"))
        else {
            continue;
        };
        for c in items {
            let name = str_at(c, "name").unwrap_or_default();
            if !(components.is_empty() || components.iter().any(|x| x == name)) {
                continue;
            }
            let node = c.get("properties").and_then(|p| p.get("replicas"));
            if let Some(Located {
                node: Node::Num(n), ..
            }) = node
                && let Some(value) = n.as_i64()
            {
                return Some(FoundSize {
                    value,
                    node,
                    what: format!("component \"{name}\""),
                });
            }
        }
    }
    workload_size(docs, None)
}

fn plan_app_rollout(
    path: &str,
    doc: &Located,
    docs: &[Located],
    opts: &PlanOptions,
    sink: &mut Sink,
) -> Planned {
    let Some(mut read) = read_app_rollout(path, doc, name_of(doc), sink) else {
        return Ok(None);
    };
    let plan = &mut read.parsed.info.plan;
    if let Some(r) = size(opts.replicas) {
        // `--replicas` stands for `targetSize`, also for KubeVela's defaulting.
        plan.target_size = Some(r);
    }
    if !admit_rollout_plan(path, &read.prefix, plan, read.plan_node, sink) {
        return Ok(None);
    }
    let r = match plan.target_size {
        Some(r) => r,
        None => {
            let found =
                component_size(docs, &read.parsed.info.component_list).ok_or_else(|| {
                    PlanError::UnknownReplicas {
                        path: path.to_owned(),
                        what: "AppRollout".to_owned(),
                    }
                })?;
            let Some(r) = checked(path, found, sink) else {
                return Ok(None);
            };
            r
        }
    };
    let place = read.parsed.batches_place.clone();
    // As the daemon's render checks an AppRollout to new revisions with a targetSize.
    if opts.replicas.is_none()
        && opts.from_replicas.is_none()
        && plan.target_size.is_some()
        && !check_batches_with_rollout(path, &read.prefix, &plan.replicas(), r, &place, sink)
    {
        return Ok(None);
    }
    Ok(kubevela_steps(
        path,
        &plan.replicas(),
        plan.batch_partition,
        r,
        opts,
        place,
        sink,
    ))
}

/// A KubeVela `Rollout` (`standard.oam.dev`, what the trait renders): its `rolloutPlan` is read
/// like an AppRollout's; batches are filled for a scale as the Rollout controller does.
fn plan_kubevela_rollout(
    path: &str,
    doc: &Located,
    opts: &PlanOptions,
    sink: &mut Sink,
) -> Planned {
    let Some(node) = spec_of(doc).and_then(|s| s.get("rolloutPlan")) else {
        return Ok(None);
    };
    let prefix = format!("Rollout \"{}\": ", name_of(doc));
    let Some(mut plan) = read_rollout_plan(path, &prefix, "spec.rolloutPlan", node, sink) else {
        return Ok(None);
    };
    if let Some(r) = size(opts.replicas) {
        plan.target_size = Some(r);
    }
    let r = plan.target_size.ok_or_else(|| PlanError::UnknownReplicas {
        path: path.to_owned(),
        what: "rolloutPlan".to_owned(),
    })?;
    kubevela::default_plan(&mut plan);
    if plan.rollout_batches.is_empty() {
        plan.rollout_batches =
            kubevela::scale_batches(&[], size(opts.from_replicas).unwrap_or(0), r)
                .into_iter()
                .map(kubevela::RolloutBatch::new)
                .collect();
    }
    if !admit_rollout_plan(path, &prefix, &mut plan, node, sink) {
        return Ok(None);
    }
    let place = batches_place(Some(node), "spec.rolloutPlan", doc.line);
    Ok(kubevela_steps(
        path,
        &plan.replicas(),
        plan.batch_partition,
        r,
        opts,
        place,
        sink,
    ))
}

// ---------------------------------------------------------------------------------------
// Argo and Kruise
// ---------------------------------------------------------------------------------------

fn plan_argo(path: &str, doc: &Located, opts: &PlanOptions, sink: &mut Sink) -> Planned {
    let Some(ArgoRollout { mut canary, .. }) = parse_argo_rollout(path, doc, sink) else {
        return Ok(None);
    };
    if let Some(r) = size(opts.replicas) {
        canary.replicas = r;
    }
    Ok(Some(argo_plan(&canary)))
}

fn plan_kruise(
    path: &str,
    doc: &Located,
    docs: &[Located],
    opts: &PlanOptions,
    sink: &mut Sink,
) -> Planned {
    let Some(rollout) = parse_kruise_rollout(path, doc, sink) else {
        return Ok(None);
    };
    if rollout.steps.is_empty() {
        // A blue-green Rollout: no canary steps to plan.
        sink.errors.append(&mut rollout.unsupported.clone());
        return Ok(None);
    }
    let KruiseRollout {
        workload,
        style,
        steps,
        ..
    } = &rollout;
    let wname = workload.name.as_deref();
    let kind = match workload.kind.as_str() {
        "CloneSet" => WorkloadKind::CloneSet,
        "StatefulSet" => docs
            .iter()
            .find(|d| {
                str_at(d, "kind") == Some("StatefulSet") && wname.is_none_or(|n| name_of(d) == n)
            })
            .and_then(workload_kind)
            .unwrap_or(WorkloadKind::StatefulSet),
        "DaemonSet" => WorkloadKind::DaemonSet,
        _ => WorkloadKind::Deployment,
    };
    let r = match size(opts.replicas) {
        Some(r) => r,
        None => {
            let found = workload_size(docs, wname.map(|n| (workload.kind.as_str(), n)))
                .or_else(|| workload_size(docs, None))
                .ok_or_else(|| PlanError::UnknownReplicas {
                    path: path.to_owned(),
                    what: format!("{} {}", workload.kind, wname.unwrap_or_default()),
                })?;
            let Some(r) = checked(path, found, sink) else {
                return Ok(None);
            };
            r
        }
    };
    Ok(Some(kruise_plan(steps, kind, *style, r)))
}
