//! Durations: human ones for rollgit's own configuration, flags and annotations, and Go's
//! `time.ParseDuration` for what the upstream formats (KubeVela, Argo Rollouts, Kruise) accept.

use std::time::Duration;

/// A human duration: `30s`, `5m`, `1h30m`, `500ms`, `2days` (humantime's syntax). The error
/// says what was given: `invalid duration "soon": ...`.
///
/// ```
/// use rollgit_syntax::parse_duration;
/// use std::time::Duration;
/// assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert!(parse_duration("soon").unwrap_err().starts_with("invalid duration \"soon\""));
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// Go `time.ParseDuration`, returning nanoseconds. Units: ns, us, µs, μs, ms, s, m, h.
///
/// ```
/// use rollgit_syntax::parse_go_duration;
/// assert_eq!(parse_go_duration("1h30m"), Some(5_400_000_000_000));
/// assert_eq!(parse_go_duration("1.5h"), Some(5_400_000_000_000));
/// assert_eq!(parse_go_duration("1d"), None);
/// assert_eq!(parse_go_duration("10"), None);
/// ```
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let mut rest = s;
    let mut neg = false;
    if let Some(r) = rest.strip_prefix('-') {
        neg = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        // integer part
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_digits = &rest[..int_len];
        rest = &rest[int_len..];
        let mut v: u64 = 0;
        for b in int_digits.bytes() {
            v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            if v > 1 << 63 {
                return None;
            }
        }
        let pre = int_len > 0;
        // fraction
        let mut f: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            post = frac_len > 0;
            let mut overflow = false;
            for b in rest[..frac_len].bytes() {
                if overflow {
                    continue;
                }
                match f
                    .checked_mul(10)
                    .and_then(|x| x.checked_add(u64::from(b - b'0')))
                {
                    Some(nf) if nf <= 1 << 63 => {
                        f = nf;
                        scale *= 10.0;
                    }
                    _ => overflow = true,
                }
            }
            rest = &rest[frac_len..];
        }
        if !pre && !post {
            return None;
        }
        // unit
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        if unit_len == 0 {
            return None;
        }
        let unit: u64 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        if v > (1 << 63) / unit {
            return None;
        }
        v *= unit;
        if f > 0 {
            // Go: v += uint64(float64(f) * (float64(unit) / scale))
            v = v.checked_add((f as f64 * (unit as f64 / scale)) as u64)?;
            if v > 1 << 63 {
                return None;
            }
        }
        total = total.checked_add(v)?;
        if total > 1 << 63 {
            return None;
        }
    }
    if neg {
        Some((total as i128).wrapping_neg() as i64)
    } else if total > i64::MAX as u64 {
        None
    } else {
        Some(total as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_table() {
        let rows: &[(&str, Option<i64>)] = &[
            ("0", Some(0)),
            ("1s", Some(1_000_000_000)),
            ("1.5h", Some(5_400_000_000_000)),
            ("1h30m", Some(5_400_000_000_000)),
            ("300ms", Some(300_000_000)),
            ("-2m", Some(-120_000_000_000)),
            ("1us", Some(1_000)),
            ("1\u{b5}s", Some(1_000)),
            ("1min", None),
            ("10", None),
            ("", None),
            ("1d", None),
            (".s", None),
            ("9999999999h", None),
        ];
        for (s, want) in rows {
            assert_eq!(parse_go_duration(s), *want, "{s:?}");
        }
    }
}
