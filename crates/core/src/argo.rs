//! Argo Rollouts canary arithmetic and step machine (argo-rollouts `utils/replicaset/canary.go`,
//! `replicaset.go`, `rollout/canary.go`, `rollout/pause.go`, the `promote` command).
//!
//! Every function is pure. The floating-point steps of the Go code (ties, weight deltas,
//! traffic replica counts) are reproduced with `f64`, which is IEEE-identical to Go's `float64`.

use crate::intstr::{self, IntOrString};
use rollgit_syntax::parse_go_duration;

/// One Argo validation failure, naming the rule broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgoError {
    /// A step sets none of the known fields.
    #[error(
        "steps[{0}]: Step must have one of the following set: experiment, setWeight, setCanaryScale, pause, analysis, setHeaderRoute, setMirrorRoute or plugin"
    )]
    EmptyStep(usize),
    /// setWeight out of [0, maxWeight].
    #[error(
        "steps[{index}].setWeight: SetWeight needs to be between 0 and {max_weight}, got {weight}"
    )]
    SetWeightOutOfRange {
        /// Step index.
        index: usize,
        /// The weight.
        weight: i64,
        /// The maximum weight.
        max_weight: i64,
    },
    /// Pause duration parses to < 0.
    #[error("steps[{index}].pause.duration: Duration needs to be greater than 0, got {value}")]
    BadPauseDuration {
        /// Step index.
        index: usize,
        /// The raw value.
        value: IntOrString,
    },
    /// Literal maxSurge and maxUnavailable both 0.
    #[error("maxSurge: MaxSurge and MaxUnavailable both can not be zero")]
    BothFencepostsZero,
    /// maxSurge or maxUnavailable is a string Argo's controller cannot resolve (a rollgit
    /// rule: Argo admits it, then `resolveFenceposts` fails and the controller uses 0 for both).
    #[error(
        "{field}: {value} is not an integer or a percent (Argo's controller cannot resolve it and would use maxSurge 0 and maxUnavailable 0)"
    )]
    BadFencepost {
        /// `maxSurge` or `maxUnavailable`.
        field: &'static str,
        /// The value as written.
        value: IntOrString,
    },
    /// setCanaryScale without trafficRouting.
    #[error("steps[{0}].setCanaryScale: SetCanaryScale requires TrafficRouting to be set")]
    CanaryScaleWithoutRouting(usize),
    /// dynamicStableScale without trafficRouting.
    #[error("dynamicStableScale: DynamicStableScale requires TrafficRouting to be set")]
    DynamicStableScaleWithoutRouting,
    /// dynamicStableScale with scaleDownDelaySeconds.
    #[error("dynamicStableScale: DynamicStableScale cannot be used with ScaleDownDelaySeconds")]
    DynamicStableScaleWithDelay,
    /// Negative replicas.
    #[error("spec.replicas: must be >= 0, got {0}")]
    NegativeReplicas(i64),
}

/// The canary strategy fields the arithmetic needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanarySpec {
    /// spec.replicas (default 1).
    pub replicas: i64,
    /// canary.maxSurge (default "25").
    pub max_surge: Option<IntOrString>,
    /// canary.maxUnavailable (default "25").
    pub max_unavailable: Option<IntOrString>,
    /// canary.steps.
    pub steps: Vec<CanaryStep>,
    /// trafficRouting is set.
    pub traffic_routing: bool,
    /// trafficRouting.maxTrafficWeight (default 100).
    pub max_weight: i64,
    /// dynamicStableScale.
    pub dynamic_stable_scale: bool,
    /// abortScaleDownDelaySeconds, when explicitly set.
    pub abort_scale_down_delay_seconds: Option<i64>,
    /// scaleDownDelaySeconds, when set.
    pub scale_down_delay_seconds: Option<i64>,
    /// minPodsPerReplicaSet, when set.
    pub min_pods_per_replica_set: Option<i64>,
}

impl Default for CanarySpec {
    fn default() -> Self {
        CanarySpec {
            replicas: 1,
            max_surge: None,
            max_unavailable: None,
            steps: Vec::new(),
            traffic_routing: false,
            max_weight: 100,
            dynamic_stable_scale: false,
            abort_scale_down_delay_seconds: None,
            scale_down_delay_seconds: None,
            min_pods_per_replica_set: None,
        }
    }
}

/// `setCanaryScale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetCanaryScale {
    /// `replicas`: the canary count outright.
    pub replicas: Option<i64>,
    /// `weight`: a percent of spec.replicas (may exceed 100).
    pub weight: Option<i64>,
    /// `matchTrafficWeight: true` cancels an earlier setCanaryScale.
    pub match_traffic_weight: bool,
}

