//! KubeVela rollout plans (`standard.oam.dev/v1alpha1`, v1.1–v1.3): cumulative batch targets,
//! plan validation, default batches, and the `RollingState`/`BatchRollingState` machine.
//!
//! Batches are **increments**: each percent is taken of the rollout size and rounded up on its
//! own, the rounded sizes are summed, and the last batch always returns the target size.

use crate::intstr::{self, IntOrString};

/// One KubeVela validation failure, naming the rule broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubeVelaError {
    /// `rolloutBatches` is empty.
    #[error(
        "rolloutBatches: the rollout plan has no batch (rolloutBatches is required, unless numBatches and targetSize hand the size out)"
    )]
    NoBatches,
    /// The rounded-up sum of all batches except the last reaches the total.
    #[error(
        "rolloutBatches: sum of all batches except the last ({sum}) must be less than the total size ({total})"
    )]
    LeadingBatchesTooLarge {
        /// Rounded-up sum of every batch but the last.
        sum: i64,
        /// The rollout size.
        total: i64,
    },
    /// The last batch is an int and the full sum differs from the total.
    #[error(
        "rolloutBatches: the last batch is an int, so the sum of all batches ({sum}) must equal the total size ({total})"
    )]
    BatchSumMismatch {
        /// Sum of all batches.
        sum: i64,
        /// The rollout size.
        total: i64,
    },
    /// A scale-up plan reaches the target before its last batch.
    #[error(
        "rolloutBatches: scaling from {original} to {target}, the batches before the last already reach {reached}; they must stay below the target size"
    )]
    ScaleIncreasedTooMuch {
        /// Size before the scale.
        original: i64,
        /// Target size.
        target: i64,
        /// Size after every batch but the last.
        reached: i64,
    },
    /// A scale-down plan reaches the target before its last batch.
    #[error(
        "rolloutBatches: scaling from {original} to {target}, the batches before the last already reduce to {reached}; they must stay above the target size"
    )]
    ScaleReducedTooMuch {
        /// Size before the scale.
        original: i64,
        /// Target size.
        target: i64,
        /// Size after every batch but the last.
        reached: i64,
    },
    /// A scale whose last batch is an int and whose batches do not add up to the size change.
    #[error(
        "rolloutBatches: the last batch is an int, so the batches must add up to the size change of {change} (from {original} to {target}), got {sum}"
    )]
    ScaleSumMismatch {
        /// Size before the scale.
        original: i64,
        /// Target size.
        target: i64,
        /// |target − original|.
        change: i64,
        /// Sum of all batches.
        sum: i64,
    },
    /// A no-op scale whose batches do not add up to the target.
    #[error(
        "rolloutBatches: a scale from {original} to the same size must add up to the target size {target}, got {reached}"
    )]
    NoOpScaleMismatch {
        /// Size before (= target).
        original: i64,
        /// Target size.
        target: i64,
        /// Size after the batches.
        reached: i64,
    },
    /// `batchPartition` is negative.
    #[error("batchPartition: must be >= 0, got {0}")]
    NegativeBatchPartition(i64),
    /// `numBatches` disagrees with the number of batches.
    #[error("numBatches: must equal the number of rolloutBatches ({batches}), got {num_batches}")]
    NumBatchesMismatch {
        /// Declared `numBatches`.
        num_batches: i64,
        /// `len(rolloutBatches)`.
        batches: usize,
    },
    /// Unknown `rolloutStrategy`.
    #[error("rolloutStrategy: must be IncreaseFirst or DecreaseFirst, got {0:?}")]
    BadStrategy(String),
    /// A batch's replicas does not parse or is negative.
    #[error("rolloutBatches[{index}].replicas: {value} must be a non-negative int or percent")]
    BadBatchReplicas {
        /// 0-based batch index.
        index: usize,
        /// The offending value.
        value: IntOrString,
    },
    /// A plan-level webhook of the wrong type.
    #[error("rolloutWebhooks: type must be initialize-rollout or finalize-rollout, got {0:?}")]
    BadRolloutWebhook(String),
    /// A batch-level webhook of the wrong type.
    #[error(
        "rolloutBatches[{index}].batchRolloutWebhooks: type must be pre-batch-rollout or post-batch-rollout, got {kind:?}"
    )]
    BadBatchWebhook {
        /// 0-based batch index.
        index: usize,
        /// The offending type.
        kind: String,
    },
    /// Deployment rollouts need targetSize ≥ the source size.
    #[error("targetSize: must be >= the source size ({source_size}), got {target_size}")]
    TargetBelowSource {
        /// targetSize.
        target_size: i64,
        /// Source Deployment size.
        source_size: i64,
    },
}

