//! Render errors: every one is `path:line: message`.

use std::fmt;

/// One problem in one file of an app, at a line.
///
/// `Display` is exactly `path:line: message`, as shown in the app's status and the log, with
/// the control characters of the path and the message escaped ([`rollgit_syntax::escape`]): a
/// file whose name holds a newline shows as `a\nb.yaml:1: ...` (a backslash and an `n`), never
/// as two lines. The fields hold the text raw.
///
/// ```
/// # use rollgit_render::{render_app, NoRefs, RevisionState, SourceFile};
/// let files = [SourceFile::new("apps/a\n\x1b[31m.yaml", "kind: [")];
/// let e = render_app("a", "default", &files, &NoRefs, &RevisionState::default()).unwrap_err();
/// assert!(e.to_string().starts_with("apps/a\\n\\u{1b}[31m.yaml:1: invalid YAML"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error, serde::Serialize)]
#[error(
    "{}:{line}: {}",
    rollgit_syntax::escape(path),
    rollgit_syntax::escape(message)
)]
pub struct RenderError {
    /// Repository-relative path of the file.
    pub path: String,
    /// 1-based line of the document, field or component that is wrong.
    pub line: u32,
    /// The offending field as a dotted path (`spec.components[0].properties.image`), if any.
    pub field: Option<String>,
    /// What is wrong, without the location.
    pub message: String,
}

impl RenderError {
    pub(crate) fn new(path: &str, line: u32, message: impl Into<String>) -> Self {
        RenderError {
            path: path.to_owned(),
            line: line.max(1),
            field: None,
            message: message.into(),
        }
    }

    pub(crate) fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

/// Every error found in an app. A render with any error is rejected whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RenderErrors(pub Vec<RenderError>);

impl fmt::Display for RenderErrors {
    /// One `path:line: message` per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl RenderErrors {
    /// The errors as `path:line: message` strings.
    pub fn lines(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}
