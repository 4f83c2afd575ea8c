//! Which directories of a repository are apps, and which apps a change affects.
//!
//! * A configured root without wildcards that **directly** contains YAML (`.yaml`, `.yml`,
//!   `.json`) is one app, named after its last directory segment (`""`/`.` is the repository
//!   root, named `root`).
//! * A configured root without wildcards that contains no YAML directly is read as `<root>/*`.
//! * A root with wildcards is matched segment by segment (`*` any run of characters within a
//!   segment, `?` one character, `**` any number of segments): every matching directory that
//!   contains YAML (directly or below) is one app.
//!
//! An app's files are the YAML files under its directory, at any depth, except those under a
//! deeper app's directory ([`app_of`] gives the deepest app of a path). When two apps would
//! share a name, both are named after their whole directory (`apps/prod/web` → `apps-prod-web`).

use std::collections::{BTreeMap, BTreeSet};

/// One app: a directory of a repository.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppDir {
    /// App name (unique among the discovered apps).
    pub name: String,
    /// Repository-relative directory, no trailing `/` (`""` for the root).
    pub dir: String,
    /// Files outside `dir` that the app's last render read through `ref-objects`
    /// ([`crate::Rendered::referenced_paths`]); empty after discovery, filled by the daemon so
    /// that [`affected_apps`] sees them.
    pub referenced: Vec<String>,
}

/// Whether a path names a file the renderer reads.
pub fn is_manifest_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json")
}

fn normalize_dir(dir: &str) -> String {
    let d = dir.trim_matches('/');
    let d = d.strip_prefix("./").unwrap_or(d);
    if d == "." {
        String::new()
    } else {
        d.to_owned()
    }
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

fn is_under(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

fn has_wildcard(s: &str) -> bool {
    s.contains('*') || s.contains('?')
}

/// Matches one segment against a pattern with `*` and `?`.
fn segment_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

fn path_matches(pattern: &[&str], segments: &[&str]) -> bool {
    match pattern.split_first() {
        None => segments.is_empty(),
        Some((&"**", rest)) => (0..=segments.len()).any(|i| path_matches(rest, &segments[i..])),
        Some((first, rest)) => match segments.split_first() {
            Some((seg, seg_rest)) => {
                segment_matches(first.as_bytes(), seg.as_bytes()) && path_matches(rest, seg_rest)
            }
            None => false,
        },
    }
}

/// Finds the apps of a repository tree (see the module docs).
///
/// `paths` are all file paths of the tree; `roots` the configured app roots. The result is
/// sorted by directory.
pub fn discover_apps(paths: &[String], roots: &[String]) -> Vec<AppDir> {
    let manifests: Vec<&str> = paths
        .iter()
        .map(String::as_str)
        .filter(|p| is_manifest_path(p))
        .collect();
    // Every directory holding a manifest, and all their ancestors.
    let mut direct: BTreeSet<&str> = BTreeSet::new();
    let mut any_below: BTreeSet<&str> = BTreeSet::new();
    for p in &manifests {
        let mut dir = parent_of(p);
        direct.insert(dir);
        loop {
            any_below.insert(dir);
            if dir.is_empty() {
                break;
            }
            dir = parent_of(dir);
        }
    }
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    for root in roots {
        let root = normalize_dir(root);
        let pattern = if has_wildcard(&root) {
            root
        } else if direct.contains(root.as_str()) {
            dirs.insert(root);
            continue;
        } else if root.is_empty() {
            "*".to_owned()
        } else {
            format!("{root}/*")
        };
        let pat: Vec<&str> = pattern.split('/').collect();
        for dir in &any_below {
            let segments: Vec<&str> = if dir.is_empty() {
                Vec::new()
            } else {
                dir.split('/').collect()
            };
            if path_matches(&pat, &segments) {
                dirs.insert((*dir).to_owned());
            }
        }
    }
    name_apps(dirs)
}

fn name_apps(dirs: BTreeSet<String>) -> Vec<AppDir> {
    let short = |d: &str| -> String {
        if d.is_empty() {
            "root".to_owned()
        } else {
            d.rsplit('/').next().unwrap_or(d).to_owned()
        }
    };
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for d in &dirs {
        *counts.entry(short(d)).or_default() += 1;
    }
    dirs.into_iter()
        .map(|dir| {
            let s = short(&dir);
            let name = if counts.get(&s).copied().unwrap_or(0) > 1 {
                dir.replace('/', "-")
            } else {
                s
            };
            AppDir {
                name,
                dir,
                referenced: Vec::new(),
            }
        })
        .collect()
}

/// The deepest app whose directory holds `path`.
pub fn app_of<'a>(path: &str, apps: &'a [AppDir]) -> Option<&'a AppDir> {
    apps.iter()
        .filter(|a| is_under(path, &a.dir))
        .max_by_key(|a| a.dir.len())
}

/// Whether `path` is one of `app`'s files (under its directory and not under a deeper app).
pub fn belongs_to(path: &str, app: &AppDir, apps: &[AppDir]) -> bool {
    is_manifest_path(path) && app_of(path, apps).is_some_and(|a| a.dir == app.dir)
}

/// The names of the apps a set of changed paths affects, sorted: a changed manifest under an
/// app's directory (its deepest app), or a file an app referenced through `ref-objects`
/// ([`AppDir::referenced`]). Changes to files the renderer does not read affect nothing.
pub fn affected_apps(changed: &[String], apps: &[AppDir]) -> Vec<String> {
    let mut out: BTreeSet<String> = BTreeSet::new();
    for path in changed {
        let path = path.trim_start_matches('/');
        if is_manifest_path(path)
            && let Some(app) = app_of(path, apps)
        {
            out.insert(app.name.clone());
        }
        for app in apps {
            if app.referenced.iter().any(|r| r == path) {
                out.insert(app.name.clone());
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_globs() {
        let cases: &[(&str, &str, &str, bool)] = &[
            ("star all", "*", "web", true),
            ("star prefix", "web-*", "web-api", true),
            ("star prefix miss", "web-*", "api", false),
            ("question", "w?b", "web", true),
            ("literal", "web", "web", true),
            ("literal miss", "web", "webs", false),
        ];
        for (case, p, t, ok) in cases {
            assert_eq!(segment_matches(p.as_bytes(), t.as_bytes()), *ok, "{case}");
        }
    }
}