/// `rolloutStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RolloutStrategy {
    /// Scale the target up first (the default).
    #[default]
    IncreaseFirst,
    /// Scale the source down first.
    DecreaseFirst,
}

impl RolloutStrategy {
    /// Parse the field; an empty/absent value is IncreaseFirst.
    pub fn parse(s: Option<&str>) -> Result<Self, KubeVelaError> {
        match s {
            None | Some("") | Some("IncreaseFirst") => Ok(Self::IncreaseFirst),
            Some("DecreaseFirst") => Ok(Self::DecreaseFirst),
            Some(other) => Err(KubeVelaError::BadStrategy(other.to_string())),
        }
    }
}

/// One `rolloutBatches[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutBatch {
    /// `replicas`: an increment, int or (lenient) percent.
    pub replicas: IntOrString,
    /// The `type` of each `batchRolloutWebhooks[]`.
    pub webhook_types: Vec<String>,
}

impl RolloutBatch {
    /// A batch without webhooks.
    pub fn new(replicas: impl Into<IntOrString>) -> Self {
        RolloutBatch {
            replicas: replicas.into(),
            webhook_types: Vec::new(),
        }
    }
}

/// A `rolloutPlan`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RolloutPlan {
    /// `rolloutStrategy` as written (validated by [`validate_plan`]).
    pub rollout_strategy: Option<String>,
    /// `targetSize`.
    pub target_size: Option<i64>,
    /// `numBatches`.
    pub num_batches: Option<i64>,
    /// `rolloutBatches`.
    pub rollout_batches: Vec<RolloutBatch>,
    /// `batchPartition`: 0-based index of the last batch allowed to roll.
    pub batch_partition: Option<i64>,
    /// `paused`.
    pub paused: bool,
    /// The `type` of each plan-level `rolloutWebhooks[]`.
    pub webhook_types: Vec<String>,
}

impl RolloutPlan {
    /// The batches' replicas values.
    pub fn replicas(&self) -> Vec<IntOrString> {
        self.rollout_batches
            .iter()
            .map(|b| b.replicas.clone())
            .collect()
    }
}

/// The size of one batch out of `rollout_size`: lenient percent rounded up; an unparsable
/// value counts as 0 (the controller ignores the error).
///
/// ```
/// use rollgit_core::{intstr::IntOrString, kubevela::batch_size};
/// assert_eq!(batch_size(&IntOrString::str("20%"), 10), 2);
/// assert_eq!(batch_size(&IntOrString::str("33"), 10), 4); // "33" is 33%
/// assert_eq!(batch_size(&IntOrString::Int(2), 10), 2);
/// ```
pub fn batch_size(replicas: &IntOrString, rollout_size: i64) -> i64 {
    intstr::lenient(replicas, rollout_size, true).unwrap_or(0)
}

/// `calculateNewBatchTarget`: the **cumulative** pod target after batch `current_batch`.
///
/// The last batch (index len−1) always returns `target`. Past the last index the sum
/// includes every batch literally and is not clamped. For a scale-down the batches are
/// subtracted from `original`.
///
/// ```
/// use rollgit_core::{intstr::IntOrString, kubevela::calculate_new_batch_target};
/// let b = [IntOrString::Int(1), "20%".into(), "50%".into(), IntOrString::Int(2)];
/// let t: Vec<i64> = (0..4).map(|i| calculate_new_batch_target(&b, 0, 10, i)).collect();
/// assert_eq!(t, [1, 3, 8, 10]);
/// // scaling 30 -> 15 at batch 2: 30 - (1 + ceil(3) + ceil(7.5)) = 18
/// assert_eq!(calculate_new_batch_target(&b, 30, 15, 2), 18);
/// ```
pub fn calculate_new_batch_target(
    batches: &[IntOrString],
    original: i64,
    target: i64,
    current_batch: usize,
) -> i64 {
    if !batches.is_empty() && current_batch == batches.len() - 1 {
        return target;
    }
    let rollout_size = target.saturating_sub(original).saturating_abs();
    let sum: i64 = batches
        .iter()
        .take(current_batch.saturating_add(1))
        .map(|b| batch_size(b, rollout_size))
        .fold(0i64, i64::saturating_add);
    if original < target {
        original.saturating_add(sum)
    } else {
        original.saturating_sub(sum)
    }
}

