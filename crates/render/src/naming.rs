//! What an app is named after: the KubeVela Application it holds, else its directory.
//!
//! An app whose files hold exactly one KubeVela `Application` (`apiVersion: core.oam.dev/*`,
//! `kind: Application`) is named after the Application's `metadata.name`, wherever the file
//! is in the repository (the repository root too), so that `kubectl get app NAME` finds its
//! status object as KubeVela's own commands do. Plain-YAML apps, and apps holding several
//! Applications, keep their directory's name ([`crate::discover_apps`]).
//!
//! The name is read from the files without rendering them; a file that does not parse leaves
//! the name undecided ([`AppNaming::Undecided`]): the app keeps the name it had, so a typo
//! never renames (and so prunes) an app. Whether the name is valid is checked by the render
//! ([`crate::render_app`], at the line of `metadata.name`).

use crate::discover::is_manifest_path;
use crate::render::{SourceFile, SourceLocation};
use crate::yaml::{Node, parse_documents};

/// What an app's files say its name is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppNaming {
    /// Exactly one KubeVela Application: the app is named after it.
    Application {
        /// Its `metadata.name`.
        name: String,
        /// Its `metadata.namespace`, when it names one.
        namespace: Option<String>,
        /// Where `metadata.name` is written.
        at: SourceLocation,
    },
    /// No KubeVela Application, or several: the app is named after its directory.
    Directory,
    /// A file does not parse, or an Application has no string `metadata.name`: the render
    /// reports why; the app keeps the name it had.
    Undecided,
}

/// Reads what `files` (an app's files) name the app after (see the module docs).
///
/// ```
/// use rollgit_render::{AppNaming, SourceFile, app_naming};
/// let app = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: web\n";
/// match app_naming(&[SourceFile::new("app.yaml", app)]) {
///     AppNaming::Application { name, at, .. } => assert_eq!((name.as_str(), at.line), ("web", 4)),
///     other => panic!("{other:?}"),
/// }
/// let plain = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n";
/// assert_eq!(app_naming(&[SourceFile::new("cm.yaml", plain)]), AppNaming::Directory);
/// ```
pub fn app_naming(files: &[SourceFile]) -> AppNaming {
    let mut found: Vec<AppNaming> = Vec::new();
    for f in files.iter().filter(|f| is_manifest_path(&f.path)) {
        let Ok(docs) = parse_documents(&f.content) else {
            return AppNaming::Undecided;
        };
        for doc in &docs {
            let api_version = doc.get("apiVersion").and_then(|v| v.as_str());
            let kind = doc.get("kind").and_then(|v| v.as_str());
            let is_application = kind == Some("Application")
                && api_version.is_some_and(|v| v.split('/').next() == Some("core.oam.dev"));
            if !is_application {
                continue;
            }
            let meta = doc.get("metadata");
            let Some(name) = meta.and_then(|m| m.get("name")) else {
                return AppNaming::Undecided;
            };
            let Node::Str(text) = &name.node else {
                return AppNaming::Undecided;
            };
            let namespace = meta
                .and_then(|m| m.get("namespace"))
                .and_then(|n| n.as_str())
                .filter(|n| !n.is_empty())
                .map(str::to_owned);
            found.push(AppNaming::Application {
                name: text.clone(),
                namespace,
                at: SourceLocation {
                    path: f.path.clone(),
                    line: name.line,
                },
            });
        }
    }
    if found.len() == 1 {
        found.pop().unwrap_or(AppNaming::Directory)
    } else {
        AppNaming::Directory
    }
}

/// Whether no manifest among `files` can hold a KubeVela Application, told from their bytes
/// without parsing them. Such an Application's `apiVersion` is `core.oam.dev/...`, so its file
/// holds the text `oam`, unless the text is written another way: a YAML or JSON escape that
/// makes a letter (`\x6f`, `\u006f`, `\U0000006f`) or joins two lines (a backslash before a
/// line break), or a `!!binary` scalar. A file with none of `oam`, `binary`, or a backslash
/// before `x`, `u`, `U` or a line break cannot hold one (the other escapes make control
/// characters, quotes, slashes and spaces). Then [`app_naming`] gives [`AppNaming::Directory`],
/// or [`AppNaming::Undecided`] when a file does not parse; a caller for whom both mean the
/// directory's name (an app seen for the first time, or named after its directory before)
/// need not parse the files to name the app, and the render parses them once.
pub fn names_no_application(files: &[SourceFile]) -> bool {
    files
        .iter()
        .filter(|f| is_manifest_path(&f.path))
        .all(|f| !may_name_an_application(&f.content))
}

