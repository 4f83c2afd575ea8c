//! Int-or-percent values (`IntOrString`) and each project's own way of reading them.
//!
//! * [`lenient`] is apimachinery's deprecated `GetValueFromIntOrPercent`, used by Argo Rollouts
//!   and KubeVela: **any string is a percent** once every `%` is removed (`"1"` is 1%).
//! * [`strict`] is `GetScaledValueFromIntOrPercent`, used by OpenKruise: a string must end
//!   in `%` (`"50"` is an error).
//!
//! Both round a percent of `total` up or down as asked, on the exact rational value.

use std::fmt;

/// A Kubernetes `IntOrString` as written in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IntOrString {
    /// An integer literal: an absolute count.
    Int(i64),
    /// A string literal, usually `"N%"`.
    Str(String),
}

impl IntOrString {
    /// A string value.
    pub fn str(s: &str) -> Self {
        IntOrString::Str(s.to_string())
    }
    /// True when the value is a string (whatever its content).
    pub fn is_str(&self) -> bool {
        matches!(self, IntOrString::Str(_))
    }
}

impl fmt::Display for IntOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrString::Int(i) => write!(f, "{i}"),
            IntOrString::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl serde::Serialize for IntOrString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            IntOrString::Int(i) => s.serialize_i64(*i),
            IntOrString::Str(v) => s.serialize_str(v),
        }
    }
}

impl<'de> serde::Deserialize<'de> for IntOrString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Str(String),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Int(i) => IntOrString::Int(i),
            Raw::Str(s) => IntOrString::Str(s),
        })
    }
}

impl From<i64> for IntOrString {
    fn from(v: i64) -> Self {
        IntOrString::Int(v)
    }
}

impl From<&str> for IntOrString {
    fn from(v: &str) -> Self {
        IntOrString::Str(v.to_string())
    }
}

/// Why an int-or-percent value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntStrError {
    /// The string (after removing `%`) is not a base-10 integer.
    #[error("{value:?} is not an integer or a percent")]
    NotANumber {
        /// The offending string.
        value: String,
    },
    /// The strict parser needs a trailing `%`.
    #[error("invalid type: {value:?} is not a percentage (a string must look like \"N%\")")]
    NotAPercent {
        /// The offending string.
        value: String,
    },
}

/// Go's `strconv.Atoi`: optional sign, then ASCII digits only, within `i64`.
///
/// ```
/// use rollgit_core::intstr::go_atoi;
/// assert_eq!(go_atoi("+25"), Some(25));
/// assert_eq!(go_atoi("-3"), Some(-3));
/// assert_eq!(go_atoi(" 3"), None);
/// assert_eq!(go_atoi("0.2"), None);
/// ```
pub fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok()
}

/// `ceil(a / b)` for `b > 0`, exact for negative `a` too.
pub fn ceil_div(a: i64, b: i64) -> i64 {
    let q = a.div_euclid(b);
    if a.rem_euclid(b) == 0 { q } else { q + 1 }
}

/// `floor(a / b)` for `b > 0`, exact for negative `a` too.
pub fn floor_div(a: i64, b: i64) -> i64 {
    a.div_euclid(b)
}

