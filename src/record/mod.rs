//! The **record** stage: what rollgit knows, kept where it survives a restart.
//!
//! * [`status`]: each app's `applications.rollgit.dev` status object (phase, health, commits,
//!   errors, inventory);
//! * [`revert`]: the one revert that returns an app's directory to an earlier commit's state
//!   as one commit, pushed;
//! * [`rollback`]: every rollback the rollout stage makes, written to Git through that revert
//!   (the rollout stage's `RollbackHook`);
//! * [`bumps`]: the revisions rollgit decided, committed back to Git (opt-in);
//! * [`history`]: `rollgit history` and `rollgit rollback`: an app's commits next to what the
//!   cluster did with each, and a manual rollback.

pub mod bumps;
pub mod history;
pub mod revert;
pub mod rollback;
pub mod status;

pub use status::{AppStatus, Recorded, StatusError};