/// The cumulative target after every batch, in order.
///
/// ```
/// use rollgit_core::{intstr::IntOrString, kubevela::cumulative_targets};
/// let b = [IntOrString::Int(2), IntOrString::Int(3)];
/// assert_eq!(cumulative_targets(&b, 0, 5), [2, 5]);
/// ```
pub fn cumulative_targets(batches: &[IntOrString], original: i64, target: i64) -> Vec<i64> {
    (0..batches.len())
        .map(|i| calculate_new_batch_target(batches, original, target, i))
        .collect()
}

/// DecreaseFirst/IncreaseFirst source goal: `total − targetGoal`.
///
/// ```
/// use rollgit_core::{intstr::IntOrString, kubevela::{cumulative_targets, source_goal}};
/// let b: Vec<IntOrString> = ["20%", "40%", "30%", "10%"].map(IntOrString::from).to_vec();
/// let goals: Vec<i64> = cumulative_targets(&b, 0, 10).iter().map(|t| source_goal(10, *t)).collect();
/// assert_eq!(goals, [8, 4, 1, 0]);
/// ```
pub fn source_goal(total: i64, target_goal: i64) -> i64 {
    total - target_goal
}

/// `DefaultRolloutBatches`: hand out `target_size` pods one at a time, round-robin
/// **starting from the last batch**, so the remainder lands on the later batches.
/// Returns an empty list when `num_batches <= 0`.
///
/// ```
/// use rollgit_core::kubevela::default_rollout_batches;
/// assert_eq!(default_rollout_batches(8, 5), [1, 1, 2, 2, 2]);
/// assert_eq!(default_rollout_batches(4, 5), [0, 1, 1, 1, 1]);
/// ```
pub fn default_rollout_batches(target_size: i64, num_batches: i64) -> Vec<i64> {
    let Ok(n) = usize::try_from(num_batches) else {
        return Vec::new();
    };
    if n == 0 {
        return Vec::new();
    }
    let n_i = num_batches;
    let base = target_size.max(0) / n_i;
    let rem = usize::try_from(target_size.max(0) % n_i).unwrap_or(0);
    (0..n).map(|i| base + i64::from(i >= n - rem)).collect()
}

/// `verifyBatchesWithRollout`: validate a plan against the rollout size.
///
/// ```
/// use rollgit_core::{intstr::IntOrString, kubevela::verify_batches_with_rollout};
/// let ok = [IntOrString::Int(2), IntOrString::Int(3)];
/// assert!(verify_batches_with_rollout(&ok, 5).is_ok());
/// let thirds: Vec<IntOrString> = ["33%", "33%", "33%", "1%"].map(IntOrString::from).to_vec();
/// let err = verify_batches_with_rollout(&thirds, 10).unwrap_err();
/// assert_eq!(err.to_string(),
///     "rolloutBatches: sum of all batches except the last (12) must be less than the total size (10)");
/// ```
pub fn verify_batches_with_rollout(
    batches: &[IntOrString],
    total: i64,
) -> Result<(), KubeVelaError> {
    let Some((last, leading)) = batches.split_last() else {
        return Err(KubeVelaError::NoBatches);
    };
    let sum: i64 = leading
        .iter()
        .map(|b| batch_size(b, total))
        .fold(0, i64::saturating_add);
    if sum >= total {
        return Err(KubeVelaError::LeadingBatchesTooLarge { sum, total });
    }
    if let IntOrString::Int(n) = last {
        let full = sum.saturating_add(*n);
        if full != total {
            return Err(KubeVelaError::BatchSumMismatch { sum: full, total });
        }
    }
    Ok(())
}