/// `pct`% of `total`, rounded up or down on the exact value (saturating on overflow).
///
/// ```
/// use rollgit_core::intstr::percent_of;
/// assert_eq!(percent_of(25, 10, true), 3);
/// assert_eq!(percent_of(25, 10, false), 2);
/// ```
pub fn percent_of(pct: i64, total: i64, round_up: bool) -> i64 {
    let prod = i128::from(pct) * i128::from(total);
    let q = prod.div_euclid(100);
    let v = if round_up && prod.rem_euclid(100) != 0 {
        q + 1
    } else {
        q
    };
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// The lenient reading: `(value, is_percent)`. Every string is a percent after every `%`
/// is removed; only a non-integer string fails.
///
/// ```
/// use rollgit_core::intstr::{lenient_parts, IntOrString};
/// assert_eq!(lenient_parts(&IntOrString::str("1")), Ok((1, true)));
/// assert_eq!(lenient_parts(&IntOrString::str("%5%")), Ok((5, true)));
/// assert_eq!(lenient_parts(&IntOrString::Int(5)), Ok((5, false)));
/// ```
pub fn lenient_parts(v: &IntOrString) -> Result<(i64, bool), IntStrError> {
    match v {
        IntOrString::Int(i) => Ok((*i, false)),
        IntOrString::Str(s) => go_atoi(&s.replace('%', ""))
            .map(|n| (n, true))
            .ok_or_else(|| IntStrError::NotANumber { value: s.clone() }),
    }
}

/// apimachinery `GetValueFromIntOrPercent` (Argo Rollouts, KubeVela).
///
/// ```
/// use rollgit_core::intstr::{lenient, IntOrString};
/// // "25" is 25%, not 25 pods
/// assert_eq!(lenient(&IntOrString::str("25"), 10, true), Ok(3));
/// assert_eq!(lenient(&IntOrString::str("25%"), 10, false), Ok(2));
/// assert_eq!(lenient(&IntOrString::Int(7), 10, true), Ok(7));
/// assert!(lenient(&IntOrString::str("ab"), 10, true).is_err());
/// ```
pub fn lenient(v: &IntOrString, total: i64, round_up: bool) -> Result<i64, IntStrError> {
    let (n, pct) = lenient_parts(v)?;
    Ok(if pct {
        percent_of(n, total, round_up)
    } else {
        n
    })
}

/// The strict reading: `(value, is_percent)`. A string must end with `%`.
///
/// ```
/// use rollgit_core::intstr::{strict_parts, IntOrString};
/// assert_eq!(strict_parts(&IntOrString::str("50%")), Ok((50, true)));
/// assert!(strict_parts(&IntOrString::str("50")).is_err());
/// ```
pub fn strict_parts(v: &IntOrString) -> Result<(i64, bool), IntStrError> {
    match v {
        IntOrString::Int(i) => Ok((*i, false)),
        IntOrString::Str(s) => {
            let Some(num) = s.strip_suffix('%') else {
                return Err(IntStrError::NotAPercent { value: s.clone() });
            };
            go_atoi(num)
                .map(|n| (n, true))
                .ok_or_else(|| IntStrError::NotANumber { value: s.clone() })
        }
    }
}

/// apimachinery `GetScaledValueFromIntOrPercent` (OpenKruise).
///
/// ```
/// use rollgit_core::intstr::{strict, IntOrString};
/// assert_eq!(strict(&IntOrString::str("50%"), 5, true), Ok(3));
/// assert!(strict(&IntOrString::str("50"), 5, true).is_err());
/// ```
pub fn strict(v: &IntOrString, total: i64, round_up: bool) -> Result<i64, IntStrError> {
    let (n, pct) = strict_parts(v)?;
    Ok(if pct {
        percent_of(n, total, round_up)
    } else {
        n
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        name: &'static str,
        value: IntOrString,
        total: i64,
        round_up: bool,
        lenient: Option<i64>,
        strict: Option<i64>,
    }

    fn s(v: &str) -> IntOrString {
        IntOrString::str(v)
    }

    #[test]
    fn table() {
        let cases = [
            Case {
                name: "int is absolute",
                value: IntOrString::Int(3),
                total: 10,
                round_up: true,
                lenient: Some(3),
                strict: Some(3),
            },
            Case {
                name: "int above total is kept",
                value: IntOrString::Int(30),
                total: 10,
                round_up: true,
                lenient: Some(30),
                strict: Some(30),
            },
            Case {
                name: "percent rounds up",
                value: s("25%"),
                total: 10,
                round_up: true,
                lenient: Some(3),
                strict: Some(3),
            },
            Case {
                name: "percent rounds down",
                value: s("25%"),
                total: 10,
                round_up: false,
                lenient: Some(2),
                strict: Some(2),
            },
            Case {
                name: "bare string is a percent only leniently",
                value: s("25"),
                total: 10,
                round_up: true,
                lenient: Some(3),
                strict: None,
            },
            Case {
                name: "argo bug: \"1\" is 1 percent",
                value: s("1"),
                total: 10,
                round_up: false,
                lenient: Some(0),
                strict: None,
            },
            Case {
                name: "every percent sign removed",
                value: s("%2%5"),
                total: 100,
                round_up: true,
                lenient: Some(25),
                strict: None,
            },
            Case {
                name: "double percent strict fails",
                value: s("25%%"),
                total: 100,
                round_up: true,
                lenient: Some(25),
                strict: None,
            },
            Case {
                name: "0 percent",
                value: s("0%"),
                total: 10,
                round_up: true,
                lenient: Some(0),
                strict: Some(0),
            },
            Case {
                name: "100 percent",
                value: s("100%"),
                total: 7,
                round_up: true,
                lenient: Some(7),
                strict: Some(7),
            },
            Case {
                name: "200 percent unclamped here",
                value: s("200%"),
                total: 4,
                round_up: true,
                lenient: Some(8),
                strict: Some(8),
            },
            Case {
                name: "percent of zero",
                value: s("50%"),
                total: 0,
                round_up: true,
                lenient: Some(0),
                strict: Some(0),
            },
            Case {
                name: "1 percent of 1 rounds up to 1",
                value: s("1%"),
                total: 1,
                round_up: true,
                lenient: Some(1),
                strict: Some(1),
            },
            Case {
                name: "99 percent of 1 rounds down to 0",
                value: s("99%"),
                total: 1,
                round_up: false,
                lenient: Some(0),
                strict: Some(0),
            },
            Case {
                name: "fraction rejected",
                value: s("0.2"),
                total: 10,
                round_up: true,
                lenient: None,
                strict: None,
            },
            Case {
                name: "non numeric rejected",
                value: s("ab"),
                total: 10,
                round_up: true,
                lenient: None,
                strict: None,
            },
            Case {
                name: "empty rejected",
                value: s(""),
                total: 10,
                round_up: true,
                lenient: None,
                strict: None,
            },
            Case {
                name: "bare percent rejected",
                value: s("%"),
                total: 10,
                round_up: true,
                lenient: None,
                strict: None,
            },
            Case {
                name: "negative percent rounds up toward zero",
                value: s("-25%"),
                total: 10,
                round_up: true,
                lenient: Some(-2),
                strict: Some(-2),
            },
            Case {
                name: "negative percent rounds down away from zero",
                value: s("-25%"),
                total: 10,
                round_up: false,
                lenient: Some(-3),
                strict: Some(-3),
            },
            Case {
                name: "large values do not overflow",
                value: s("100%"),
                total: i64::MAX,
                round_up: true,
                lenient: Some(i64::MAX),
                strict: Some(i64::MAX),
            },
        ];
        for c in cases {
            assert_eq!(
                lenient(&c.value, c.total, c.round_up).ok(),
                c.lenient,
                "lenient: {}",
                c.name
            );
            assert_eq!(
                strict(&c.value, c.total, c.round_up).ok(),
                c.strict,
                "strict: {}",
                c.name
            );
        }
    }

    #[test]
    fn ceil_and_floor_div() {
        assert_eq!(ceil_div(7, 2), 4);
        assert_eq!(ceil_div(-7, 2), -3);
        assert_eq!(floor_div(-7, 2), -4);
        assert_eq!(ceil_div(6, 3), 2);
    }
}
