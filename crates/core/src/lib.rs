//! rollgit's pure rollout core: the exact replica arithmetic and state machines of the
//! three rollout systems whose formats rollgit accepts (KubeVela, Argo Rollouts,
//! OpenKruise Rollout), and the per-step plans `rollgit plan` shows, computed from typed specs.
//!
//! Nothing here does I/O, reads a clock or uses randomness: where time matters, `now`
//! is an argument. Nothing here parses YAML or prints: specs are read by `rollgit-render`.
//! See `ROLLOUT-SEMANTICS.md` for the rules each module implements.

pub mod argo;
pub mod argo_exec;
pub mod batch;
pub mod intstr;
pub mod kruise;
pub mod kruise_gateway;
pub mod kruise_run;
pub mod kubevela;
pub mod plan;
pub mod workflow;

pub use plan::{Flavor, Pause, Plan, PlanStep};