/// `verifyBatchesWithScale`: validate a scale from `original` to `target`: the batches before
/// the last must stay short of the target (or, for a no-op scale, move nothing), and when the
/// last batch is an int, all batches must add up to the size change |target − original|
/// (KubeVela v1.3.10 `workloads/common.go`; a percent last batch is not checked).
///
/// ```
/// use rollgit_core::{intstr::IntOrString, kubevela::verify_batches_with_scale};
/// let b = [IntOrString::Int(1), IntOrString::Int(1)];
/// assert!(verify_batches_with_scale(&b, 5, 7).is_ok());
/// assert!(verify_batches_with_scale(&[IntOrString::Int(2), IntOrString::Int(0)], 5, 7).is_err());
/// assert!(verify_batches_with_scale(&[IntOrString::Int(1), IntOrString::Int(3)], 5, 7).is_err());
/// assert!(verify_batches_with_scale(&[IntOrString::Int(1), IntOrString::str("100%")], 5, 7).is_ok());
/// ```
pub fn verify_batches_with_scale(
    batches: &[IntOrString],
    original: i64,
    target: i64,
) -> Result<(), KubeVelaError> {
    if batches.is_empty() {
        return Err(KubeVelaError::NoBatches);
    }
    let size = target.saturating_sub(original).saturating_abs();
    let mut reached = original;
    for b in &batches[..batches.len() - 1] {
        if target > original {
            reached = reached.saturating_add(batch_size(b, size));
        } else {
            reached = reached.saturating_sub(batch_size(b, size));
        }
    }
    if target > original {
        if reached >= target {
            return Err(KubeVelaError::ScaleIncreasedTooMuch {
                original,
                target,
                reached,
            });
        }
    } else if target < original {
        if reached <= target {
            return Err(KubeVelaError::ScaleReducedTooMuch {
                original,
                target,
                reached,
            });
        }
    } else if reached != target {
        return Err(KubeVelaError::NoOpScaleMismatch {
            original,
            target,
            reached,
        });
    }
    if let Some((IntOrString::Int(last), leading)) = batches.split_last() {
        let sum = leading
            .iter()
            .map(|b| batch_size(b, size))
            .fold(0, i64::saturating_add)
            .saturating_add(*last);
        if sum != size {
            return Err(KubeVelaError::ScaleSumMismatch {
                original,
                target,
                change: size,
                sum,
            });
        }
    }
    Ok(())
}

/// Apply the defaulting webhook: when `targetSize` and `numBatches` are set and
/// `rolloutBatches` is empty, fill the batches with [`default_rollout_batches`].
pub fn default_plan(plan: &mut RolloutPlan) {
    if let (Some(size), Some(n), true) = (
        plan.target_size,
        plan.num_batches,
        plan.rollout_batches.is_empty(),
    ) {
        plan.rollout_batches = default_rollout_batches(size, n)
            .into_iter()
            .map(RolloutBatch::new)
            .collect();
    }
}

/// The validating webhook's rules (run after [`default_plan`]).
///
/// ```
/// use rollgit_core::kubevela::{validate_plan, RolloutBatch, RolloutPlan};
/// let mut plan = RolloutPlan { rollout_batches: vec![RolloutBatch::new("0.2")], ..Default::default() };
/// assert!(validate_plan(&plan).is_err());
/// plan.rollout_batches = vec![RolloutBatch::new("20"), RolloutBatch::new(3)];
/// assert!(validate_plan(&plan).is_ok());
/// ```
pub fn validate_plan(plan: &RolloutPlan) -> Result<(), KubeVelaError> {
    if plan.rollout_batches.is_empty() {
        return Err(KubeVelaError::NoBatches);
    }
    if let Some(p) = plan.batch_partition
        && p < 0
    {
        return Err(KubeVelaError::NegativeBatchPartition(p));
    }
    if let Some(n) = plan.num_batches
        && usize::try_from(n).ok() != Some(plan.rollout_batches.len())
    {
        return Err(KubeVelaError::NumBatchesMismatch {
            num_batches: n,
            batches: plan.rollout_batches.len(),
        });
    }
    RolloutStrategy::parse(plan.rollout_strategy.as_deref())?;
    for t in &plan.webhook_types {
        if t != "initialize-rollout" && t != "finalize-rollout" {
            return Err(KubeVelaError::BadRolloutWebhook(t.clone()));
        }
    }
    for (index, b) in plan.rollout_batches.iter().enumerate() {
        match intstr::lenient_parts(&b.replicas) {
            Ok((v, _)) if v >= 0 => {}
            _ => {
                return Err(KubeVelaError::BadBatchReplicas {
                    index,
                    value: b.replicas.clone(),
                });
            }
        }
        for t in &b.webhook_types {
            if t != "pre-batch-rollout" && t != "post-batch-rollout" {
                return Err(KubeVelaError::BadBatchWebhook {
                    index,
                    kind: t.clone(),
                });
            }
        }
    }
    Ok(())
}

/// For a scale (target revision == source revision) without batches, the controller
/// writes a single batch of |target − current|.
///
/// ```
/// use rollgit_core::{intstr::IntOrString, kubevela::scale_batches};
/// assert_eq!(scale_batches(&[], 5, 7), [IntOrString::Int(2)]);
/// ```
pub fn scale_batches(batches: &[IntOrString], original: i64, target: i64) -> Vec<IntOrString> {
    if batches.is_empty() {
        vec![IntOrString::Int(
            target.saturating_sub(original).saturating_abs(),
        )]
    } else {
        batches.to_vec()
    }
}

