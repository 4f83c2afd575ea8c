//! rollgit's **render** and **plan (revisions)** stages, as a pure library: files in, objects
//! out. No I/O, no clock, no randomness; the same inputs give the same output, byte for byte.
//!
//! ```text
//! discover_apps(paths, roots) ─► AppDir ─► render_app(app, namespace, files, refs, prev)
//!                                                │
//!                                                ├─► Rendered.objects       (apply order)
//!                                                ├─► Rendered.applications  (not applied)
//!                                                ├─► Rendered.revisions     (ControllerRevisions)
//!                                                ├─► Rendered.app_revisions (ControllerRevisions)
//!                                                ├─► Rendered.app_rollouts  (typed AppRollouts)
//!                                                └─► publish_version, content_hash
//! affected_apps(changed, apps) ─► which apps to render again
//! ```
//!
//! # Input
//!
//! An app is a directory of a repository at one commit ([`discover_apps`]): its `.yaml`,
//! `.yml` and `.json` files ([`SourceFile`]), each possibly holding several documents
//! separated by `---`. Empty documents are skipped, other files ignored. YAML is read with
//! serde-saphyr: YAML 1.1 octals (`0644`), YAML 1.2 booleans only (`no`, `on`, `n` stay
//! strings), duplicate keys rejected.
//!
//! # Plain objects
//!
//! Passed through as written, with `metadata.namespace` set to the app's namespace for the
//! namespaced kinds rollgit knows ([`scope_of`]) and for custom resources whose CRD is in the
//! same app; cluster-scoped kinds (Namespace, CustomResourceDefinition, ClusterRole, ...) never
//! get one (a namespace written on them is dropped with a warning). Unknown kinds are left as
//! written ([`Scope::Unknown`]): the daemon decides with discovery.
//!
//! # KubeVela `Application` (`core.oam.dev/v1beta1`)
//!
//! The Application is **not** applied (there is no KubeVela controller). Its components are
//! rendered the way KubeVela's built-in definitions render them, and it is described by an
//! [`ApplicationInfo`] (components with type, `externalRevision`, traits; policies; workflow;
//! annotations). Traits stay attached to their component as written; the `rollout` trait is
//! also validated and typed (see [Rollouts](#rollouts)). It is the only trait type rollgit
//! renders ([`TRAIT_TYPES`]): any other (KubeVela's `scaler`, `gateway`, `expose`, ...) would
//! change what KubeVela deploys, so it is an error naming the supported types, never dropped
//! (the seeds use no other). Other `core.oam.dev` documents
//! (Policy, Workflow, AppRollout) are returned in [`Rendered::oam_objects`], not applied.
//! Topology `Policy` documents, `spec.policies`, `Workflow` documents and `spec.workflow` are
//! read into [`ApplicationInfo::delivery`] ([`workflow`]: what rollgit runs and refuses,
//! `path:line` errors), and every standalone Policy and Workflow is checked even when no
//! Application uses it.
//!
//! | type | renders |
//! |---|---|
//! | `webservice` | `apps/v1` Deployment named after the component; a `v1` Service of the same name when a port has `expose: true` |
//! | `worker` | `apps/v1` Deployment; never a Service |
//! | `cloneset` | OpenKruise `apps.kruise.io/v1alpha1` CloneSet named after the component; a Service like `webservice` |
//! | `clonesetservice` | exactly like `cloneset` (the name KubeVela's AppRollout docs use), `workload.oam.dev/type: clonesetservice` |
//! | `ref-objects` | the objects named in `objects`, found in Git (see [`refs`](crate::RefLookup)) |
//!
//! Properties of `webservice`, `worker`, `cloneset` and `clonesetservice`:
//!
//! | property | type | renders as |
//! |---|---|---|
//! | `image` (required) | string | `containers[0].image` (the container is named after the component) |
//! | `imagePullPolicy` | `Always` \| `Never` \| `IfNotPresent` | `containers[0].imagePullPolicy` |
//! | `imagePullSecrets` | list of strings | `imagePullSecrets: [{name}]` |
//! | `cmd` | list of strings | `containers[0].command` |
//! | `args` | list of strings | `containers[0].args` |
//! | `env` | list of `{name, value?: string, valueFrom?: mapping}` | `containers[0].env` |
//! | `ports` | list of `{port: 1..65535, name?, protocol?: TCP\|UDP\|SCTP, expose?: bool}` | `containerPort`s named `port-<N>` unless named; exposed ones become Service ports `{name, port, targetPort}` (+`protocol` when not TCP) |
//! | `port` | integer (older form, ignored when `ports` is set) | one `containerPort`, not exposed |
//! | `exposeType` | `ClusterIP` (default) \| `NodePort` \| `LoadBalancer` \| `ExternalName` | Service `type` |
//! | `cpu`, `memory` | string (a bare number is accepted for `cpu: 0.5`) | `resources.requests` and `resources.limits` |
//! | `labels` | map of strings | workload `metadata.labels` and pod template labels |
//! | `annotations` | map of strings | workload `metadata.annotations` and pod template annotations |
//! | `replicas` | integer ≥ 0 | `spec.replicas` (unset by default, so a rollout or HPA can own it) |
//! | `livenessProbe`, `readinessProbe` | mapping | passed through to `containers[0]` |
//! | `updateStrategyType` (`cloneset`, `clonesetservice` only) | `ReCreate` \| `InPlaceIfPossible` \| `InPlaceOnly` | `spec.updateStrategy.type` |
//!
//! Other properties (`volumeMounts`, `hostAliases`, ...) are ignored with a warning.
//! Labels, as KubeVela sets them: workloads carry `app.oam.dev/name` (the Application's name),
//! `app.oam.dev/component` and `workload.oam.dev/type`; the selector is
//! `app.oam.dev/component: <component>`; pods carry `app.oam.dev/name` and
//! `app.oam.dev/component`; the Service selects `app.oam.dev/component`. Objects of
//! `ref-objects` get `app.oam.dev/name` and `app.oam.dev/component` added.
//!
//! `ref-objects` properties: `objects: [{apiVersion, kind, name, namespace?}]`, or
//! `{apiVersion, kind, labelSelector: {label: value, ...}, namespace?}` for every object of the
//! kind in the namespace with those labels (an empty selector, or a selector with a name, is an
//! error; selecting nothing is an error). See [`RefLookup`] for where they are looked for.
//!
//! # Rollouts
//!
//! Render gives the rollout stage typed, validated inputs; it does not roll anything out.
//!
//! * **`rollout` trait** (ROLLOUT-SEMANTICS.md C.4) → [`ComponentInfo::rollout`], a
//!   [`RolloutTrait`]: `targetRevision` (must name a revision of the component: one in the
//!   [`RevisionState`] or the one decided in this render), `targetSize` (required, 0 to
//!   2147483647: KubeVela's `*int32`), `rolloutBatches[].replicas` (int32s ≥ 0, or lenient
//!   KubeVela percents from 0% to 100%: `"30"` is 30%, `"0.2"`, `"ab"`, `"-5%"` and `"150%"`
//!   are errors), at most [`MAX_BATCHES`] batches, `batchPartition` (0 to 2147483647),
//!   `rolloutStrategy` (`IncreaseFirst` or `DecreaseFirst`). Unknown properties are warnings.
//!   Only components with one workload may carry it (not `ref-objects`).
//! * **Batch sums** (`verifyBatchesWithRollout`, KubeVela v1.3.10
//!   `pkg/controller/common/rollout/workloads/common.go`, C.2): the batches before the last,
//!   each rounded up, must add up to less than the size, and when the last batch is an int,
//!   all of them to exactly the size. Render applies the rule **exactly when the trait rolls
//!   out to a revision this render creates** ([`ComponentRevision::is_new`], and
//!   `targetRevision` unset or naming it), against `targetSize`: no workload can run that
//!   revision yet, so the run is a rollout (or a first release from 0 pods) whichever the
//!   cluster holds. Any other run may be a scale of the revision already running (a new
//!   `targetSize` on the same revision), whose batches add up to the size change instead
//!   (`verifyBatchesWithScale`); only the cluster knows, so the rollout stage checks it when
//!   the run starts (`rollgit_core::batch`), and fails the run with a condition. A trait
//!   without batches is one batch of the size and always passes. A percent over 100% is
//!   stricter than KubeVela's webhooks, which take any percent: before the last batch it
//!   always breaks the sum rules, and as the last batch its value is ignored.
//! * **`AppRollout`** (`core.oam.dev/v1beta1`) → [`Rendered::app_rollouts`], an
//!   [`AppRolloutInfo`]: `spec.rolloutPlan` read into a KubeVela `RolloutPlan` (the same
//!   ranges as the trait; `targetSize`, `numBatches` and `batchPartition` int32s ≥ 0,
//!   `numBatches` at most [`MAX_BATCHES`]), defaulted and validated with rollgit-core's
//!   `default_plan` and `validate_plan` (C.2), and the batch sum rule against `targetSize`
//!   when the plan has one and a component it rolls goes to a component revision this render
//!   creates (without `targetSize` the size is the workload's, which the rollout stage checks);
//!   `targetAppRevisionName` (required) and `sourceAppRevisionName` must name an app revision
//!   that exists or is decided in this render; `componentList` entries must be components with
//!   a workload of an Application of the app, present in the target app revision (empty: every
//!   such component of the target). Each rolled component is resolved to its component
//!   revisions in the source and target app revisions ([`AppRolloutComponent`]).
//! * **Argo Rollouts `Rollout`** (canary) and **OpenKruise `Rollout`** (v1alpha1, v1beta1):
//!   [`ArgoRollout`] and [`KruiseRollout`], read with the same field reader into
//!   rollgit-core's typed specs and validated with each system's admission rules (an int
//!   outside int32, what every int of their Go types is, is an error). `rollgit
//!   plan` reads them ([`plan::plan_document`]). [`render_app`] applies an Argo Rollout as a
//!   plain object and also reads it ([`Rendered::argo_rollouts`], [`ArgoRolloutInfo`]): an
//!   invalid one rejects the commit, and what rollgit's executor does not run (analysis and
//!   experiment steps, header and mirror routes, blue-green, other traffic routers) is listed
//!   in [`ArgoRollout::unsupported`] with `path:line`, for the plan stage to refuse when rollgit
//!   is the Rollout's controller. [`read_argo_object`] reads a live Rollout the same way (the
//!   executor's view of the cluster). A Kruise Rollout is applied too, and also validated (an
//!   invalid one, a `workloadRef` without a name or of a kind rollgit does not roll, two
//!   Rollouts of one workload reject the commit) and listed in [`Rendered::kruise_rollouts`]
//!   with the workload of the app it holds ([`KruiseRolloutInfo`]), for the plan stage.
//! * **Ownership**: a component whose workload a rollout owns (a `rollout` trait, an AppRollout
//!   rolls it, or its Application is annotated `app.oam.dev/rollout-template: "true"`) has
//!   [`ComponentInfo::rollout_owned`], and so has its workload's [`RenderedObject`]
//!   (`rollout_owned`); its Service and other objects stay plain.
//!
//! # Errors
//!
//! Every error is a [`RenderError`] displayed exactly `path:line: message`, the control
//! characters of the path and message escaped (a file name holding a newline or an ANSI
//! escape never forges a line of a status or a log); all errors of an app are returned
//! together ([`RenderErrors`]) and a render with any error is rejected whole: an app name that
//! is not a label value and object name ([`check_app_name`]), unparsable YAML (the parser's
//! line; documents nested deeper than 64 levels too), a document that is not a mapping, missing
//! `apiVersion`/`kind`/`metadata.name`, invalid names (RFC 1123), unknown component and trait types,
//! missing or mistyped properties, duplicate objects (same API group, kind, namespace and name;
//! the message names both places), `ref-objects` targets not found or ambiguous, an
//! `externalRevision` reused for a different spec, and invalid `rollout` traits and
//! AppRollouts (the field, such as `spec.components[0].traits[0].properties.targetSize`, is in
//! [`RenderError::field`]).
//!
//! # Revisions and publishVersion (plan)
//!
//! See [`plan_revision`] and [`next_publish_version`]. Each component with a workload gets a
//! [`ComponentRevision`] whose `controller_revision` is the ControllerRevision to apply
//! (`<component>-v<N>` or `externalRevision`, labelled `controller.oam.dev/component` and
//! `app.oam.dev/name`, `revision: N`, `data` = the rendered workload). The app's
//! `app.oam.dev/publishVersion` (`alpha1`, `alpha2`, ...) changes exactly when
//! [`Rendered::content_hash`] changes and is set on every workload's `metadata.annotations`
//! (not on the pod template: no restart). An explicit publishVersion on the Application wins.
//!
//! Each Application gets an [`AppRevision`] ([`plan_app_revision`]): the map component →
//! component revision of its components, `<application>-v<N>`, reused when an existing one
//! ([`RevisionState::applications`], read back with [`existing_app_revision_from_object`]) has
//! the same hash; its `controller_revision` is a ControllerRevision labelled `app.oam.dev/name`
//! and `rollgit.dev/app-revision: "true"`, `data: {components: {...}}`.
//!
//! # Order
//!
//! [`Rendered::objects`] is in apply order: Namespaces, CRDs, other cluster-scoped kinds,
//! namespaced kinds rollgit knows (ServiceAccounts, Secrets, ConfigMaps, ... before
//! workloads), unknown kinds (custom resources), admission webhook configurations last; then
//! kind, group, namespace, name.