/// One canary step. Several fields may be set; the step kinds Argo knows but rollgit does not
/// compute with are flags.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CanaryStep {
    /// setWeight.
    pub set_weight: Option<i64>,
    /// pause: `Some(None)` is `pause: {}`, `Some(Some(d))` has a duration.
    pub pause: Option<Option<IntOrString>>,
    /// setCanaryScale.
    pub set_canary_scale: Option<SetCanaryScale>,
    /// experiment / analysis / setHeaderRoute / setMirrorRoute / plugin present.
    pub other: bool,
}

impl CanaryStep {
    /// A `setWeight` step.
    pub fn weight(w: i64) -> Self {
        CanaryStep {
            set_weight: Some(w),
            ..Default::default()
        }
    }
    /// A `pause` step; `None` is `pause: {}`.
    pub fn pause(duration: Option<IntOrString>) -> Self {
        CanaryStep {
            pause: Some(duration),
            ..Default::default()
        }
    }
    /// A `setCanaryScale` step.
    pub fn canary_scale(s: SetCanaryScale) -> Self {
        CanaryStep {
            set_canary_scale: Some(s),
            ..Default::default()
        }
    }
}

fn default_fencepost() -> IntOrString {
    IntOrString::str("25")
}

/// `resolveFenceposts`: (surge, unavailable) for `desired` replicas.
///
/// Lenient percents (any string is a percent); surge rounds **up**, unavailable **down**; both 0
/// makes unavailable 1. A non-numeric string is an error that callers ignore: (0, 0).
///
/// ```
/// use rollgit_core::{argo::resolve_fenceposts, intstr::IntOrString};
/// let p = |s: &str| Some(IntOrString::str(s));
/// assert_eq!(resolve_fenceposts(p("39%").as_ref(), p("39%").as_ref(), 10), (4, 3));
/// assert_eq!(resolve_fenceposts(p("0%").as_ref(), p("0%").as_ref(), 10), (0, 1));
/// assert_eq!(resolve_fenceposts(None, None, 1), (1, 0));
/// ```
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i64,
) -> (i64, i64) {
    let d = default_fencepost();
    let surge = intstr::lenient(max_surge.unwrap_or(&d), desired, true);
    let unavail = intstr::lenient(max_unavailable.unwrap_or(&d), desired, false);
    match (surge, unavail) {
        (Ok(0), Ok(0)) => (0, 1),
        (Ok(s), Ok(u)) => (s, u),
        _ => (0, 0),
    }
}

/// `MaxSurge()` for a canary rollout.
///
/// ```
/// use rollgit_core::argo::{max_surge, CanarySpec};
/// assert_eq!(max_surge(&CanarySpec { replicas: 10, ..Default::default() }), 3);
/// ```
pub fn max_surge(spec: &CanarySpec) -> i64 {
    resolve_fenceposts(
        spec.max_surge.as_ref(),
        spec.max_unavailable.as_ref(),
        spec.replicas,
    )
    .0
}

/// `MaxUnavailable()`: 0 when R == 0, capped at R.
///
/// ```
/// use rollgit_core::argo::{max_unavailable, CanarySpec};
/// assert_eq!(max_unavailable(&CanarySpec { replicas: 10, ..Default::default() }), 2);
/// assert_eq!(max_unavailable(&CanarySpec { replicas: 0, ..Default::default() }), 0);
/// ```
pub fn max_unavailable(spec: &CanarySpec) -> i64 {
    if spec.replicas == 0 {
        return 0;
    }
    let u = resolve_fenceposts(
        spec.max_surge.as_ref(),
        spec.max_unavailable.as_ref(),
        spec.replicas,
    )
    .1;
    u.min(spec.replicas)
}

/// The literal value validation compares with 0: "N%" gives N, any other string its
/// `Atoi` value (or 0), an int itself.
fn literal_fencepost(v: &IntOrString) -> i64 {
    match v {
        IntOrString::Int(i) => *i,
        IntOrString::Str(s) => s
            .strip_suffix('%')
            .and_then(intstr::go_atoi)
            .or_else(|| intstr::go_atoi(s))
            .unwrap_or(0),
    }
}