/// Whether the rollout may move on from `current_batch` (batchReady): `batchPartition` is
/// unset or greater than the current batch.
///
/// ```
/// use rollgit_core::kubevela::batch_partition_allows_next;
/// assert!(!batch_partition_allows_next(Some(0), 0));
/// assert!(batch_partition_allows_next(Some(1), 0));
/// assert!(batch_partition_allows_next(None, 7));
/// ```
pub fn batch_partition_allows_next(batch_partition: Option<i64>, current_batch: i64) -> bool {
    batch_partition.is_none_or(|p| p > current_batch)
}

/// CloneSet rollout: the partition for a batch is `R − cumulativeTarget`.
///
/// ```
/// assert_eq!(rollgit_core::kubevela::cloneset_partition(5, 2), 3);
/// ```
pub fn cloneset_partition(replicas: i64, cumulative_target: i64) -> i64 {
    replicas - cumulative_target
}

/// A batch is verified when `ready + ceil(maxUnavailable% · R) ≥ cumulativeTarget`
/// (CloneSet: ready = updatedReady; Deployment: ready of the target, R = total size).
///
/// ```
/// use rollgit_core::{intstr::IntOrString, kubevela::batch_available};
/// assert!(batch_available(3, Some(&IntOrString::str("10%")), 10, 4));
/// assert!(!batch_available(2, Some(&IntOrString::str("10%")), 10, 4));
/// ```
pub fn batch_available(
    ready: i64,
    max_unavailable: Option<&IntOrString>,
    replicas: i64,
    cumulative_target: i64,
) -> bool {
    let unavail = max_unavailable
        .map(|m| intstr::lenient(m, replicas, true).unwrap_or(0))
        .unwrap_or(0);
    ready + unavail >= cumulative_target
}

/// Deployment rollout total size: `targetSize` if set (must be ≥ source size), else the
/// source size.
pub fn deployment_total_size(
    target_size: Option<i64>,
    source_size: i64,
) -> Result<i64, KubeVelaError> {
    match target_size {
        Some(t) if t < source_size => Err(KubeVelaError::TargetBelowSource {
            target_size: t,
            source_size,
        }),
        Some(t) => Ok(t),
        None => Ok(source_size),
    }
}

/// What a Deployment batch observes of its two Deployments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeploymentObservation {
    /// Target Deployment spec.replicas.
    pub target_spec: i64,
    /// Target Deployment ready replicas.
    pub target_ready: i64,
    /// Source Deployment spec.replicas.
    pub source_spec: i64,
    /// Source Deployment status.replicas.
    pub source_status: i64,
}

/// What the Deployment batch executor should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentAction {
    /// Scale the target Deployment to this size.
    ScaleTarget(i64),
    /// Scale the source Deployment to this size.
    ScaleSource(i64),
    /// Wait and observe again.
    Wait,
    /// The batch is verified.
    BatchVerified,
}

