//! The bump file: the revisions and publishVersion rollgit decided for an app, written back to
//! Git (`<app>/.rollgit-revisions`) when the repository asks for it (pure).

use std::collections::BTreeMap;

/// The file, in an app's directory, where rollgit writes back the revisions it decided (not a
/// manifest: the renderer never reads it).
pub const BUMP_FILE: &str = ".rollgit-revisions";

/// The path of the bump file of the app in `dir`.
pub fn bump_path(dir: &str) -> String {
    if dir.is_empty() {
        BUMP_FILE.to_string()
    } else {
        format!("{}/{BUMP_FILE}", dir.trim_end_matches('/'))
    }
}

/// Whether a render decided something new that the bump file should record.
pub fn has_bumps(r: &rollgit_render::Rendered) -> bool {
    r.publish_version_changed
        || r.revisions.iter().any(|v| v.is_new)
        || r.app_revisions.iter().any(|v| v.is_new)
}

/// The bump file's content for a render: the revisions and publishVersion in effect, sorted,
/// so the same decisions give the same bytes (and an unchanged render, no commit).
pub fn bump_file(r: &rollgit_render::Rendered) -> String {
    let mut out = String::from(
        "# Written by rollgit: the revisions it decided for this app, one commit per change.\n# `git log -p` on this file is the app's revision history. Do not edit.\n",
    );
    out.push_str(&format!("publishVersion: {}\n", r.publish_version));
    let components: BTreeMap<&str, &str> = r
        .revisions
        .iter()
        .map(|v| (v.component.as_str(), v.name.as_str()))
        .collect();
    if !components.is_empty() {
        out.push_str("components:\n");
        for (c, v) in components {
            out.push_str(&format!("  {c}: {v}\n"));
        }
    }
    let apps: BTreeMap<&str, &str> = r
        .app_revisions
        .iter()
        .map(|v| (v.application.as_str(), v.name.as_str()))
        .collect();
    if !apps.is_empty() {
        out.push_str("applications:\n");
        for (a, v) in apps {
            out.push_str(&format!("  {a}: {v}\n"));
        }
    }
    out
}
