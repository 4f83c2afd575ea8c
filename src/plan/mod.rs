//! The **plan** stage: from an app's files at a commit to everything rollgit will put in the
//! cluster for it. The daemon, `rollgit diff`, `rollgit history` and `rollgit rollback` all
//! go through here, so they can never disagree about what Git asks for.
//!
//! ```text
//! read (git: the app's files)  ─► render (rollgit-render, pure)  ─► desired (pure)  ─► AppPlan
//!                                   ▲                                                ├─ objects
//! revisions (cluster: its ControllerRevisions, last publishVersion)                  ├─ rollouts
//!                                                                                    ├─ bumps
//!                                                                                    └─ inventory
//! ```
//!
//! * [`read`]: which files make which app, at any commit;
//! * [`revisions`]: the revision state the render numbers after;
//! * [`render`]: the render of an app (with the repository's objects when it uses
//!   `ref-objects`), errors as `path:line: message`;
//! * [`desired`]: the objects to apply: the rendered objects a rollout does not own, the
//!   component and app revisions (owned by the app's status object), one `rollouts.rollgit.dev`
//!   Rollout per rolled-out component ([`rollouts`]), all labelled with the repository, minus
//!   what the Argo Rollouts executor owns ([`argo`]); the bump file ([`bumps`]); the workloads
//!   OpenKruise Rollouts hold ([`kruise`]); and the
//!   inventory later prunes compare with.

pub mod allow;
pub mod argo;
pub mod bumps;
pub mod kruise;
pub mod read;
pub mod revisions;
pub mod rollouts;
pub mod workflow;

use crate::k8s::{API_VERSION, APP_LABEL, Inventory, MANAGED_BY, MANAGED_BY_LABEL, REPO_LABEL};
use rollgit_render::{AppDir, ObjectIndex, RevisionState, SourceFile};
use serde_json::{Value, json};
use std::time::Duration;

/// What [`desired`] needs besides the render.
#[derive(Debug, Clone)]
pub struct PlanContext<'a> {
    /// The app.
    pub app: &'a str,
    /// rollgit's name of the repository (the `rollgit.dev/repo` label).
    pub repo: &'a str,
    /// The app's directory in the repository.
    pub dir: &'a str,
    /// The commit rendered.
    pub commit: &'a str,
    /// The progress deadline of a rollout batch (an Application may override it).
    pub progress_deadline: Duration,
    /// The app's status object as the owner of the objects rollgit makes for the app
    /// (revisions, Rollouts) in its namespace; `None` when it does not exist (yet).
    pub owner: Option<Owner<'a>>,
    /// Argo Rollouts' own controller runs the app's Argo Rollouts (delegate mode): rollgit
    /// only applies them ([`argo`]).
    pub argo_external: bool,
    /// OpenKruise's own controller runs the app's Kruise Rollouts (delegate mode, or no Kruise
    /// executor at all): what only rollgit's executor cannot run is not refused.
    pub kruise_external: bool,
    /// The fleet topology policies name clusters of ([`workflow`]).
    pub fleet: &'a [rollgit_render::workflow::FleetCluster],
    /// The repository's cluster (`local` in topology policies).
    pub cluster: &'a str,
}

/// The app's status object as an owner.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    /// An ownerReference to it.
    pub reference: &'a Value,
    /// Its namespace: only objects in this namespace name it (Kubernetes' garbage collector
    /// treats an owner in another namespace as absent and deletes the dependent), and an
    /// object that names no namespace goes to the repository's, where an app whose status
    /// object lives elsewhere renders none.
    pub namespace: &'a str,
}

impl Owner<'_> {
    /// Sets `object`'s ownerReferences to this owner when they share a namespace.
    fn own(&self, object: &mut Value) {
        let ns = object["metadata"]["namespace"].as_str();
        if ns.is_none_or(|ns| ns == self.namespace) {
            object["metadata"]["ownerReferences"] = json!([self.reference]);
        }
    }
}

/// Everything rollgit puts in the cluster for one commit of an app.
#[derive(Debug, Clone, PartialEq)]
pub struct AppPlan {
    /// The objects to apply, in apply order: the rendered objects a rollout does not own,
    /// then the component and app revisions, then the Rollouts.
    pub objects: Vec<Value>,
    /// Where each of `objects` comes from in Git (`path:line`), when one place does.
    pub sources: Vec<Option<String>>,
    /// The Rollouts (namespace, spec) among `objects`.
    pub rollouts: Vec<(String, crate::k8s::RolloutSpec)>,
    /// The content of the app's bump file when this render decided something new.
    pub bumps: Option<String>,
    /// What Kruise Rollouts hold (among `objects`): workloads held before an apply changes
    /// their template, so that the Kruise executor rolls the change out in steps, and stable
    /// Services whose selector the executor owns.
    pub held: kruise::Held,
    /// What a later commit prunes against: `objects` without the revisions (history a
    /// rollback needs, kept until the app leaves: they go with their owner).
    pub inventory: Inventory,
    /// The app's workflow: its components' objects, delivered step by step to the fleet
    /// (not among `objects`).
    pub workflow: Option<workflow::WorkflowPlan>,
}