mod argo;
mod discover;
mod error;
mod kinds;
mod kruise;
mod naming;
mod oam;
pub mod plan;
mod reader;
mod refs;
mod render;
mod revision;
mod rollout;
pub mod workflow;
mod yaml;

pub use argo::{
    ARGO_GROUP, ArgoRollout, ArgoRouting, ArgoWorkloadRef, GATEWAY_API_PLUGIN, GatewayApiRouting,
    NGINX_ANNOTATION_PREFIX, NginxRouting, read_argo_object,
};
pub use discover::{
    AppDir, AppIndex, InvalidAppName, affected_apps, app_of, belongs_to, check_app_name,
    discover_apps, is_manifest_path, unsupported_tool,
};
pub use error::{RenderError, RenderErrors};
pub use kinds::{ObjectKey, Scope, group_of, is_dns1123_label, is_dns1123_subdomain, scope_of};
pub use kruise::{
    KRUISE_ROLLOUT_GROUP, KruiseRollout, KruiseRolloutInfo, PARTITION_PERCENT_LIMIT,
    ROLLING_STYLE_ANNOTATION, SUPPORTED_WORKLOADS, TrafficRoutingRef, WorkloadRef,
    is_deployment_kind, parse_kruise_rollout_value,
};
pub use naming::{AppNaming, app_naming, names_no_application};
pub use oam::{COMPONENT_TYPES, TRAIT_TYPES, WORKLOAD_TYPE_LABEL};
pub use refs::{IndexedObject, NoRefs, ObjectIndex, RefLookup};
pub use render::{
    ApplicationInfo, ArgoRolloutInfo, ComponentInfo, Rendered, RenderedObject, SourceFile,
    SourceLocation, render_app,
};
pub use revision::{
    APP_COMPONENT_LABEL, APP_NAME_LABEL, APP_REVISION_LABEL, APP_REVISION_OBJECT_SUFFIX,
    AppRevision, COMPONENT_LABEL, ComponentRevision, ExistingAppRevision, ExistingRevision,
    FIRST_PUBLISH_VERSION, PUBLISH_VERSION_ANNOTATION, RevisionError, RevisionState,
    SPEC_HASH_ANNOTATION, app_revision_object_name, canonical_json,
    existing_app_revision_from_object, existing_revision_from_object, hex_sha256,
    next_publish_version, plan_app_revision, plan_revision, revision_number_of, spec_hash,
    write_canonical, write_canonical_object, write_json_string,
};
pub use rollout::{
    AppRolloutComponent, AppRolloutInfo, MAX_BATCHES, ROLLOUT_TEMPLATE_ANNOTATION, ROLLOUT_TRAIT,
    RolloutTrait,
};