/// Validate a canary spec with Argo's rules (A.1, A.5, A.6), and one of rollgit's own:
/// maxSurge and maxUnavailable must be values Argo's controller can resolve
/// ([`ArgoError::BadFencepost`]). Argo's `validation.go` reads an unparsable string as 0 for
/// the both-zero check and admits it otherwise; its `resolveFenceposts` then fails, and
/// `MaxSurge()`/`MaxUnavailable()` ignore the error and use 0 for both, so a basic canary cannot
/// scale at all. The both-zero check comes first, as in Argo.
///
/// ```
/// use rollgit_core::{argo::*, intstr::IntOrString};
/// let spec = CanarySpec { replicas: 3, max_surge: Some(IntOrString::Int(0)),
///     max_unavailable: Some(IntOrString::str("0%")), ..Default::default() };
/// assert_eq!(validate(&spec), Err(ArgoError::BothFencepostsZero));
/// let oops = CanarySpec { max_surge: Some(IntOrString::str("oops")), max_unavailable: None, ..spec };
/// assert!(matches!(validate(&oops), Err(ArgoError::BadFencepost { field: "maxSurge", .. })));
/// ```
pub fn validate(spec: &CanarySpec) -> Result<(), ArgoError> {
    if spec.replicas < 0 {
        return Err(ArgoError::NegativeReplicas(spec.replicas));
    }
    let d = default_fencepost();
    if literal_fencepost(spec.max_surge.as_ref().unwrap_or(&d)) == 0
        && literal_fencepost(spec.max_unavailable.as_ref().unwrap_or(&d)) == 0
    {
        return Err(ArgoError::BothFencepostsZero);
    }
    for (field, value) in [
        ("maxSurge", &spec.max_surge),
        ("maxUnavailable", &spec.max_unavailable),
    ] {
        if let Some(v) = value
            && intstr::lenient_parts(v).is_err()
        {
            return Err(ArgoError::BadFencepost {
                field,
                value: v.clone(),
            });
        }
    }
    if spec.dynamic_stable_scale {
        if !spec.traffic_routing {
            return Err(ArgoError::DynamicStableScaleWithoutRouting);
        }
        if spec.scale_down_delay_seconds.is_some() {
            return Err(ArgoError::DynamicStableScaleWithDelay);
        }
    }
    for (index, s) in spec.steps.iter().enumerate() {
        if s.set_weight.is_none() && s.pause.is_none() && s.set_canary_scale.is_none() && !s.other {
            return Err(ArgoError::EmptyStep(index));
        }
        if let Some(w) = s.set_weight
            && !(0..=spec.max_weight).contains(&w)
        {
            return Err(ArgoError::SetWeightOutOfRange {
                index,
                weight: w,
                max_weight: spec.max_weight,
            });
        }
        if let Some(Some(d)) = &s.pause
            && pause_duration_seconds(Some(d)) < 0
        {
            return Err(ArgoError::BadPauseDuration {
                index,
                value: d.clone(),
            });
        }
        if s.set_canary_scale.is_some() && !spec.traffic_routing {
            return Err(ArgoError::CanaryScaleWithoutRouting(index));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Pause durations
// ---------------------------------------------------------------------------------------

/// `RolloutPause.DurationSeconds()`: absent → 0; int → itself (−1 when outside int32);
/// a string is first a base-10 int32, else a Go duration truncated to whole seconds;
/// invalid → −1. A duration beyond int32 seconds converts like Go on amd64 (`i32::MIN`).
///
/// ```
/// use rollgit_core::{argo::pause_duration_seconds, intstr::IntOrString};
/// let s = |v: &str| pause_duration_seconds(Some(&IntOrString::str(v)));
/// assert_eq!(s("10"), 10);
/// assert_eq!(s("10m"), 600);
/// assert_eq!(s("1ms"), 0);
/// assert_eq!(s("1d"), -1);
/// assert_eq!(s("20000000000"), -1);
/// assert_eq!(pause_duration_seconds(None), 0);
/// ```
pub fn pause_duration_seconds(duration: Option<&IntOrString>) -> i64 {
    match duration {
        None => 0,
        Some(IntOrString::Int(i)) => i32::try_from(*i).map_or(-1, i64::from),
        Some(IntOrString::Str(s)) => {
            if let Some(v) = intstr::go_atoi(s).and_then(|n| i32::try_from(n).ok()) {
                return i64::from(v);
            }
            match parse_go_duration(s) {
                None => -1,
                Some(ns) => {
                    let secs = (ns as f64 / 1e9).trunc();
                    if secs >= f64::from(i32::MIN) && secs <= f64::from(i32::MAX) {
                        secs as i64
                    } else {
                        i64::from(i32::MIN)
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Weights
// ---------------------------------------------------------------------------------------

/// `GetCurrentSetWeight`: walk back from `index` to the nearest setWeight (0 if none);
/// 100 (max weight) when `index >= len(steps)`; 0 when aborted.
///
/// ```
/// use rollgit_core::argo::{current_set_weight, CanaryStep};
/// let steps = [CanaryStep::weight(10), CanaryStep::pause(None), CanaryStep::weight(20)];
/// assert_eq!(current_set_weight(&steps, 1, false, 100), 10);
/// assert_eq!(current_set_weight(&steps, 3, false, 100), 100);
/// assert_eq!(current_set_weight(&steps, 2, true, 100), 0);
/// ```
pub fn current_set_weight(
    steps: &[CanaryStep],
    index: usize,
    aborted: bool,
    max_weight: i64,
) -> i64 {
    if aborted {
        return 0;
    }
    if index >= steps.len() {
        return max_weight;
    }
    steps[..=index]
        .iter()
        .rev()
        .find_map(|s| s.set_weight)
        .unwrap_or(0)
}

/// What the status says about the rollout, for [`canary_replicas_or_weight`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WeightStatus {
    /// status.currentStepIndex (nil counts as 0).
    pub current_step_index: usize,
    /// status.promoteFull.
    pub promote_full: bool,
    /// status.abort.
    pub aborted: bool,
    /// A stable RS is recorded.
    pub has_stable: bool,
    /// The current pod hash equals the stable hash.
    pub current_is_stable: bool,
}

/// `GetCanaryReplicasOrWeight`: `(Some(canary replicas), _)` when setCanaryScale sets a count,
/// otherwise `(None, weight)`.
///
/// ```
/// use rollgit_core::argo::*;
/// let spec = CanarySpec { replicas: 4, traffic_routing: true, steps: vec![
///     CanaryStep::canary_scale(SetCanaryScale { weight: Some(200), ..Default::default() })],
///     ..Default::default() };
/// let st = WeightStatus { has_stable: true, ..Default::default() };
/// assert_eq!(canary_replicas_or_weight(&spec, &st), (None, 200));
/// ```
pub fn canary_replicas_or_weight(spec: &CanarySpec, st: &WeightStatus) -> (Option<i64>, i64) {
    if st.promote_full || !st.has_stable || st.current_is_stable {
        return (None, spec.max_weight);
    }
    if let Some(scale) = current_canary_scale(spec, st) {
        if let Some(r) = scale.replicas {
            return (Some(r), 0);
        }
        if let Some(w) = scale.weight {
            return (None, w);
        }
    }
    (
        None,
        current_set_weight(
            &spec.steps,
            st.current_step_index,
            st.aborted,
            spec.max_weight,
        ),
    )
}

fn current_canary_scale(spec: &CanarySpec, st: &WeightStatus) -> Option<SetCanaryScale> {
    if !spec.traffic_routing || spec.steps.is_empty() {
        return None;
    }
    if st.aborted && spec.abort_scale_down_delay_seconds != Some(0) {
        return None;
    }
    let last = st.current_step_index.min(spec.steps.len() - 1);
    let found = spec.steps[..=last]
        .iter()
        .rev()
        .find_map(|s| s.set_canary_scale)?;
    if found.match_traffic_weight {
        None
    } else {
        Some(found)
    }
}

/// `approximateWeightedCanaryStableReplicaCounts`: the (canary, stable) counts closest to
/// `weight`%, summing to R, or R+1 only when `max_surge > 0`; ties round the canary up.
///
/// ```
/// use rollgit_core::argo::approximate_weighted_counts;
/// assert_eq!(approximate_weighted_counts(10, 24, 1), (3, 8));
/// assert_eq!(approximate_weighted_counts(3, 10, 1), (1, 3));
/// assert_eq!(approximate_weighted_counts(1, 49, 0), (0, 1));
/// assert_eq!(approximate_weighted_counts(1, 50, 0), (1, 0));
/// ```
pub fn approximate_weighted_counts(replicas: i64, weight: i64, max_surge: i64) -> (i64, i64) {
    if replicas == 0 {
        return (0, 0);
    }
    let exact = (replicas * weight) as f64 / 100.0;
    let ceil_c = exact.ceil() as i64;
    let floor_c = exact.floor() as i64;
    let tied = |total: i64| (total as f64 * (weight as f64 / 100.0)).fract() == 0.5;
    let zero_allowed = weight == 100 || weight == 0 || (replicas == 1 && max_surge == 0);
    let mut options: Vec<(i64, i64)> = Vec::with_capacity(4);
    if ceil_c < replicas || zero_allowed {
        options.push((ceil_c, replicas));
    }
    if !tied(replicas) && (floor_c != 0 || zero_allowed) {
        options.push((floor_c, replicas));
    }
    if max_surge > 0 {
        options.push((ceil_c, replicas + 1));
        if !tied(replicas + 1) && (floor_c != 0 || zero_allowed) {
            options.push((floor_c, replicas + 1));
        }
    }
    let delta = |(c, t): (i64, i64)| ((c * 100) as f64 / t as f64 - weight as f64).abs();
    let Some(&first) = options.first() else {
        return (0, replicas);
    };
    let mut best = first;
    let mut best_delta = delta(first);
    for &o in &options[1..] {
        let d = delta(o);
        if d < best_delta {
            best = o;
            best_delta = d;
        }
    }
    (best.0, best.1 - best.0)
}

/// A ReplicaSet as the arithmetic sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplicaSet {
    /// spec.replicas
    pub spec: i64,
    /// status.availableReplicas
    pub available: i64,
}

impl ReplicaSet {
    /// A ReplicaSet with `spec` replicas of which `available` are available.
    pub fn new(spec: i64, available: i64) -> Self {
        ReplicaSet { spec, available }
    }
}

/// `GetReplicasForScaleDown`.
fn counted(rs: Option<&ReplicaSet>, ignore_availability: bool) -> i64 {
    match rs {
        None => 0,
        Some(rs) if rs.spec < rs.available => rs.spec,
        Some(rs) if ignore_availability => rs.spec,
        Some(rs) => rs.available,
    }
}

/// Inputs of [`basic_canary_counts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicCanaryInput {
    /// spec.replicas.
    pub replicas: i64,
    /// The desired weight (from [`canary_replicas_or_weight`]).
    pub weight: i64,
    /// Resolved maxSurge.
    pub max_surge: i64,
    /// Resolved MaxUnavailable().
    pub max_unavailable: i64,
    /// The new (canary) RS, if it exists.
    pub new_rs: Option<ReplicaSet>,
    /// The stable RS, if it exists **and differs** from the new RS.
    pub stable_rs: Option<ReplicaSet>,
    /// Older RSs.
    pub older: Vec<ReplicaSet>,
}

/// `adjustReplicaWithinLimits(drain, adjust)`: returns (drain count, adjust count).
///
/// ```
/// use rollgit_core::argo::{adjust_replica_within_limits, ReplicaSet};
/// // nothing over the limit: unchanged
/// assert_eq!(adjust_replica_within_limits(Some(&ReplicaSet::new(4, 4)), Some(&ReplicaSet::new(1, 1)), 3, 1, 5, 4), (3, 1));
/// ```
pub fn adjust_replica_within_limits(
    drain: Option<&ReplicaSet>,
    adjust: Option<&ReplicaSet>,
    mut drain_count: i64,
    mut adjust_count: i64,
    max_allowed: i64,
    min_available: i64,
) -> (i64, i64) {
    let mut over = (adjust_count + drain_count - max_allowed).max(0);
    let mut total_available = 0;
    if let Some(d) = drain {
        total_available += d.available.min(drain_count);
    }
    if let Some(a) = adjust {
        adjust_count -= over;
        total_available += a.available.min(adjust_count);
        let extra = (a.available - adjust_count).max(0);
        let more_needed = (min_available - total_available).max(0);
        adjust_count += extra.min(more_needed);
        over = (adjust_count + drain_count - max_allowed).max(0);
        drain_count -= over;
    }
    (drain_count, adjust_count)
}

/// `CalculateReplicaCountsForBasicCanary`: the (canary, stable) spec counts for **this**
/// reconcile; the controller repeats it until they settle.
///
/// ```
/// use rollgit_core::argo::*;
/// let mut input = BasicCanaryInput { replicas: 10, weight: 20, max_surge: 2, max_unavailable: 0,
///     new_rs: Some(ReplicaSet::new(0, 0)), stable_rs: Some(ReplicaSet::new(10, 10)), older: vec![] };
/// assert_eq!(basic_canary_counts(&input), (2, 10));
/// input.new_rs = Some(ReplicaSet::new(2, 2));
/// assert_eq!(basic_canary_counts(&input), (2, 8));
/// ```
pub fn basic_canary_counts(input: &BasicCanaryInput) -> (i64, i64) {
    let r = input.replicas;
    let (mut desired_new, mut desired_stable) =
        approximate_weighted_counts(r, input.weight, input.max_surge);
    let mut new_count = input.new_rs.map_or(0, |rs| rs.spec);
    let mut stable_count = 0;
    let stable = input.stable_rs.as_ref();
    if let Some(s) = stable {
        stable_count = s.spec;
    } else {
        desired_new = r;
        desired_stable = 0;
    }
    let max_allowed = r + input.max_surge;
    let older_total: i64 = input.older.iter().map(|rs| rs.spec).sum();
    let total = older_total + input.new_rs.map_or(0, |rs| rs.spec) + stable.map_or(0, |rs| rs.spec);
    let mut scale_up = max_allowed - total;

    if let Some(s) = stable
        && s.spec < desired_stable
        && scale_up > 0
    {
        if s.spec + scale_up < desired_stable {
            stable_count = s.spec + scale_up;
            scale_up = 0;
        } else {
            stable_count = desired_stable;
            scale_up -= desired_stable - s.spec;
        }
    }
    if let Some(n) = input.new_rs
        && n.spec < desired_new
        && scale_up > 0
    {
        new_count = if n.spec + scale_up < desired_new {
            n.spec + scale_up
        } else {
            desired_new
        };
    }
    if older_total > 0 {
        return (new_count, stable_count);
    }
    let min_available = r - input.max_unavailable;
    let is_increasing = input.new_rs.is_none_or(|n| desired_new >= n.spec);
    let to_down = counted(input.new_rs.as_ref(), !is_increasing) + counted(stable, is_increasing);
    if to_down <= min_available {
        return (new_count, stable_count);
    }
    let scale_down = to_down - min_available;
    if !is_increasing {
        if let Some(n) = input.new_rs
            && n.spec > desired_new
        {
            new_count = desired_new.max(n.spec - scale_down);
        }
        let (n, s) = adjust_replica_within_limits(
            input.new_rs.as_ref(),
            stable,
            new_count,
            stable_count,
            max_allowed,
            min_available,
        );
        new_count = n;
        stable_count = s;
    } else if let Some(s) = stable {
        if s.spec > desired_stable {
            stable_count = desired_stable.max(s.spec - scale_down);
        }
        let (st, n) = adjust_replica_within_limits(
            Some(s),
            input.new_rs.as_ref(),
            stable_count,
            new_count,
            max_allowed,
            min_available,
        );
        stable_count = st;
        new_count = n;
    }
    (new_count, stable_count)
}

/// Repeat [`basic_canary_counts`], making every pod available at once, until the counts
/// settle (at most `R + surge + 4` passes, plus a margin). Returns the settled (canary, stable).
///
/// ```
/// use rollgit_core::argo::*;
/// let input = BasicCanaryInput { replicas: 10, weight: 20, max_surge: 2, max_unavailable: 0,
///     new_rs: Some(ReplicaSet::new(0, 0)), stable_rs: Some(ReplicaSet::new(10, 10)), older: vec![] };
/// assert_eq!(settle_basic_canary(&input), (2, 8));
/// ```
pub fn settle_basic_canary(input: &BasicCanaryInput) -> (i64, i64) {
    let mut cur = input.clone();
    let limit = 4 * (input.replicas.max(0) + input.max_surge.max(0)) + 8;
    let mut last = (
        cur.new_rs.map_or(0, |r| r.spec),
        cur.stable_rs.map_or(0, |r| r.spec),
    );
    for _ in 0..limit {
        let (n, s) = basic_canary_counts(&cur);
        if let Some(rs) = cur.new_rs.as_mut() {
            *rs = ReplicaSet::new(n, n);
        }
        if let Some(rs) = cur.stable_rs.as_mut() {
            *rs = ReplicaSet::new(s, s);
        }
        // older RSs drain at the surge/unavailable pace; model them as scaled to 0 at once
        cur.older.clear();
        if (n, s) == last {
            break;
        }
        last = (n, s);
    }
    last
}

/// `trafficWeightToReplicas`: ceil(R·W/M) in float64.
pub fn traffic_weight_to_replicas(replicas: i64, weight: i64, max_weight: i64) -> i64 {
    ((weight * replicas) as f64 / max_weight as f64).ceil() as i64
}

/// Current traffic weights reported by the traffic router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrafficWeights {
    /// Canary weight.
    pub canary: i64,
    /// Stable weight.
    pub stable: i64,
}

/// `CalculateReplicaCountsForTrafficRoutedCanary`: (canary, stable).
///
/// ```
/// use rollgit_core::argo::*;
/// let spec = CanarySpec { replicas: 10, traffic_routing: true, dynamic_stable_scale: true,
///     steps: vec![CanaryStep::weight(30)], ..Default::default() };
/// let st = WeightStatus { has_stable: true, ..Default::default() };
/// assert_eq!(traffic_routed_counts(&spec, &st, None), (3, 7));
/// ```
pub fn traffic_routed_counts(
    spec: &CanarySpec,
    st: &WeightStatus,
    weights: Option<TrafficWeights>,
) -> (i64, i64) {
    let r = spec.replicas;
    let m = spec.max_weight;
    let (explicit, weight) = canary_replicas_or_weight(spec, st);
    let min_pods = |count: i64| match spec.min_pods_per_replica_set {
        Some(mp) if count != 0 => count.max(mp.min(r)),
        _ => count,
    };
    let mut canary = match explicit {
        Some(c) => c,
        None => min_pods(traffic_weight_to_replicas(r, weight, m)),
    };
    if !spec.dynamic_stable_scale {
        return (canary, r);
    }
    let mut stable = traffic_weight_to_replicas(r, m - weight, m);
    if let Some(w) = weights {
        stable = stable.max(traffic_weight_to_replicas(r, w.stable, m));
        if st.aborted {
            canary = canary.max(traffic_weight_to_replicas(r, w.canary, m));
        }
    }
    (min_pods(canary), min_pods(stable))
}

/// Abort with dynamicStableScale: the weight to route to the canary while walking down the
/// setWeight steps in reverse. target = max(R − stable.available, canary.available), or
/// R − stable.available when abortScaleDownDelaySeconds is explicitly set; the result is the
/// weight of the latest step whose ceil(R·w/M) < target, or 0.
///
/// ```
/// use rollgit_core::argo::*;
/// let spec = CanarySpec { replicas: 10, traffic_routing: true, dynamic_stable_scale: true,
///     steps: vec![CanaryStep::weight(10), CanaryStep::weight(50), CanaryStep::weight(80)],
///     ..Default::default() };
/// assert_eq!(abort_walk_down_weight(&spec, 4, 8), 50);
/// assert_eq!(abort_walk_down_weight(&spec, 10, 0), 0);
/// ```
pub fn abort_walk_down_weight(
    spec: &CanarySpec,
    stable_available: i64,
    canary_available: i64,
) -> i64 {
    let r = spec.replicas;
    let target = if spec.abort_scale_down_delay_seconds.is_some() {
        r - stable_available
    } else {
        (r - stable_available).max(canary_available)
    };
    spec.steps
        .iter()
        .rev()
        .filter_map(|s| s.set_weight)
        .find(|w| traffic_weight_to_replicas(r, *w, spec.max_weight) < target)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Step machine (A.6)
// ---------------------------------------------------------------------------------------

/// Reasons for a pause condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseReason {
    /// CanaryPauseStep
    CanaryPauseStep,
    /// BlueGreenPause
    BlueGreenPause,
    /// InconclusiveAnalysisRun
    InconclusiveAnalysisRun,
    /// InconclusiveExperiment
    InconclusiveExperiment,
}

/// A `status.pauseConditions[]` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PauseCondition {
    /// Why the rollout is paused.
    pub reason: PauseReason,
    /// When the pause started (unix seconds).
    pub start_time: i64,
}

/// The part of a rollout's status the step machine owns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArgoState {
    /// status.currentStepIndex (0-based; ≥ len means finished).
    pub current_step_index: usize,
    /// status.pauseConditions.
    pub pause_conditions: Vec<PauseCondition>,
    /// status.controllerPause.
    pub controller_pause: bool,
    /// status.promoteFull.
    pub promote_full: bool,
    /// status.abort.
    pub aborted: bool,
    /// spec.paused.
    pub spec_paused: bool,
}

/// `kubectl argo rollouts promote` flavours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromoteMode {
    /// No flags.
    Plain,
    /// `--full`.
    Full,
    /// `--skip-current-step`.
    SkipCurrentStep,
    /// `--skip-all-steps`.
    SkipAllSteps,
}

/// What happened since the last pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgoEvent {
    /// A reconcile: `at_desired_counts` says whether the ReplicaSets (and traffic) match the
    /// current step's target (`AtDesiredReplicaCountsForCanary`).
    Reconcile {
        /// The canary/stable counts of the current step are reached.
        at_desired_counts: bool,
    },
    /// The promote command.
    Promote(PromoteMode),
    /// `kubectl argo rollouts abort`; `stable_is_current` when the stable hash equals the
    /// current pod hash.
    Abort {
        /// Stable hash == current hash.
        stable_is_current: bool,
    },
    /// The pod template or the steps changed: the status resets.
    SpecChanged,
}

/// What the controller should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgoAction {
    /// Scale / route to this weight (the current step's).
    SetWeight(i64),
    /// Add a pause condition.
    AddPauseCondition(PauseReason),
    /// Requeue at this time (a timed pause).
    RequeueAt(i64),
    /// The steps are done.
    Completed,
}