/// One pass of a Deployment batch (C.2, IncreaseFirst/DecreaseFirst).
///
/// ```
/// use rollgit_core::kubevela::*;
/// let obs = DeploymentObservation { target_spec: 0, target_ready: 0, source_spec: 5, source_status: 5 };
/// assert_eq!(deployment_batch_pass(RolloutStrategy::IncreaseFirst, 5, 2, 0, obs), DeploymentAction::ScaleTarget(2));
/// assert_eq!(deployment_batch_pass(RolloutStrategy::DecreaseFirst, 5, 2, 0, obs), DeploymentAction::ScaleSource(3));
/// ```
pub fn deployment_batch_pass(
    strategy: RolloutStrategy,
    total: i64,
    target_goal: i64,
    max_unavailable: i64,
    obs: DeploymentObservation,
) -> DeploymentAction {
    let src_goal = source_goal(total, target_goal);
    match strategy {
        RolloutStrategy::IncreaseFirst => {
            if obs.target_spec < target_goal {
                DeploymentAction::ScaleTarget(target_goal)
            } else if obs.target_ready + max_unavailable < target_goal {
                DeploymentAction::Wait
            } else if obs.source_spec > src_goal {
                DeploymentAction::ScaleSource(src_goal)
            } else if obs.source_status <= src_goal {
                DeploymentAction::BatchVerified
            } else {
                DeploymentAction::Wait
            }
        }
        RolloutStrategy::DecreaseFirst => {
            if obs.source_spec > src_goal {
                DeploymentAction::ScaleSource(src_goal)
            } else if obs.source_status != src_goal {
                DeploymentAction::Wait
            } else if obs.target_spec < target_goal {
                DeploymentAction::ScaleTarget(target_goal)
            } else if obs.target_ready + max_unavailable >= target_goal {
                DeploymentAction::BatchVerified
            } else {
                DeploymentAction::Wait
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// State machine (C.3)
// ---------------------------------------------------------------------------------------

/// `RollingState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RollingState {
    /// locatingTargetApp
    LocatingTargetApp,
    /// verifyingSpec
    VerifyingSpec,
    /// initializing
    Initializing,
    /// rollingInBatches
    RollingInBatches,
    /// finalising
    Finalising,
    /// rolloutFailing
    RolloutFailing,
    /// rolloutSucceed
    RolloutSucceed,
    /// rolloutAbandoning
    RolloutAbandoning,
    /// RolloutDeletingState (sic)
    RolloutDeleting,
    /// rolloutFailed
    RolloutFailed,
}

impl RollingState {
    /// The string KubeVela writes to status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LocatingTargetApp => "locatingTargetApp",
            Self::VerifyingSpec => "verifyingSpec",
            Self::Initializing => "initializing",
            Self::RollingInBatches => "rollingInBatches",
            Self::Finalising => "finalising",
            Self::RolloutFailing => "rolloutFailing",
            Self::RolloutSucceed => "rolloutSucceed",
            Self::RolloutAbandoning => "rolloutAbandoning",
            Self::RolloutDeleting => "RolloutDeletingState",
            Self::RolloutFailed => "rolloutFailed",
        }
    }

    /// Every state.
    pub const ALL: [Self; 10] = [
        Self::LocatingTargetApp,
        Self::VerifyingSpec,
        Self::Initializing,
        Self::RollingInBatches,
        Self::Finalising,
        Self::RolloutFailing,
        Self::RolloutSucceed,
        Self::RolloutAbandoning,
        Self::RolloutDeleting,
        Self::RolloutFailed,
    ];

    /// Reads a state name as [`as_str`](Self::as_str) writes it.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The condition type that matches the state.
    pub fn condition_type(self) -> &'static str {
        match self {
            Self::LocatingTargetApp | Self::VerifyingSpec => "RolloutSpecVerifying",
            Self::Initializing => "RolloutInitializing",
            Self::RollingInBatches => "RolloutInBatches",
            Self::Finalising => "RolloutFinalizing",
            Self::RolloutFailing => "RolloutFailing",
            Self::RolloutAbandoning => "RolloutAbandoning",
            Self::RolloutDeleting => "RolloutDeleting",
            Self::RolloutSucceed => "RolloutSucceed",
            Self::RolloutFailed => "RolloutFailed",
        }
    }

    /// Succeed and failed are terminal: not requeued.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::RolloutSucceed | Self::RolloutFailed)
    }
}

/// `BatchRollingState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BatchRollingState {
    /// batchInitializing
    BatchInitializing,
    /// batchInRolling
    BatchInRolling,
    /// batchVerifying
    BatchVerifying,
    /// batchVerifyFailed
    BatchVerifyFailed,
    /// batchFinalizing
    BatchFinalizing,
    /// batchReady
    BatchReady,
}

impl BatchRollingState {
    /// Reads a state name as [`as_str`](Self::as_str) writes it.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::BatchInitializing,
            Self::BatchInRolling,
            Self::BatchVerifying,
            Self::BatchVerifyFailed,
            Self::BatchFinalizing,
            Self::BatchReady,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// The string KubeVela writes to status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BatchInitializing => "batchInitializing",
            Self::BatchInRolling => "batchInRolling",
            Self::BatchVerifying => "batchVerifying",
            Self::BatchVerifyFailed => "batchVerifyFailed",
            Self::BatchFinalizing => "batchFinalizing",
            Self::BatchReady => "batchReady",
        }
    }
}

/// Events of `StateTransition`, plus the two failure setters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutEvent {
    /// AppLocatedEvent
    AppLocated,
    /// RollingSpecVerifiedEvent
    RollingSpecVerified,
    /// RollingInitializedEvent
    RollingInitialized,
    /// InitializedOneBatchEvent
    InitializedOneBatch,
    /// RolloutOneBatchEvent
    RolloutOneBatch,
    /// OneBatchAvailableEvent
    OneBatchAvailable,
    /// FinishedOneBatchEvent
    FinishedOneBatch,
    /// AllBatchFinishedEvent — the **same string** as RollingFinalizedEvent.
    AllBatchFinished,
    /// BatchRolloutApprovedEvent
    BatchRolloutApproved,
    /// BatchRolloutFailedEvent
    BatchRolloutFailed,
    /// RollingFinalizedEvent — the **same string** as AllBatchFinishedEvent.
    RollingFinalized,
    /// RollingModifiedEvent
    RollingModified,
    /// RollingDeletedEvent
    RollingDeleted,
    /// `RolloutFailed(reason)`: a terminal failure (e.g. a VerifySpec error), from any state.
    Failed(String),
    /// `RolloutFailing(reason)`: a batch sub-step or Initialize error, from any state.
    Failing(String),
}

