//! The small syntaxes that every rollgit crate reads, each written once (pure):
//!
//! * [`names`]: Kubernetes object names and label keys/values (RFC 1123 labels and
//!   subdomains, RFC 1035 labels, qualified names), as kube-apiserver validates them;
//! * [`duration`]: human durations (`30s`, `1h30m`, `500ms`: configuration, flags,
//!   annotations) and Go `time.ParseDuration` (`1.5h`, `300ms`: what KubeVela, Argo Rollouts
//!   and Kruise accept in their specs);
//! * [`glob`]: wildcard patterns over paths (`apps/*`, `envs/**/app`) and over plain text
//!   (`*:bad` over a container image);
//! * [`text`]: user-controlled text (file names, quoted values, remote messages) escaped before
//!   it is shown, so that no newline, ANSI escape or bidirectional override reaches a status
//!   message, a log line or a terminal raw.

pub mod duration;
pub mod glob;
pub mod names;
pub mod text;

pub use duration::{parse_duration, parse_go_duration};
pub use glob::{Glob, GlobError};
pub use names::{
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_label_value, is_qualified_name,
};
pub use text::escape;
