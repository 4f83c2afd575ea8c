//! The Gateway API routing of an OpenKruise Rollout (`trafficRoutings[].gateway.httpRouteName`):
//! what the HTTPRoute's `spec.rules` become at a step, as Kruise's gateway network provider
//! computes them (openkruise/rollouts `pkg/trafficrouting/network/gateway/gateway.go`,
//! `buildDesiredHTTPRoute`), pure over the rules as JSON.
//!
//! * **Weight** (a step with `traffic`/`weight` and no `matches`,
//!   `buildCanaryWeightHttpRoutes`): in each rule whose `backendRefs` name the stable Service,
//!   the stable ref gets weight `100 − w` and the canary Service's ref weight `w`; the canary
//!   ref is added after the others (a copy of the stable ref, renamed) when the rule has none.
//!   Rules that do not reach the stable Service stay as they are.
//! * **Matches** (a step with `matches`, which win over a weight: the Gateway API cannot weigh
//!   and match in one rule, `buildCanaryHeaderHttpRoutes`): the rules that send to the canary
//!   Service are dropped; every other rule stays, and for each rule reaching the stable
//!   Service a canary rule is added after all of them: a copy whose only backend is the stable
//!   ref renamed to the canary Service, and whose matches are each of the rule's matches with
//!   each step match's headers appended.
//! * **Stable** (finalising, `Finalise` with weight −1): the canary refs are removed, the
//!   stable refs get weight 1, and rules left without a backend are dropped.
//!
//! Two Gateway API CRD defaults are applied as a real API server stores them, so that a route
//! read from a server that does not default (or written without them) routes the same: a
//! `backendRef` without `kind` is a `Service`, and a rule without `matches` matches
//! `PathPrefix /`.

use serde_json::{Value, json};

use crate::kruise_run::RouteMatch;

/// What a step asks of the HTTPRoute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteWant<'a> {
    /// `w` percent of the traffic to the canary Service.
    Weight(i64),
    /// Requests matching any of these go to the canary Service.
    Matches(&'a [RouteMatch]),
    /// Every request to the stable Service (Kruise's restore).
    Stable,
}

/// Whether `r` is a backendRef to the Service `name` (`kind` defaults to `Service`).
fn is_service(r: &Value, name: &str) -> bool {
    r.get("kind")
        .filter(|k| !k.is_null())
        .is_none_or(|k| k == "Service")
        && r["name"] == name
}

fn refs(rule: &Value) -> &[Value] {
    rule["backendRefs"].as_array().map_or(&[], Vec::as_slice)
}

fn position(rule: &Value, service: &str) -> Option<usize> {
    refs(rule).iter().position(|r| is_service(r, service))
}

/// The rule's matches as the API server stores them (`PathPrefix /` when it has none).
fn matches_of(rule: &Value) -> Vec<Value> {
    match rule["matches"].as_array() {
        Some(m) if !m.is_empty() => m.clone(),
        _ => vec![json!({"path": {"type": "PathPrefix", "value": "/"}})],
    }
}

/// The HTTPRoute `rules` for `want`, from the current `rules` (`stable`, `canary`: the stable
/// and canary Services' names).
///
/// ```
/// use rollgit_core::kruise_gateway::{RouteWant, http_route_rules};
/// use serde_json::json;
/// let rules = json!([{"backendRefs": [{"kind": "Service", "name": "web", "port": 80}]}]);
/// let w = http_route_rules(&rules, "web", "web-canary", RouteWant::Weight(20));
/// assert_eq!(w, json!([{"backendRefs": [
///     {"kind": "Service", "name": "web", "port": 80, "weight": 80},
///     {"kind": "Service", "name": "web-canary", "port": 80, "weight": 20}]}]));
/// let back = http_route_rules(&w, "web", "web-canary", RouteWant::Stable);
/// assert_eq!(back, json!([{"backendRefs": [{"kind": "Service", "name": "web", "port": 80, "weight": 1}]}]));
/// ```
pub fn http_route_rules(rules: &Value, stable: &str, canary: &str, want: RouteWant<'_>) -> Value {
    let rules = rules.as_array().map_or(&[][..], Vec::as_slice);
    match want {
        RouteWant::Stable => restored(rules, stable, canary),
        RouteWant::Weight(w) => weighted(rules, stable, canary, w),
        RouteWant::Matches([]) => Value::Array(rules.to_vec()),
        RouteWant::Matches(m) => matched(rules, stable, canary, m),
    }
}