impl RolloutEvent {
    /// The Go string value. RollingFinalized and AllBatchFinished share one.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::AppLocated => "AppLocatedEvent",
            Self::RollingSpecVerified => "RollingSpecVerifiedEvent",
            Self::RollingInitialized => "RollingInitializedEvent",
            Self::InitializedOneBatch => "InitializedOneBatchEvent",
            Self::RolloutOneBatch => "RolloutOneBatchEvent",
            Self::OneBatchAvailable => "OneBatchAvailableEvent",
            Self::FinishedOneBatch => "FinishedOneBatchEvent",
            Self::AllBatchFinished | Self::RollingFinalized => "AllBatchFinishedEvent",
            Self::BatchRolloutApproved => "BatchRolloutApprovedEvent",
            Self::BatchRolloutFailed => "BatchRolloutFailedEvent",
            Self::RollingModified => "RollingModifiedEvent",
            Self::RollingDeleted => "RollingDeletedEvent",
            Self::Failed(_) => "RollingFailedEvent",
            Self::Failing(_) => "RollingRetriableFailureEvent",
        }
    }
}

/// A status condition written by a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// Condition type, e.g. `RolloutFailed`.
    pub kind: &'static str,
    /// True for positive conditions.
    pub status: bool,
    /// Human-readable reason.
    pub message: String,
    /// Transition time (the `now` passed in).
    pub at: i64,
}

/// The rollout status the machine updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutStatus {
    /// rollingState
    pub rolling_state: RollingState,
    /// batchRollingState
    pub batch_state: BatchRollingState,
    /// currentBatch (0-based)
    pub current_batch: i64,
    /// upgradedReplicas
    pub upgraded_replicas: i64,
    /// rolloutTargetSize (−1 after a reset)
    pub rollout_target_size: i64,
    /// The latest condition set.
    pub condition: Option<Condition>,
}

impl Default for RolloutStatus {
    fn default() -> Self {
        Self::reset()
    }
}

impl RolloutStatus {
    /// `ResetStatus`: locatingTargetApp / batchInitializing, batch 0, upgraded 0, size −1.
    pub fn reset() -> Self {
        RolloutStatus {
            rolling_state: RollingState::LocatingTargetApp,
            batch_state: BatchRollingState::BatchInitializing,
            current_batch: 0,
            upgraded_replicas: 0,
            rollout_target_size: -1,
            condition: None,
        }
    }
}

/// What the controller should do after a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutAction {
    /// Write this condition to status.
    SetCondition(Condition),
    /// Requeue on a timer (every non-terminal state).
    Requeue,
}