/// Renders `app` from `files` (`index`: the repository's objects, for `ref-objects`) in
/// `namespace`, numbering revisions after `prev`. Errors are `path:line: message`.
pub fn render(
    app: &AppDir,
    namespace: &str,
    files: &[SourceFile],
    index: Option<&ObjectIndex>,
    prev: &RevisionState,
) -> Result<rollgit_render::Rendered, Vec<String>> {
    let result = match index {
        Some(ix) => rollgit_render::render_app(&app.name, namespace, files, ix, prev),
        None => {
            rollgit_render::render_app(&app.name, namespace, files, &rollgit_render::NoRefs, prev)
        }
    };
    result.map_err(|errs| errs.0.iter().map(ToString::to_string).collect())
}

/// What rollgit applies for a render (pure). Errors (an invalid rollout annotation) are
/// `path:line: message`, like render errors: the commit is rejected whole.
pub fn desired(
    rendered: &rollgit_render::Rendered,
    ctx: &PlanContext<'_>,
) -> Result<AppPlan, Vec<String>> {
    let mut rollouts = rollouts::specs_for(rendered, ctx.app, ctx.commit, ctx.progress_deadline)?;
    let mut wf = workflow::workflow_of(rendered, ctx.fleet, ctx.cluster)?;
    let component_source = |component: &str| {
        rendered
            .applications
            .iter()
            .flat_map(|a| a.components.iter())
            .find(|c| c.name == component)
            .map(|c| c.source.to_string())
    };
    // Workloads a rollout owns are the rollout stage's: it creates and scales them.
    let mut objects = Vec::new();
    let mut sources = Vec::new();
    for o in rendered.objects.iter().filter(|o| !o.rollout_owned) {
        if let Some((components, plan)) = wf.as_mut()
            && o.component.as_ref().is_some_and(|c| components.contains(c))
        {
            let mut object = o.object.clone();
            object["metadata"]["labels"][REPO_LABEL] = json!(ctx.repo);
            plan.objects.push(object);
            plan.sources.push(Some(o.source.to_string()));
            continue;
        }
        objects.push(o.object.clone());
        sources.push(Some(o.source.to_string()));
    }
    let revisions = rendered
        .revisions
        .iter()
        .map(|rev| (&rev.controller_revision, component_source(&rev.component)))
        .chain(rendered.app_revisions.iter().map(|rev| {
            let source = rendered
                .applications
                .iter()
                .find(|a| a.name == rev.application)
                .map(|a| a.source.to_string());
            (&rev.controller_revision, source)
        }));
    for (cr, source) in revisions {
        let mut cr = cr.clone();
        if let Some(o) = ctx.owner {
            o.own(&mut cr);
        }
        objects.push(cr);
        sources.push(source);
    }
    for (ns, spec) in &mut rollouts {
        spec.repo = Some(ctx.repo.to_string());
        spec.path = Some(ctx.dir.to_string());
        let mut ro = json!({
            "apiVersion": API_VERSION,
            "kind": "Rollout",
            "metadata": {
                "name": spec.component,
                "namespace": ns,
                "labels": {
                    APP_LABEL: spec.app,
                    "app.oam.dev/component": spec.component,
                    MANAGED_BY_LABEL: MANAGED_BY,
                },
            },
            "spec": spec,
        });
        if let Some(o) = ctx.owner {
            o.own(&mut ro);
        }
        objects.push(ro);
        sources.push(component_source(&spec.component));
    }
    if !ctx.kruise_external {
        let errors: Vec<String> = rendered
            .kruise_rollouts
            .iter()
            .flat_map(|k| {
                k.rollout.unsupported.iter().map(|e| {
                    format!("{e}; run OpenKruise's own Rollout controller next to rollgit (rolloutControllers.kruise: external) to use it")
                })
            })
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
    }
    let held = kruise::hold_workloads(
        &rendered.kruise_rollouts,
        &mut objects,
        ctx.commit,
        ctx.dir,
        ctx.progress_deadline,
    )?;
    for o in &mut objects {
        o["metadata"]["labels"][REPO_LABEL] = json!(ctx.repo);
    }
    argo::claim(
        &rendered.argo_rollouts,
        &mut objects,
        ctx.commit,
        ctx.dir,
        ctx.argo_external,
    )?;
    let inventory = Inventory::from_refs(
        Inventory::from_objects(&objects)
            .entries()
            .iter()
            .filter(|r| !(r.group == "apps" && r.kind == "ControllerRevision"))
            .cloned(),
    );
    Ok(AppPlan {
        bumps: bumps::has_bumps(rendered).then(|| bumps::bump_file(rendered)),
        objects,
        sources,
        rollouts,
        held,
        inventory,
        workflow: wf.map(|(_, plan)| plan),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_files(files: &[(&str, &str)]) -> rollgit_render::Rendered {
        let app = AppDir {
            name: "shop".into(),
            dir: "apps/shop".into(),
            referenced: Vec::new(),
            namespace: None,
        };
        let files: Vec<SourceFile> = files
            .iter()
            .map(|(p, c)| SourceFile::new(p.to_string(), c.as_bytes().to_vec()))
            .collect();
        render(&app, "default", &files, None, &RevisionState::default()).expect("renders")
    }

    const TRAIT_APP: &str = "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: shop
spec:
  components:
  - name: web
    type: webservice
    properties:
      image: nginx:1
    traits:
    - type: rollout
      properties:
        targetSize: 4
        rolloutBatches:
        - replicas: 2
        - replicas: 2
";

    /// The plan context of app `shop` of repository `platform` at commit `c0ffee`.
    fn shop_ctx(owner: Option<Owner<'_>>) -> PlanContext<'_> {
        PlanContext {
            app: "shop",
            repo: "platform",
            dir: "apps/shop",
            commit: "c0ffee",
            progress_deadline: Duration::from_secs(600),
            owner,
            argo_external: false,
            kruise_external: false,
            fleet: &[],
            cluster: "default",
        }
    }

    #[test]
    fn a_rolled_out_workload_is_the_rollout_stages_and_a_rollout_object_takes_its_place() {
        let r = render_files(&[("apps/shop/app.yaml", TRAIT_APP)]);
        let owner =
            json!({"apiVersion": API_VERSION, "kind": "Application", "name": "shop", "uid": "u1"});
        let ctx = shop_ctx(Some(Owner {
            reference: &owner,
            namespace: "default",
        }));
        let plan = desired(&r, &ctx).expect("plans");
        let kinds: Vec<(&str, &str)> = plan
            .objects
            .iter()
            .map(|o| {
                (
                    o["kind"].as_str().unwrap_or_default(),
                    o["metadata"]["name"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("ControllerRevision", "web-v1"),
                ("ControllerRevision", "shop-v1.app"),
                ("Rollout", "web")
            ],
            "no Deployment: the rollout stage makes web-v1's"
        );
        for o in &plan.objects {
            assert_eq!(o["metadata"]["labels"][REPO_LABEL], "platform");
        }
        assert_eq!(
            plan.objects[0]["metadata"]["ownerReferences"][0]["uid"],
            "u1"
        );
        assert_eq!(
            plan.objects[2]["metadata"]["ownerReferences"][0]["uid"],
            "u1"
        );
        let spec = &plan.objects[2]["spec"];
        assert_eq!(spec["targetRevision"], "web-v1");
        assert_eq!(spec["repo"], "platform");
        assert_eq!(spec["path"], "apps/shop");
        assert_eq!(spec["commit"], "c0ffee");
        let inv: Vec<String> = plan
            .inventory
            .entries()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            inv,
            ["Rollout.rollgit.dev default/web"],
            "revisions are never pruned"
        );
        assert!(
            plan.bumps
                .as_deref()
                .is_some_and(|b| b.contains("web: web-v1"))
        );
    }

    #[test]
    fn only_objects_in_the_owners_namespace_name_it() {
        let r = render_files(&[("apps/shop/app.yaml", TRAIT_APP)]);
        let owner =
            json!({"apiVersion": API_VERSION, "kind": "Application", "name": "shop", "uid": "u1"});
        for (owner_ns, owned) in [("default", true), ("elsewhere", false)] {
            let ctx = shop_ctx(Some(Owner {
                reference: &owner,
                namespace: owner_ns,
            }));
            let plan = desired(&r, &ctx).expect("plans");
            assert_eq!(plan.objects.len(), 3);
            for o in &plan.objects {
                assert_eq!(
                    o["metadata"]["ownerReferences"].is_array(),
                    owned,
                    "owner in {owner_ns}: {}",
                    o["metadata"]
                );
            }
        }
    }

    #[test]
    fn plain_objects_pass_through_labelled_with_the_repository() {
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n";
        let r = render_files(&[("apps/shop/cm.yaml", cm)]);
        let ctx = shop_ctx(None);
        let plan = desired(&r, &ctx).expect("plans");
        assert_eq!(plan.objects.len(), 1);
        assert_eq!(plan.objects[0]["data"]["k"], "v");
        assert_eq!(
            plan.objects[0]["metadata"]["labels"][REPO_LABEL],
            "platform"
        );
        assert!(plan.rollouts.is_empty());
        // A first render decides the app's first publishVersion: worth a bump.
        assert!(
            plan.bumps
                .as_deref()
                .is_some_and(|b| b.contains("publishVersion: alpha1"))
        );
    }
}
