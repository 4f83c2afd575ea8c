//! Timestamps as the apiserver writes them (a leaf module: everything may use it).

use std::time::SystemTime;

/// The current time as the apiserver writes timestamps (RFC 3339, whole seconds, UTC).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}
