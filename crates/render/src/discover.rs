//! Which directories of a repository are apps, and which apps a change affects.
//!
//! * A configured root without wildcards that **directly** contains YAML (`.yaml`, `.yml`,
//!   `.json`) is one app, named after its last directory segment (`""`/`.` is the repository
//!   root, named `root`).
//! * A configured root without wildcards that contains no YAML directly is read as `<root>/*`.
//! * A root with wildcards is a [`Glob::path`] pattern (`*` any run of characters within a
//!   segment, `?` one character, `**` any number of segments, also none; globset's `[a-z]`
//!   and `{a,b}` work too): every matching directory that contains YAML (directly or below) is
//!   one app. Only a pattern of `**` segments matches the repository root; a pattern that
//!   does not compile (`apps/[web`) matches nothing.
//!
//! An app's files are the YAML files under its directory, at any depth, except those under a
//! deeper app's directory ([`app_of`] gives the deepest app of a path). When two apps would
//! share a name, both are named after their whole directory (`apps/prod/web` → `apps-prod-web`).
//!
//! The names given here are directories' names; an app holding one KubeVela Application is
//! then named after it when its files are read ([`crate::app_naming`], applied by the
//! daemon's plan stage, which also rejects a commit where two apps would share a name).
//!
//! An app's name is the value of the `rollgit.dev/app` label on everything it applies and the
//! name of its status object, so it must be both a label value and an RFC 1123 subdomain: at most
//! 63 lower-case letters, digits, `-` or `.`, starting and ending with a letter or digit
//! ([`check_app_name`]). Discovery does not rename a directory that gives another name (`Web`,
//! `my_app`, a name holding a newline or an ANSI escape): the app is discovered under its
//! directory's name as it is, and [`crate::render_app`] rejects it whole with an error that
//! names it escaped, so nothing of it is applied and nothing is silently skipped. A rename
//! could collide with another app and take over its objects.

use std::collections::{BTreeMap, BTreeSet};

use rollgit_syntax::Glob;
use rollgit_syntax::glob::has_wildcard;
use rollgit_syntax::{is_dns1123_subdomain, is_label_value};

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
    /// The namespace of the app's status object when it is not the repository's: the
    /// namespace of the KubeVela Application the app is named after
    /// ([`crate::app_naming`]). `None` after discovery; set by whoever reads the app's files.
    pub namespace: Option<String>,
}

/// A name that cannot name an app (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "app name {name:?} (the name of its directory) is not valid: an app's name is the value of its rollgit.dev/app label and the name of its status object, so it must be at most 63 lower-case letters, digits, '-' or '.', starting and ending with a letter or digit; rename the directory"
)]
pub struct InvalidAppName {
    /// The name as discovered.
    pub name: String,
}

/// Whether `name` can name an app: a label value and an RFC 1123 subdomain.
///
/// ```
/// use rollgit_render::check_app_name;
/// assert!(check_app_name("web").is_ok());
/// assert!(check_app_name("apps-prod-web.v2").is_ok());
/// assert!(check_app_name("Web").is_err());
/// assert!(check_app_name("a\nb").is_err());
/// ```
pub fn check_app_name(name: &str) -> Result<(), InvalidAppName> {
    if is_label_value(name) && is_dns1123_subdomain(name) {
        Ok(())
    } else {
        Err(InvalidAppName {
            name: name.to_owned(),
        })
    }
}

/// Whether a path names a file the renderer reads (YAML and JSON files, and Kustomize's
/// extension-less `Kustomization`, read only to be refused: see [`unsupported_tool`]).
pub fn is_manifest_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".yaml")
        || lower.ends_with(".yml")
        || lower.ends_with(".json")
        || path.rsplit('/').next() == Some("Kustomization")
}

/// The tool a file belongs to when rollgit does not render that tool's input yet: `Kustomize`
/// for `kustomization.yaml`, `kustomization.yml` and `Kustomization`, `Helm` for a chart's
/// `Chart.yaml`. An app holding one is rejected whole with a message saying so, instead of
/// being read as plain YAML (or skipped).
///
/// ```
/// use rollgit_render::unsupported_tool;
/// assert_eq!(unsupported_tool("apps/web/kustomization.yaml"), Some("Kustomize"));
/// assert_eq!(unsupported_tool("Kustomization"), Some("Kustomize"));
/// assert_eq!(unsupported_tool("charts/web/Chart.yaml"), Some("Helm"));
/// assert_eq!(unsupported_tool("apps/web/deployment.yaml"), None);
/// ```
pub fn unsupported_tool(path: &str) -> Option<&'static str> {
    match path.rsplit('/').next()? {
        "kustomization.yaml" | "kustomization.yml" | "Kustomization" => Some("Kustomize"),
        "Chart.yaml" => Some("Helm"),
        _ => None,
    }
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

