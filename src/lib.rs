//! rollgit: a GitOps reconciler. Git is the source of truth: rollgit follows repositories,
//! renders what it finds, applies it with server-side apply, corrects drift and records status
//! in the cluster. The pipeline stages are modules: `source` and `render` are crates
//! (`rollgit-source`, `rollgit-render`); [`apply`] applies and records status; [`daemon`] runs
//! the loop; [`api`] serves webhooks and metrics.

pub mod api;
pub mod apply;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod diff;
pub mod history;
pub mod kubeclient;
pub mod metrics;
pub mod plan;
pub mod record;
pub mod rollout;
pub mod rollout_cli;
