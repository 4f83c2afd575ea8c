//! PR-based promotion between environments (`promotion` in the configuration): when an app's
//! stage (`envs/dev/shop`) deployed a commit, rolled it out, stayed healthy for its soak and
//! was not reverted since, rollgit replays that stage's changes on the next stage's directory
//! (`envs/staging/shop`), pushes them to a branch `rollgit/promote/<app>/<to>/<short-sha>`
//! and opens a pull request on the forge with the evidence; the merge arrives as a normal
//! commit and is deployed like any other.
//!
//! * [`core`] (pure): the state machine of one pipeline step, branch names, the pull
//!   request's title and body;
//! * [`replay`] (pure): the three-way replay of a directory's changes, `exclude` globs, and
//!   the images-only transformation;
//! * [`forge`]: the forges' REST APIs (GitHub, GitLab, Gitea/Forgejo, Bitbucket Cloud);
//! * [`run`]: the promoter task: observe (app status objects, Git, the forge) → decide →
//!   act → record the step's state in the stage's app status (`status.promotion`), so a
//!   restart neither loses nor duplicates a pull request.

pub mod core;
pub mod forge;
pub mod replay;
pub mod run;

pub use run::{PROMOTE_REQUEST_ANNOTATION, PromoteError, Promoter};