/// A configured root with wildcards, compiled with [`Glob::path`] (`*` and `?` within a
/// segment, `**` across segments, and globset's `[a-z]` and `{a,b}`).
struct RootPattern {
    /// The pattern, and the same without each trailing `/**`: `**` also matches no segment
    /// at the end (`apps/**` matches `apps`), as it does elsewhere in a pattern.
    globs: Vec<Glob>,
    /// Every segment is `**`: the only patterns that match the repository root.
    matches_root: bool,
}

impl RootPattern {
    /// `None` for a pattern that does not compile (`apps/[web`): it matches no directory.
    fn new(pattern: &str) -> Option<Self> {
        let mut globs = vec![Glob::path(pattern).ok()?];
        let mut rest = pattern;
        while let Some(prefix) = rest.strip_suffix("/**") {
            globs.push(Glob::path(prefix).ok()?);
            rest = prefix;
        }
        Some(RootPattern {
            globs,
            matches_root: pattern.split('/').all(|s| s == "**"),
        })
    }

    /// Whether the directory `dir` (`""` for the root) matches.
    fn matches(&self, dir: &str) -> bool {
        if dir.is_empty() {
            return self.matches_root;
        }
        self.globs.iter().any(|g| g.is_match(dir))
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
        let Some(pattern) = RootPattern::new(&pattern) else {
            continue;
        };
        for dir in &any_below {
            if pattern.matches(dir) {
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
                namespace: None,
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

/// The apps of a repository by directory, to find a path's app in the time of its depth
/// instead of the number of apps ([`app_of`] and [`belongs_to`] look at every app).
pub struct AppIndex<'a> {
    by_dir: std::collections::HashMap<&'a str, &'a AppDir>,
}

impl<'a> AppIndex<'a> {
    /// The index of `apps`.
    pub fn new(apps: &'a [AppDir]) -> Self {
        Self {
            by_dir: apps.iter().map(|a| (a.dir.as_str(), a)).collect(),
        }
    }

    /// [`app_of`]: the deepest app whose directory holds `path`.
    pub fn app_of(&self, path: &str) -> Option<&'a AppDir> {
        let mut end = path.len();
        while let Some(i) = path[..end].rfind('/') {
            if let Some(a) = self.by_dir.get(&path[..i]) {
                return Some(a);
            }
            end = i;
        }
        self.by_dir.get("").copied()
    }

    /// [`belongs_to`]: whether `path` is one of `app`'s files.
    pub fn belongs_to(&self, path: &str, app: &AppDir) -> bool {
        is_manifest_path(path) && self.app_of(path).is_some_and(|a| a.dir == app.dir)
    }
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
    fn root_patterns() {
        let cases: &[(&str, &str, &str, bool)] = &[
            ("star all", "*", "web", true),
            ("star does not cross a segment", "*", "apps/web", false),
            ("star is not the root", "*", "", false),
            ("star prefix", "apps/web-*", "apps/web-api", true),
            ("star prefix miss", "apps/web-*", "apps/api", false),
            ("question", "apps/w?b", "apps/web", true),
            ("literal", "apps/web", "apps/web", true),
            ("literal miss", "apps/web", "apps/webs", false),
            (
                "double star in the middle, no segment",
                "envs/**/web",
                "envs/web",
                true,
            ),
            (
                "double star in the middle, two segments",
                "envs/**/web",
                "envs/eu/prod/web",
                true,
            ),
            ("trailing double star, no segment", "apps/**", "apps", true),
            (
                "trailing double star, two segments",
                "apps/**",
                "apps/web/v2",
                true,
            ),
            ("double star is the root too", "**", "", true),
            ("leading double star", "**/web", "web", true),
            ("class", "apps/[a-c]*", "apps/billing", true),
            ("alternatives", "apps/{web,api}", "apps/api", true),
        ];
        for (case, p, dir, ok) in cases {
            let pattern = RootPattern::new(p).expect("compiles");
            assert_eq!(pattern.matches(dir), *ok, "{case}");
        }
        assert!(RootPattern::new("apps/[web").is_none(), "an unclosed class");
    }
}
