//! Kubernetes names, as `k8s.io/apimachinery/pkg/util/validation` checks them.

/// Whether `s` is an RFC 1123 label: at most 63 lower-case alphanumerics or `-`, starting
/// and ending alphanumeric (Namespace and Service names, label-value-like names).
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Whether `s` is an RFC 1123 subdomain: dot-separated parts of lower-case alphanumerics or
/// `-`, each starting and ending alphanumeric, at most 253 in all (the names of most kinds).
/// As in Kubernetes, a part may be longer than 63.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// Whether `s` is an RFC 1035 label: an RFC 1123 label that starts with a letter.
pub fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

fn is_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

/// Whether `s` is a qualified name (a label or annotation key): an optional RFC 1123
/// subdomain prefix and `/`, then a name of at most 63 alphanumerics, `-`, `_` or `.`,
/// starting and ending alphanumeric.
pub fn is_qualified_name(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => is_dns1123_subdomain(prefix) && is_name_part(name),
        None => is_name_part(s),
    }
}

/// Whether `s` is a label value: empty, or at most 63 alphanumerics, `-`, `_` or `.`,
/// starting and ending alphanumeric.
pub fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_name_part(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_table() {
        let long = "a".repeat(64);
        let rows: &[(&str, &str, [bool; 5])] = &[
            // name, case, [label, subdomain, 1035, qualified, label value]
            ("simple", "web", [true, true, true, true, true]),
            ("digit first", "1web", [true, true, false, true, true]),
            ("dots", "a.b", [false, true, false, true, true]),
            ("upper case", "Web", [false, false, false, true, true]),
            ("leading dash", "-web", [false, false, false, false, false]),
            ("trailing dash", "web-", [false, false, false, false, false]),
            ("underscore", "a_b", [false, false, false, true, true]),
            ("empty", "", [false, false, false, false, true]),
            ("64 chars", &long, [false, true, false, false, false]),
            (
                "prefixed key",
                "app.oam.dev/name",
                [false, false, false, true, false],
            ),
            ("bad prefix", "App/x", [false, false, false, false, false]),
            (
                "empty name part",
                "rollgit.dev/",
                [false, false, false, false, false],
            ),
            ("slash only", "/", [false, false, false, false, false]),
        ];
        for (case, s, want) in rows {
            let got = [
                is_dns1123_label(s),
                is_dns1123_subdomain(s),
                is_dns1035_label(s),
                is_qualified_name(s),
                is_label_value(s),
            ];
            assert_eq!(&got, want, "{case}: {s:?}");
        }
    }
}
