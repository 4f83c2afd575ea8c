//! Wildcard patterns (globset's syntax: `*`, `?`, `[a-z]`, `{a,b}`, and `**` for any number of
//! path segments).

/// A pattern that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pattern {pattern:?}: {message}")]
pub struct GlobError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it.
    pub message: String,
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Glob {
    matcher: globset::GlobMatcher,
}

impl Glob {
    /// A pattern over `/`-separated paths: `*` and `?` stay within one segment, `**` spans
    /// segments (`apps/*` matches `apps/web`, not `apps/web/v2`; `envs/**/app` matches
    /// `envs/app` and `envs/eu/prod/app`).
    ///
    /// ```
    /// let g = rollgit_syntax::Glob::path("apps/*").unwrap();
    /// assert!(g.is_match("apps/web"));
    /// assert!(!g.is_match("apps/web/v2"));
    /// ```
    pub fn path(pattern: &str) -> Result<Self, GlobError> {
        Self::build(pattern, true)
    }

    /// A pattern over plain text: `*` matches any run of characters (`*:bad` matches
    /// `registry.example.com/web:bad`).
    ///
    /// ```
    /// let g = rollgit_syntax::Glob::text("*:bad").unwrap();
    /// assert!(g.is_match("registry.example.com/web:bad"));
    /// assert!(!g.is_match("web:good"));
    /// ```
    pub fn text(pattern: &str) -> Result<Self, GlobError> {
        Self::build(pattern, false)
    }

    fn build(pattern: &str, literal_separator: bool) -> Result<Self, GlobError> {
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(literal_separator)
            .backslash_escape(true)
            .build()
            .map_err(|e| GlobError {
                pattern: pattern.to_string(),
                message: e.kind().to_string(),
            })?;
        Ok(Self {
            matcher: glob.compile_matcher(),
        })
    }

    /// Whether the whole of `s` matches.
    pub fn is_match(&self, s: &str) -> bool {
        self.matcher.is_match(s)
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        self.matcher.glob().glob()
    }
}

/// Whether `s` has a wildcard character (`*`, `?`, `[`, `{`).
pub fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_globs_table() {
        let rows: &[(&str, &str, bool)] = &[
            ("apps/*", "apps/web", true),
            ("apps/*", "apps/web/v2", false),
            ("apps/*", "apps", false),
            ("apps/w?b", "apps/web", true),
            ("envs/**/app", "envs/app", true),
            ("envs/**/app", "envs/eu/prod/app", true),
            ("**", "a/b/c", true),
            ("apps/{web,api}", "apps/api", true),
            ("apps/[a-c]*", "apps/billing", true),
            ("apps/[a-c]*", "apps/web", false),
        ];
        for (p, s, want) in rows {
            let g = Glob::path(p).expect("compiles");
            assert_eq!(g.is_match(s), *want, "{p} ~ {s}");
        }
    }

    #[test]
    fn text_globs_table() {
        let rows: &[(&str, &str, bool)] = &[
            ("*:bad", "r.example.com/web:bad", true),
            ("*:bad", "web:bad2", false),
            ("web:?", "web:1", true),
            ("*", "", true),
        ];
        for (p, s, want) in rows {
            let g = Glob::text(p).expect("compiles");
            assert_eq!(g.is_match(s), *want, "{p} ~ {s}");
        }
    }

    #[test]
    fn a_bad_pattern_names_itself() {
        let e = Glob::path("apps/[web").expect_err("unclosed class");
        assert!(
            e.to_string().starts_with("invalid pattern \"apps/[web\""),
            "{e}"
        );
    }
}
