//! The OpenKruise Rollout executor: rollgit runs `rollouts.kruise.io` Rollouts itself, from
//! Git, with no Kruise installed (seed 004).
//!
//! A Kruise Rollout points at a workload (`workloadRef`); every later change of that
//! workload's pod template goes out in the Rollout's steps (`replicas`, `traffic`/`weight`,
//! `matches`, `pause`). The pieces:
//!
//! * the **plan stage** ([`crate::plan::kruise`]) marks the workload a Rollout of the same app
//!   points at as *held*, and leaves out of what it applies the fields this executor owns;
//! * before applying a new template, the worker **holds** the workload ([`hold`], what
//!   Kruise's webhook does): paused (a CloneSet's or StatefulSet's partition at every pod),
//!   annotated `rollouts.kruise.io/in-progressing`, its stable revision labelled; the apply
//!   then changes the template and nothing rolls by itself;
//! * the **controller** ([`controller`]) runs each Rollout: observe (the Rollout, the workload
//!   [`workload`], the traffic objects [`traffic`]) → decide
//!   ([`rollgit_core::kruise_run::reconcile`], taking `now` from the injected clock) → act
//!   (absolute, idempotent) → record the status in Kruise's format ([`status`]);
//! * [`approve`] is `kubectl-kruise rollout approve`: StepPaused → StepReady in the status.
//!
//! Who runs Kruise Rollouts in a cluster is asked on every pass and before every apply
//! ([`detect`]): rollgit (its CRD installed at start by [`crate::k8s::kruise::ensure`] when
//! Kruise is not there), or Kruise's own controller (its CRD or its controller Deployment
//! found, or `rolloutControllers.kruise: external`), when rollgit only applies the Rollouts
//! and reads their health: no hold, no pass, and what only rollgit's executor cannot run
//! ([`rollgit_render::KruiseRollout::unsupported`]) is not refused.

pub mod approve;
pub mod controller;
pub mod detect;
pub mod status;
pub mod traffic;
pub mod workload;

pub use controller::run;
pub use detect::Detector;

use crate::ErrorClass;
use crate::plan::AppPlan;
use rollgit_core::kruise::RollingStyle;
use workload::Kind;

