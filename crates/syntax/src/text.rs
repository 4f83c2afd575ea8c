//! User-controlled text shown to a human: file names, directory names, values quoted from a
//! file, messages from a remote. Written into a status message, a log line or a terminal, a raw
//! newline forges a second line and an ANSI escape (`\x1b[31m`) or a bidirectional override
//! (`U+202E`) changes what the reader sees, so every such text goes through [`escape`] first.

use std::borrow::Cow;

/// Whether `c` is shown escaped: control characters (C0 with `\n`, `\r`, `\t` and ESC, DEL,
/// and C1 with NEL), the bidirectional formatting characters (marks, embeddings, overrides,
/// isolates: the "Trojan Source" ones), the zero-width space, word joiner and invisible
/// operators, the line and paragraph separators, the byte order mark and the interlinear
/// annotation characters. Zero-width (non-)joiners (`U+200C`, `U+200D`) are kept: scripts and
/// emoji need them, and they move nothing.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// `s` with every character of [`needs_escape`] written as `str::escape_debug` writes it
/// (`\n`, `\r`, `\t`, `\0`, else `\u{1b}`); everything else, quotes and backslashes included,
/// as it is. Borrowed when nothing needs escaping.
///
/// The result holds no character of [`needs_escape`], so escaping again changes nothing:
/// a message built from escaped parts can be escaped whole once more.
///
/// ```
/// use rollgit_syntax::text::escape;
/// assert_eq!(escape("apps/web/app.yaml"), "apps/web/app.yaml");
/// assert_eq!(escape("a\nb.yaml"), "a\\nb.yaml");
/// assert_eq!(escape("\x1b[31mred.yaml"), "\\u{1b}[31mred.yaml");
/// assert_eq!(escape(&escape("a\tb")), escape("a\tb"));
/// ```
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !needs_escape(c) {
            out.push(c);
        } else if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.extend(c.escape_unicode());
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_table() {
        let rows: &[(&str, &str, &str)] = &[
            // (case, input, shown)
            ("plain path", "apps/web/app.yaml", "apps/web/app.yaml"),
            ("empty", "", ""),
            ("newline forges a line", "a\nb.yaml", "a\\nb.yaml"),
            ("carriage return", "a\rb", "a\\rb"),
            ("tab", "a\tb", "a\\tb"),
            ("nul", "a\0b", "a\\0b"),
            (
                "ansi colour",
                "\x1b[31mred\x1b[0m",
                "\\u{1b}[31mred\\u{1b}[0m",
            ),
            ("delete", "a\x7fb", "a\\u{7f}b"),
            ("c1 next line", "a\u{85}b", "a\\u{85}b"),
            ("c1 csi", "a\u{9b}31m", "a\\u{9b}31m"),
            ("right-to-left override", "a\u{202E}b", "a\\u{202e}b"),
            ("left-to-right isolate", "a\u{2066}b", "a\\u{2066}b"),
            ("right-to-left mark", "a\u{200F}b", "a\\u{200f}b"),
            ("arabic letter mark", "a\u{061C}b", "a\\u{61c}b"),
            ("line separator", "a\u{2028}b", "a\\u{2028}b"),
            ("zero-width space", "a\u{200B}b", "a\\u{200b}b"),
            ("byte order mark", "\u{FEFF}a", "\\u{feff}a"),
            ("zero-width joiner kept", "👩\u{200D}💻", "👩\u{200D}💻"),
            (
                "quotes and backslashes kept",
                "it's \"q\" \\n",
                "it's \"q\" \\n",
            ),
            ("accents kept", "café e\u{301}", "café e\u{301}"),
            ("already escaped stays", "a\\nb", "a\\nb"),
        ];
        for (case, input, shown) in rows {
            let got = escape(input);
            assert_eq!(got, *shown, "{case}");
            assert_eq!(escape(&got), got, "{case}: escaping twice");
            assert!(!got.chars().any(needs_escape), "{case}");
            assert_eq!(
                matches!(got, Cow::Borrowed(_)),
                input == shown,
                "{case}: borrowed exactly when unchanged"
            );
        }
    }
}