fn restored(rules: &[Value], stable: &str, canary: &str) -> Value {
    let mut out = Vec::new();
    for rule in rules {
        let mut rule = rule.clone();
        if let Some(refs) = rule["backendRefs"].as_array_mut() {
            if let Some(i) = refs.iter().position(|r| is_service(r, canary)) {
                refs.remove(i);
            }
            if let Some(s) = refs.iter_mut().find(|r| is_service(r, stable)) {
                s["weight"] = json!(1);
            }
        }
        if !refs(&rule).is_empty() {
            out.push(rule);
        }
    }
    Value::Array(out)
}

fn weighted(rules: &[Value], stable: &str, canary: &str, weight: i64) -> Value {
    let weight = weight.clamp(0, 100);
    let mut out = Vec::new();
    for rule in rules {
        let Some(si) = position(rule, stable) else {
            out.push(rule.clone());
            continue;
        };
        let mut rule = rule.clone();
        let ci = position(&rule, canary);
        if let Some(refs) = rule["backendRefs"].as_array_mut() {
            let mut canary_ref = match ci {
                Some(ci) => refs[ci].clone(),
                None => {
                    let mut c = refs[si].clone();
                    c["name"] = json!(canary);
                    c
                }
            };
            refs[si]["weight"] = json!(100 - weight);
            canary_ref["weight"] = json!(weight);
            match ci {
                Some(ci) => refs[ci] = canary_ref,
                None => refs.push(canary_ref),
            }
        }
        out.push(rule);
    }
    Value::Array(out)
}

fn header_json(m: &RouteMatch) -> Vec<Value> {
    m.headers
        .iter()
        .map(|h| {
            json!({
                "type": if h.regex { "RegularExpression" } else { "Exact" },
                "name": h.name,
                "value": h.value,
            })
        })
        .collect()
}