/// Errors of one pass of a Kruise Rollout.
#[derive(Debug, thiserror::Error)]
pub enum KruiseRolloutError {
    /// Reading the Rollout, its workload or its traffic objects failed.
    #[error("reading {what} for rollout {namespace}/{name}")]
    Observe {
        what: String,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// The Rollout's spec is not one rollgit runs (written by hand or by another tool).
    #[error("rollout {namespace}/{name}: {message}")]
    InvalidSpec {
        namespace: String,
        name: String,
        message: String,
    },
    /// The Rollout's status does not describe a state.
    #[error("the status of rollout {namespace}/{name} does not parse: {message}")]
    InvalidStatus {
        namespace: String,
        name: String,
        message: String,
    },
    /// Changing a workload or a traffic object failed.
    #[error("{action} for rollout {namespace}/{name}")]
    Act {
        action: String,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// Recording the status failed.
    #[error("writing the status of rollout {namespace}/{name}")]
    Record {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl KruiseRolloutError {
    /// How the controller retries it.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Observe { source, .. }
            | Self::Act { source, .. }
            | Self::Record { source, .. } => ErrorClass::of_kube(source),
            Self::InvalidSpec { .. } | Self::InvalidStatus { .. } => ErrorClass::Terminal,
        }
    }
}

/// Holding a workload before an apply failed.
#[derive(Debug, thiserror::Error)]
#[error("holding {kind} {namespace}/{name} for Kruise Rollout {rollout}")]
pub struct HoldError {
    kind: String,
    namespace: String,
    name: String,
    rollout: String,
    #[source]
    source: kube::Error,
}

impl HoldError {
    /// How the worker retries it.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::of_kube(&self.source)
    }
}

/// Before `plan` is applied: holds each workload whose pod template the apply changes, as
/// Kruise's webhook does (see the module documentation; a workload that does not exist yet,
/// has no pods, or whose template stays is left alone), and hands the selector of each
/// existing stable Service over to the executor (it co-owns the selector first, then the apply
/// leaves it out of `plan.objects`; a Service being created keeps Git's selector), and the
/// rules of each existing HTTPRoute the same way.
pub async fn hold(client: &kube::Client, plan: &mut AppPlan) -> Result<(), HoldError> {
    for s in &plan.held.services {
        let err = |source| HoldError {
            kind: "Service".into(),
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            rollout: s.rollout.clone(),
            source,
        };
        if !traffic::take_selector(client, &s.namespace, &s.name)
            .await
            .map_err(err)?
        {
            continue;
        }
        for o in plan.objects.iter_mut() {
            if o["kind"] == "Service"
                && o["metadata"]["name"] == s.name.as_str()
                && o["metadata"]["namespace"] == s.namespace.as_str()
                && let Some(spec) = o["spec"].as_object_mut()
            {
                spec.remove("selector");
            }
        }
    }
    for r in &plan.held.routes {
        let err = |source| HoldError {
            kind: "HTTPRoute".into(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            rollout: r.rollout.clone(),
            source,
        };
        if !traffic::take_rules(client, &r.namespace, &r.api_version, &r.name)
            .await
            .map_err(err)?
        {
            continue;
        }
        for o in plan.objects.iter_mut() {
            if o["kind"] == "HTTPRoute"
                && o["apiVersion"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("gateway.networking.k8s.io/"))
                && o["metadata"]["name"] == r.name.as_str()
                && o["metadata"]["namespace"]
                    .as_str()
                    .is_none_or(|ns| ns == r.namespace)
                && let Some(spec) = o["spec"].as_object_mut()
            {
                spec.remove("rules");
            }
        }
    }
    for h in &plan.held.workloads {
        let Some(kind) = Kind::of(&h.kind) else {
            continue;
        };
        let err = |source| HoldError {
            kind: h.kind.clone(),
            namespace: h.namespace.clone(),
            name: h.name.clone(),
            rollout: h.rollout.clone(),
            source,
        };
        let Some(live) =
            workload::read(client, &h.namespace, kind, &h.name, RollingStyle::Partition)
                .await
                .map_err(err)?
        else {
            continue;
        };
        if live.template_hash() == Some(h.template_hash.as_str()) || live.spec_replicas() == 0 {
            continue;
        }
        let stable = live.current_hash().unwrap_or_default();
        tracing::info!(namespace = %h.namespace, workload = %h.name, rollout = %h.rollout, stable = %stable, "holding a new template for the Kruise Rollout's steps");
        workload::hold(client, &live, &h.rollout, &stable, Some(&h.template_hash))
            .await
            .map_err(err)?;
    }
    Ok(())
}

/// After an apply: lets go of each hold whose template did not land (the commit was refused or
/// the workload failed to apply), so that the executor resumes the workload instead of waiting
/// for it. Best effort: a failure is logged (the hold is let go at the next sync).
pub async fn release_unapplied_holds(client: &kube::Client, plan: &AppPlan) {
    for h in &plan.held.workloads {
        let Some(kind) = Kind::of(&h.kind) else {
            continue;
        };
        let live = match workload::read(
            client,
            &h.namespace,
            kind,
            &h.name,
            RollingStyle::Partition,
        )
        .await
        {
            Ok(Some(live)) => live,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(namespace = %h.namespace, workload = %h.name, error = %crate::error_chain(&e), "reading a held workload after the apply failed");
                continue;
            }
        };
        if let Err(e) = workload::let_go(client, &live).await {
            tracing::warn!(namespace = %h.namespace, workload = %h.name, error = %crate::error_chain(&e), "letting go of a hold failed");
        }
    }
}