fn may_name_an_application(content: &[u8]) -> bool {
    let has = |needle: &[u8]| content.windows(needle.len()).any(|w| w == needle);
    has(b"oam")
        || has(b"binary")
        || content
            .windows(2)
            .any(|w| w[0] == b'\\' && matches!(w[1], b'x' | b'u' | b'U' | b'\n' | b'\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_without_oam_name_no_application() {
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";
        let cases: Vec<(&str, Vec<SourceFile>, bool)> = vec![
            ("no file", vec![], true),
            ("plain YAML", vec![SourceFile::new("a/cm.yaml", cm)], true),
            (
                "plain YAML that does not parse",
                vec![SourceFile::new("a/cm.yaml", "a: [\n")],
                true,
            ),
            (
                "a KubeVela Application",
                vec![SourceFile::new("app.yaml", app("web"))],
                false,
            ),
            (
                "an apiVersion written with an escape",
                vec![SourceFile::new(
                    "app.yaml",
                    "apiVersion: \"core.o\\x61m.dev/v1beta1\"\nkind: Application\nmetadata:\n  name: web\n",
                )],
                false,
            ),
            (
                "JSON with a unicode escape",
                vec![SourceFile::new(
                    "app.json",
                    r#"{"apiVersion": "core.\u006fam.dev/v1beta1", "kind": "Application", "metadata": {"name": "web"}}"#,
                )],
                false,
            ),
            (
                "JSON with escaped quotes",
                vec![SourceFile::new(
                    "cm.json",
                    r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"c.json": "{\"a\": 1}\n"}}"#,
                )],
                true,
            ),
            (
                "a line joined by an escaped line break",
                vec![SourceFile::new(
                    "app.yaml",
                    "apiVersion: \"core.o\\\n  am.dev/v1beta1\"\nkind: Application\nmetadata:\n  name: web\n",
                )],
                false,
            ),
            (
                "a binary scalar",
                vec![SourceFile::new(
                    "app.yaml",
                    "apiVersion: !!binary Y29yZS5vYW0uZGV2L3YxYmV0YTE=\nkind: Application\nmetadata:\n  name: web\n",
                )],
                false,
            ),
            (
                "oam anywhere (a ConfigMap's data)",
                vec![SourceFile::new(
                    "cm.yaml",
                    format!("{cm}data:\n  k: boam\n"),
                )],
                false,
            ),
            (
                "a file the renderer does not read",
                vec![SourceFile::new("README.md", app("web"))],
                true,
            ),
        ];
        for (case, files, want) in cases {
            assert_eq!(names_no_application(&files), want, "{case}");
            if want {
                assert!(
                    matches!(
                        app_naming(&files),
                        AppNaming::Directory | AppNaming::Undecided
                    ),
                    "{case}: app_naming agrees"
                );
            }
        }
        // The escaped forms are Applications indeed: the check must not skip them.
        let escaped =
            "apiVersion: \"core.o\\x61m.dev/v1beta1\"\nkind: Application\nmetadata:\n  name: web\n";
        let joined = "apiVersion: \"core.o\\\n  am.dev/v1beta1\"\nkind: Application\nmetadata:\n  name: web\n";
        for text in [escaped, joined] {
            assert!(
                matches!(
                    app_naming(&[SourceFile::new("app.yaml", text)]),
                    AppNaming::Application { .. }
                ),
                "{text}"
            );
        }
    }

    fn app(name: &str) -> String {
        format!("apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {name}\n")
    }

    #[test]
    fn names() {
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";
        let named = |name: &str, path: &str, line: u32| AppNaming::Application {
            name: name.into(),
            namespace: None,
            at: SourceLocation {
                path: path.into(),
                line,
            },
        };
        let cases: Vec<(&str, Vec<SourceFile>, AppNaming)> = vec![
            ("no file", vec![], AppNaming::Directory),
            (
                "plain YAML",
                vec![SourceFile::new("a/cm.yaml", cm)],
                AppNaming::Directory,
            ),
            (
                "one Application",
                vec![SourceFile::new("app.yaml", app("web"))],
                named("web", "app.yaml", 4),
            ),
            (
                "one Application beside plain YAML, in a later document",
                vec![
                    SourceFile::new("a/cm.yaml", cm),
                    SourceFile::new("a/x.yaml", format!("{cm}---\n{}", app("web"))),
                ],
                named("web", "a/x.yaml", 9),
            ),
            (
                "two Applications",
                vec![
                    SourceFile::new("a.yaml", app("one")),
                    SourceFile::new("b.yaml", app("two")),
                ],
                AppNaming::Directory,
            ),
            (
                "an Application of another group",
                vec![SourceFile::new(
                    "a.yaml",
                    "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: x\n",
                )],
                AppNaming::Directory,
            ),
            (
                "a file that does not parse",
                vec![
                    SourceFile::new("a.yaml", app("web")),
                    SourceFile::new("b.yaml", "a: [\n"),
                ],
                AppNaming::Undecided,
            ),
            (
                "an Application without a name",
                vec![SourceFile::new(
                    "a.yaml",
                    "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {}\n",
                )],
                AppNaming::Undecided,
            ),
            (
                "a file the renderer does not read",
                vec![SourceFile::new("README.md", app("web"))],
                AppNaming::Directory,
            ),
        ];
        for (case, files, want) in cases {
            assert_eq!(app_naming(&files), want, "{case}");
        }
        let ns = format!("{}  namespace: demo\n", app("demo"));
        match app_naming(&[SourceFile::new("app.yaml", ns)]) {
            AppNaming::Application { namespace, .. } => {
                assert_eq!(namespace.as_deref(), Some("demo"));
            }
            other => panic!("{other:?}"),
        }
    }
}