fn step_kind_is_pause(steps: &[CanaryStep], i: usize) -> Option<&Option<IntOrString>> {
    steps.get(i).and_then(|s| s.pause.as_ref())
}

/// One pass of Argo's canary step machine.
///
/// ```
/// use rollgit_core::argo::*;
/// let steps = vec![CanaryStep::weight(10), CanaryStep::pause(None)];
/// let s0 = ArgoState::default();
/// let (s1, _) = step(&steps, &s0, ArgoEvent::Reconcile { at_desired_counts: true }, 0);
/// assert_eq!(s1.current_step_index, 1);
/// let (s2, a) = step(&steps, &s1, ArgoEvent::Reconcile { at_desired_counts: true }, 5);
/// assert_eq!(a, vec![ArgoAction::AddPauseCondition(PauseReason::CanaryPauseStep)]);
/// let (s3, _) = step(&steps, &s2, ArgoEvent::Promote(PromoteMode::Plain), 6);
/// let (s4, _) = step(&steps, &s3, ArgoEvent::Reconcile { at_desired_counts: true }, 7);
/// assert_eq!(s4.current_step_index, 2);
/// ```
pub fn step(
    steps: &[CanaryStep],
    state: &ArgoState,
    event: ArgoEvent,
    now: i64,
) -> (ArgoState, Vec<ArgoAction>) {
    let mut s = state.clone();
    let mut actions = Vec::new();
    let n = steps.len();
    match event {
        ArgoEvent::SpecChanged => {
            s = ArgoState {
                spec_paused: s.spec_paused,
                ..Default::default()
            };
        }
        ArgoEvent::Abort { stable_is_current } => {
            s.aborted = true;
            s.promote_full = false;
            s.pause_conditions.clear();
            s.controller_pause = false;
            s.current_step_index = if stable_is_current { n } else { 0 };
            actions.push(ArgoAction::SetWeight(0));
        }
        ArgoEvent::Promote(mode) => match mode {
            PromoteMode::Full => s.promote_full = true,
            PromoteMode::SkipCurrentStep => {
                s.current_step_index = (s.current_step_index + 1).min(n);
                s.pause_conditions.clear();
            }
            PromoteMode::SkipAllSteps => {
                s.current_step_index = n;
                s.pause_conditions.clear();
            }
            PromoteMode::Plain => {
                s.spec_paused = false;
                if s.pause_conditions.is_empty() {
                    s.current_step_index = (s.current_step_index + 1).min(n);
                } else {
                    let inconclusive = s.pause_conditions.iter().any(|c| {
                        matches!(
                            c.reason,
                            PauseReason::InconclusiveAnalysisRun
                                | PauseReason::InconclusiveExperiment
                        )
                    });
                    s.pause_conditions.clear();
                    if inconclusive {
                        s.current_step_index = (s.current_step_index + 1).min(n);
                    }
                }
            }
        },
        ArgoEvent::Reconcile { at_desired_counts } => {
            if s.aborted {
                actions.push(ArgoAction::SetWeight(0));
                return (s, actions);
            }
            if s.promote_full || s.current_step_index >= n {
                actions.push(ArgoAction::SetWeight(100));
                if at_desired_counts {
                    s.current_step_index = n;
                    actions.push(ArgoAction::Completed);
                }
                return (s, actions);
            }
            let i = s.current_step_index;
            if let Some(pause) = step_kind_is_pause(steps, i) {
                let cond = s
                    .pause_conditions
                    .iter()
                    .find(|c| c.reason == PauseReason::CanaryPauseStep)
                    .copied();
                if cond.is_none() && !s.controller_pause {
                    s.pause_conditions.push(PauseCondition {
                        reason: PauseReason::CanaryPauseStep,
                        start_time: now,
                    });
                    s.controller_pause = true;
                    actions.push(ArgoAction::AddPauseCondition(PauseReason::CanaryPauseStep));
                    return (s, actions);
                }
                let mut done = s.controller_pause && cond.is_none();
                if let (Some(d), Some(c)) = (pause, cond) {
                    let expires = c.start_time + pause_duration_seconds(Some(d));
                    if now > expires {
                        done = true;
                    } else {
                        actions.push(ArgoAction::RequeueAt(expires + 1));
                    }
                }
                if done && !s.spec_paused {
                    advance(&mut s, n);
                }
            } else {
                let w = current_set_weight(steps, i, false, 100);
                actions.push(ArgoAction::SetWeight(w));
                if at_desired_counts && !s.spec_paused {
                    advance(&mut s, n);
                }
            }
            if s.current_step_index >= n && !actions.contains(&ArgoAction::Completed) {
                actions.push(ArgoAction::Completed);
            }
        }
    }
    (s, actions)
}

fn advance(s: &mut ArgoState, n: usize) {
    s.current_step_index = (s.current_step_index + 1).min(n);
    s.pause_conditions
        .retain(|c| c.reason != PauseReason::CanaryPauseStep);
    s.controller_pause = false;
}
