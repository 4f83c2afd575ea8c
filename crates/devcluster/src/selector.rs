//! Label selectors (equality- and set-based) and field selectors, parsed from query strings.

use serde_json::Value;
use std::collections::BTreeMap;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value`, `key==value`, `key in (a,b)`.
    In(String, Vec<String>),
    /// `key!=value`, `key notin (a,b)`.
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<Requirement>);

/// A selector that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse requirement: {0}")]
pub struct SelectorError(pub String);

fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 316
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_set(rest: &str, original: &str) -> Result<Vec<String>, SelectorError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| SelectorError(format!("{original}: expected a parenthesised set")))?;
    let values: Vec<String> = inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    if values.is_empty() || values.iter().any(|v| !valid_value(v)) {
        return Err(SelectorError(format!("{original}: invalid set of values")));
    }
    Ok(values)
}

impl LabelSelector {
    /// Parses the `labelSelector` query syntax: `a=b,c!=d,e in (f,g),h notin (i),j,!k`.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self(reqs));
        }
        for raw in split_top_level(s) {
            let part = raw.trim();
            if part.is_empty() {
                return Err(SelectorError(format!("{s}: empty requirement")));
            }
            let req = if let Some(k) = part.strip_prefix('!') {
                let k = k.trim();
                if !valid_key(k) {
                    return Err(SelectorError(part.to_string()));
                }
                Requirement::DoesNotExist(k.to_string())
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotIn(k.trim().to_string(), vec![v.trim().to_string()])
            } else if let Some((k, v)) = part.split_once("==") {
                Requirement::In(k.trim().to_string(), vec![v.trim().to_string()])
            } else if let Some((k, v)) = part.split_once('=') {
                Requirement::In(k.trim().to_string(), vec![v.trim().to_string()])
            } else if let Some(idx) = part.find(" notin ") {
                Requirement::NotIn(
                    part[..idx].trim().to_string(),
                    parse_set(&part[idx + 7..], part)?,
                )
            } else if let Some(idx) = part.find(" in ") {
                Requirement::In(
                    part[..idx].trim().to_string(),
                    parse_set(&part[idx + 4..], part)?,
                )
            } else {
                Requirement::Exists(part.to_string())
            };
            let (key, values) = match &req {
                Requirement::In(k, v) | Requirement::NotIn(k, v) => (k, v.as_slice()),
                Requirement::Exists(k) | Requirement::DoesNotExist(k) => (k, &[][..]),
            };
            if !valid_key(key) || values.iter().any(|v| !valid_value(v)) {
                return Err(SelectorError(part.to_string()));
            }
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    /// Builds a selector from a `metav1.LabelSelector` object (matchLabels + matchExpressions).
    pub fn from_object(v: &Value) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        if let Some(m) = v.get("matchLabels").and_then(Value::as_object) {
            for (k, val) in m {
                let val = val.as_str().unwrap_or_default();
                reqs.push(Requirement::In(k.clone(), vec![val.to_string()]));
            }
        }
        for e in v
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = e
                .get("key")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let values: Vec<String> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let op = e
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or_default();
            reqs.push(match op {
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::DoesNotExist(key),
                other => return Err(SelectorError(format!("{other:?} is not a valid operator"))),
            });
        }
        Ok(Self(reqs))
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        })
    }

    /// Whether it has no requirements.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The selector in query-string syntax, as `status.selector` of a scale subresource shows it.
    pub fn to_query(&self) -> String {
        self.0
            .iter()
            .map(|r| match r {
                Requirement::In(k, vs) if vs.len() == 1 => format!("{k}={}", vs[0]),
                Requirement::In(k, vs) => format!("{k} in ({})", vs.join(",")),
                Requirement::NotIn(k, vs) if vs.len() == 1 => format!("{k}!={}", vs[0]),
                Requirement::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
                Requirement::Exists(k) => k.clone(),
                Requirement::DoesNotExist(k) => format!("!{k}"),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// One `field=value` or `field!=value` term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    /// Dotted field path, such as `metadata.name`.
    pub field: String,
    /// The value compared against.
    pub value: String,
    /// `!=` rather than `=`.
    pub negated: bool,
}

/// A parsed field selector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<FieldTerm>);

impl FieldSelector {
    /// Parses `a=b,c!=d` and checks each field is one the kind supports.
    pub fn parse(s: &str, kind: &str) -> Result<Self, SelectorError> {
        let mut terms = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self(terms));
        }
        for part in s.split(',') {
            let (field, value, negated) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, false)
            } else {
                return Err(SelectorError(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            if !supported_field(kind, field) {
                return Err(SelectorError(format!("field label not supported: {field}")));
            }
            terms.push(FieldTerm {
                field: field.to_string(),
                value: value.trim().to_string(),
                negated,
            });
        }
        Ok(Self(terms))
    }

    /// Whether only metadata.name / metadata.namespace are used (cheap to evaluate).
    pub fn metadata_only(&self) -> bool {
        self.0
            .iter()
            .all(|t| t.field == "metadata.name" || t.field == "metadata.namespace")
    }

    /// Whether the object satisfies every term.
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|t| {
            let mut cur = obj;
            for seg in t.field.split('.') {
                cur = cur.get(seg).unwrap_or(&Value::Null);
            }
            let actual = match cur {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                Value::Bool(b) => b.to_string(),
                other => other.to_string(),
            };
            (actual == t.value) != t.negated
        })
    }

    /// Whether the terms hold for an object known only by name and namespace.
    pub fn matches_meta(&self, namespace: &str, name: &str) -> bool {
        self.0.iter().all(|t| {
            let actual = if t.field == "metadata.name" {
                name
            } else {
                namespace
            };
            (actual == t.value) != t.negated
        })
    }

    /// Whether it has no terms.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn supported_field(kind: &str, field: &str) -> bool {
    if field == "metadata.name" || field == "metadata.namespace" {
        return true;
    }
    let extra: &[&str] = match kind {
        "Pod" => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        "Event" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "regarding.kind",
            "regarding.name",
            "regarding.namespace",
            "regarding.uid",
        ],
        "Secret" => &["type"],
        "Namespace" => &["status.phase"],
        "ReplicaSet" => &["status.replicas"],
        "Node" => &["spec.unschedulable"],
        _ => &[],
    };
    extra.contains(&field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selector_table() {
        struct Case {
            name: &'static str,
            selector: &'static str,
            labels: &'static [(&'static str, &'static str)],
            want: bool,
        }
        let cases = [
            Case {
                name: "empty matches all",
                selector: "",
                labels: &[],
                want: true,
            },
            Case {
                name: "equality",
                selector: "app=web",
                labels: &[("app", "web")],
                want: true,
            },
            Case {
                name: "double equals",
                selector: "app==web",
                labels: &[("app", "web")],
                want: true,
            },
            Case {
                name: "equality mismatch",
                selector: "app=web",
                labels: &[("app", "db")],
                want: false,
            },
            Case {
                name: "not equal on absent key matches",
                selector: "app!=web",
                labels: &[],
                want: true,
            },
            Case {
                name: "not equal",
                selector: "app!=web",
                labels: &[("app", "web")],
                want: false,
            },
            Case {
                name: "in",
                selector: "tier in (a, b)",
                labels: &[("tier", "b")],
                want: true,
            },
            Case {
                name: "in absent",
                selector: "tier in (a,b)",
                labels: &[],
                want: false,
            },
            Case {
                name: "notin",
                selector: "tier notin (a,b)",
                labels: &[("tier", "c")],
                want: true,
            },
            Case {
                name: "exists",
                selector: "tier",
                labels: &[("tier", "")],
                want: true,
            },
            Case {
                name: "does not exist",
                selector: "!tier",
                labels: &[("tier", "x")],
                want: false,
            },
            Case {
                name: "mixed conjunction",
                selector: "app=web,tier in (fe,be),!canary",
                labels: &[("app", "web"), ("tier", "be")],
                want: true,
            },
        ];
        for c in cases {
            let s = LabelSelector::parse(c.selector).unwrap_or_else(|e| panic!("{}: {e}", c.name));
            assert_eq!(s.matches(&labels(c.labels)), c.want, "{}", c.name);
        }
    }

    #[test]
    fn malformed_label_selectors_are_rejected() {
        for bad in [
            "app=",
            "a b c",
            "tier in a,b",
            "x,,y",
            "app=we b",
            "tier in ()",
        ] {
            if bad == "app=" {
                // An empty value is valid in Kubernetes.
                assert!(LabelSelector::parse(bad).is_ok());
                continue;
            }
            assert!(LabelSelector::parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn field_selector_rejects_unsupported_fields() {
        assert!(FieldSelector::parse("spec.replicas=3", "Deployment").is_err());
        let f = FieldSelector::parse(
            "metadata.name=web,metadata.namespace!=kube-system",
            "ConfigMap",
        )
        .expect("parses");
        assert!(f.matches_meta("default", "web"));
        assert!(!f.matches_meta("kube-system", "web"));
    }

    #[test]
    fn selector_object_round_trips_to_query() {
        let obj = serde_json::json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]});
        let s = LabelSelector::from_object(&obj).expect("valid");
        assert_eq!(s.to_query(), "app=web,tier in (a,b)");
    }
}