fn matched(rules: &[Value], stable: &str, canary: &str, matches: &[RouteMatch]) -> Value {
    let mut out = Vec::new();
    let mut canaries = Vec::new();
    for rule in rules {
        if position(rule, canary).is_some() {
            continue;
        }
        out.push(rule.clone());
        let Some(si) = position(rule, stable) else {
            continue;
        };
        let mut canary_ref = refs(rule)[si].clone();
        canary_ref["name"] = json!(canary);
        let mut new_matches = Vec::new();
        for base in matches_of(rule) {
            for m in matches {
                let mut nm = base.clone();
                let headers = header_json(m);
                if !headers.is_empty() {
                    let mut all = nm["headers"].as_array().cloned().unwrap_or_default();
                    all.extend(headers);
                    nm["headers"] = Value::Array(all);
                }
                new_matches.push(nm);
            }
        }
        let mut canary_rule = rule.clone();
        canary_rule["backendRefs"] = json!([canary_ref]);
        canary_rule["matches"] = Value::Array(new_matches);
        canaries.push(canary_rule);
    }
    out.extend(canaries);
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kruise_run::HeaderMatch;

    fn header(name: &str, value: &str, regex: bool) -> RouteMatch {
        RouteMatch {
            headers: vec![HeaderMatch {
                name: name.into(),
                value: value.into(),
                regex,
            }],
        }
    }

    /// A route with one rule to the stable Service `web` (path `/api`), one to another
    /// Service, as users write them.
    fn route() -> Value {
        json!([
            {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
             "backendRefs": [{"kind": "Service", "name": "web", "port": 80}]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/other"}}],
             "backendRefs": [{"name": "other", "port": 80}]}
        ])
    }

    #[test]
    fn rules_per_step() {
        let android = [header("User-Agent", "Andriod", false)];
        let two = [
            header("User-Agent", "Andriod", false),
            header("X-Canary", "^yes$", true),
        ];
        let weighted20 = http_route_rules(&route(), "web", "web-canary", RouteWant::Weight(20));
        let matched = http_route_rules(&route(), "web", "web-canary", RouteWant::Matches(&android));
        let cases: Vec<(&str, Value, RouteWant<'_>, Value)> = vec![
            (
                "weight adds the canary ref after the stable one, with the stable ref's port",
                route(),
                RouteWant::Weight(20),
                json!([
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                     "backendRefs": [{"kind": "Service", "name": "web", "port": 80, "weight": 80},
                                     {"kind": "Service", "name": "web-canary", "port": 80, "weight": 20}]},
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/other"}}],
                     "backendRefs": [{"name": "other", "port": 80}]}
                ]),
            ),
            (
                "a second weight changes the weights in place",
                weighted20.clone(),
                RouteWant::Weight(50),
                json!([
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                     "backendRefs": [{"kind": "Service", "name": "web", "port": 80, "weight": 50},
                                     {"kind": "Service", "name": "web-canary", "port": 80, "weight": 50}]},
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/other"}}],
                     "backendRefs": [{"name": "other", "port": 80}]}
                ]),
            ),
            (
                "weight 100 leaves the stable ref at 0",
                route(),
                RouteWant::Weight(100),
                json!([
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                     "backendRefs": [{"kind": "Service", "name": "web", "port": 80, "weight": 0},
                                     {"kind": "Service", "name": "web-canary", "port": 80, "weight": 100}]},
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/other"}}],
                     "backendRefs": [{"name": "other", "port": 80}]}
                ]),
            ),
            (
                "a header match adds a canary rule after the others, with the header appended",
                route(),
                RouteWant::Matches(&android),
                json!([
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                     "backendRefs": [{"kind": "Service", "name": "web", "port": 80}]},
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/other"}}],
                     "backendRefs": [{"name": "other", "port": 80}]},
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/api"},
                                  "headers": [{"type": "Exact", "name": "User-Agent", "value": "Andriod"}]}],
                     "backendRefs": [{"kind": "Service", "name": "web-canary", "port": 80}]}
                ]),
            ),
            (
                "header matches again: the canary rule is replaced, not doubled",
                matched.clone(),
                RouteWant::Matches(&android),
                matched.clone(),
            ),
            (
                "two step matches: one canary match per rule match and step match (regex typed)",
                json!([{"backendRefs": [{"name": "web", "port": 80}]}]),
                RouteWant::Matches(&two),
                json!([
                    {"backendRefs": [{"name": "web", "port": 80}]},
                    {"backendRefs": [{"name": "web-canary", "port": 80}],
                     "matches": [
                        {"path": {"type": "PathPrefix", "value": "/"},
                         "headers": [{"type": "Exact", "name": "User-Agent", "value": "Andriod"}]},
                        {"path": {"type": "PathPrefix", "value": "/"},
                         "headers": [{"type": "RegularExpression", "name": "X-Canary", "value": "^yes$"}]}]}
                ]),
            ),
            (
                "a weight after a header step keeps the header rule (it does not reach the stable Service)",
                matched.clone(),
                RouteWant::Weight(50),
                json!([
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                     "backendRefs": [{"kind": "Service", "name": "web", "port": 80, "weight": 50},
                                     {"kind": "Service", "name": "web-canary", "port": 80, "weight": 50}]},
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/other"}}],
                     "backendRefs": [{"name": "other", "port": 80}]},
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/api"},
                                  "headers": [{"type": "Exact", "name": "User-Agent", "value": "Andriod"}]}],
                     "backendRefs": [{"kind": "Service", "name": "web-canary", "port": 80}]}
                ]),
            ),
            (
                "restore after weights: canary ref gone, stable weight 1",
                weighted20,
                RouteWant::Stable,
                json!([
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                     "backendRefs": [{"kind": "Service", "name": "web", "port": 80, "weight": 1}]},
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/other"}}],
                     "backendRefs": [{"name": "other", "port": 80}]}
                ]),
            ),
            (
                "restore after matches: the canary rule is dropped",
                matched,
                RouteWant::Stable,
                json!([
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                     "backendRefs": [{"kind": "Service", "name": "web", "port": 80, "weight": 1}]},
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/other"}}],
                     "backendRefs": [{"name": "other", "port": 80}]}
                ]),
            ),
            (
                "a ref of another kind named like the stable Service is not it",
                json!([{"backendRefs": [{"kind": "ServiceImport", "name": "web"}]}]),
                RouteWant::Weight(20),
                json!([{"backendRefs": [{"kind": "ServiceImport", "name": "web"}]}]),
            ),
            (
                "no rules: nothing to route",
                Value::Null,
                RouteWant::Weight(20),
                json!([]),
            ),
        ];
        for (name, rules, want, expected) in cases {
            assert_eq!(
                http_route_rules(&rules, "web", "web-canary", want),
                expected,
                "{name}"
            );
        }
    }
}