/// `StateTransition`: apply one event. Illegal transitions set `rolloutFailed` with a
/// negative condition naming the state and event.
///
/// ```
/// use rollgit_core::kubevela::*;
/// let s = RolloutStatus::reset();
/// let (s, _) = step(&s, &RolloutEvent::AppLocated, 0);
/// assert_eq!(s.rolling_state, RollingState::VerifyingSpec);
/// // an event the state does not accept fails the rollout
/// let (s, _) = step(&s, &RolloutEvent::RolloutOneBatch, 0);
/// assert_eq!(s.rolling_state, RollingState::RolloutFailed);
/// ```
pub fn step(
    status: &RolloutStatus,
    event: &RolloutEvent,
    now: i64,
) -> (RolloutStatus, Vec<RolloutAction>) {
    let mut s = status.clone();
    let before = s.rolling_state;
    let mut cond: Option<Condition> = None;
    let negative = |state: RollingState, message: String| Condition {
        kind: state.condition_type(),
        status: false,
        message,
        at: now,
    };
    let illegal = |s: &mut RolloutStatus| {
        let c = Condition {
            kind: RollingState::RolloutFailed.condition_type(),
            status: false,
            message: format!(
                "invalid rolling state transition: state {} (batch {}) does not accept event {}",
                s.rolling_state.as_str(),
                s.batch_state.as_str(),
                event.as_str()
            ),
            at: now,
        };
        s.rolling_state = RollingState::RolloutFailed;
        c
    };
    // RollingFinalizedEvent == AllBatchFinishedEvent as strings: treat them as one event.
    let finalized = matches!(
        event,
        RolloutEvent::RollingFinalized | RolloutEvent::AllBatchFinished
    );
    use BatchRollingState as B;
    use RollingState as R;
    match event {
        RolloutEvent::Failed(reason) => {
            cond = Some(negative(before, reason.clone()));
            s.rolling_state = R::RolloutFailed;
        }
        RolloutEvent::Failing(reason) => {
            cond = Some(negative(before, reason.clone()));
            s.rolling_state = R::RolloutFailing;
            s.batch_state = B::BatchInitializing;
        }
        RolloutEvent::RollingModified => match before {
            R::RolloutSucceed | R::RolloutFailed => s = RolloutStatus::reset(),
            R::RolloutDeleting => cond = Some(illegal(&mut s)),
            _ => {
                cond = Some(negative(before, "the rollout spec was modified".into()));
                s.rolling_state = R::RolloutAbandoning;
                s.batch_state = B::BatchInitializing;
            }
        },
        RolloutEvent::RollingDeleted => {
            if before.is_terminal() {
                cond = Some(illegal(&mut s));
            } else {
                cond = Some(negative(before, "Rollout is being deleted".into()));
                s.rolling_state = R::RolloutDeleting;
                s.batch_state = B::BatchInitializing;
            }
        }
        RolloutEvent::AppLocated => {
            if before == R::LocatingTargetApp {
                s.rolling_state = R::VerifyingSpec;
            }
        }
        _ => match (before, s.batch_state) {
            (R::VerifyingSpec, _) if *event == RolloutEvent::RollingSpecVerified => {
                s.rolling_state = R::Initializing;
            }
            (R::Initializing, _) if *event == RolloutEvent::RollingInitialized => {
                s.rolling_state = R::RollingInBatches;
                s.batch_state = B::BatchInitializing;
            }
            (R::RollingInBatches, _) if *event == RolloutEvent::BatchRolloutFailed => {
                s.batch_state = B::BatchVerifyFailed;
                s.rolling_state = R::RolloutFailed;
                cond = Some(negative(before, "batch rollout failed".into()));
            }
            (R::RollingInBatches, B::BatchInitializing)
                if *event == RolloutEvent::InitializedOneBatch =>
            {
                s.batch_state = B::BatchInRolling;
            }
            (R::RollingInBatches, B::BatchInRolling) if *event == RolloutEvent::RolloutOneBatch => {
                s.batch_state = B::BatchVerifying;
            }
            (R::RollingInBatches, B::BatchVerifying)
                if *event == RolloutEvent::OneBatchAvailable =>
            {
                s.batch_state = B::BatchFinalizing;
            }
            (R::RollingInBatches, B::BatchFinalizing)
                if *event == RolloutEvent::FinishedOneBatch =>
            {
                s.batch_state = B::BatchReady;
            }
            (R::RollingInBatches, B::BatchFinalizing) if finalized => {
                s.batch_state = B::BatchReady;
                s.rolling_state = R::Finalising;
            }
            (R::RollingInBatches, B::BatchReady)
                if *event == RolloutEvent::BatchRolloutApproved =>
            {
                s.batch_state = B::BatchInitializing;
                s.current_batch += 1;
            }
            (R::Finalising, _) if finalized => s.rolling_state = R::RolloutSucceed,
            (R::RolloutFailing, _) if finalized => s.rolling_state = R::RolloutFailed,
            (R::RolloutDeleting, _) if finalized => s.rolling_state = R::RolloutFailed,
            (R::RolloutAbandoning, _) if finalized => s = RolloutStatus::reset(),
            _ => cond = Some(illegal(&mut s)),
        },
    }
    let mut actions = Vec::new();
    if let Some(c) = cond {
        s.condition = Some(c.clone());
        actions.push(RolloutAction::SetCondition(c));
    } else if s.rolling_state != before {
        let c = Condition {
            kind: s.rolling_state.condition_type(),
            status: true,
            message: format!("{} -> {}", before.as_str(), s.rolling_state.as_str()),
            at: now,
        };
        s.condition = Some(c.clone());
        actions.push(RolloutAction::SetCondition(c));
    }
    if !s.rolling_state.is_terminal() {
        actions.push(RolloutAction::Requeue);
    }
    (s, actions)
}
