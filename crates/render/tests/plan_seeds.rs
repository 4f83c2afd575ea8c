//! `plan_document` on the seed examples; the numbers are the ones the seed transcripts show
//! (seed 000 TARGET/UPGRADED columns and Deployment sizes, seed 002's 10%/15% examples), or
//! follow from ROLLOUT-SEMANTICS.md where the seed shows no counts. (The table and JSON printing
//! is the CLI's: `tests/plan_cli.rs` of the root package.)

use rollgit_render::plan::{Flavor, Pause, Plan, PlanError, PlanOptions, plan_document};

fn plan_from_yaml(text: &str, opts: &PlanOptions) -> Result<Plan, PlanError> {
    plan_document("spec.yaml", text.as_bytes(), opts)
}

/// (new, old, weight, pause) per step.
type Row = (i64, i64, Option<i64>, Option<Pause>);

struct Case {
    name: &'static str,
    yaml: &'static str,
    opts: PlanOptions,
    flavor: Flavor,
    replicas: i64,
    surge_unavail: (Option<i64>, Option<i64>),
    rows: &'static [Row],
}

const M: Option<Pause> = Some(Pause::Manual);
const NONE: PlanOptions = PlanOptions {
    replicas: None,
    from_replicas: None,
};

#[test]
fn seed_plans() {
    let cases = [
        Case {
            name: "seed000 first release 2+3 ends at TARGET 5 UPGRADED 5",
            yaml: include_str!("fixtures/plan/seed000_trait_first.yaml"),
            opts: NONE,
            flavor: Flavor::KubeVela,
            replicas: 5,
            surge_unavail: (None, None),
            rows: &[(2, 3, None, None), (5, 0, None, None)],
        },
        Case {
            name: "seed000 batchPartition 0 stops at v1 3/3 and v2 2/2",
            yaml: include_str!("fixtures/plan/seed000_trait_partition.yaml"),
            opts: NONE,
            flavor: Flavor::KubeVela,
            replicas: 5,
            surge_unavail: (None, None),
            rows: &[(2, 3, None, M), (5, 0, None, None)],
        },
        Case {
            name: "seed000 scale 5 to 7 is one batch of 2",
            yaml: include_str!("fixtures/plan/seed000_trait_scale_up.yaml"),
            opts: PlanOptions {
                replicas: None,
                from_replicas: Some(5),
            },
            flavor: Flavor::KubeVela,
            replicas: 7,
            surge_unavail: (None, None),
            rows: &[(7, 0, None, None)],
        },
        Case {
            name: "seed000 scale 7 down to 5 is one batch of 2",
            yaml: include_str!("fixtures/plan/seed000_trait_scale_down.yaml"),
            opts: PlanOptions {
                replicas: None,
                from_replicas: Some(7),
            },
            flavor: Flavor::KubeVela,
            replicas: 5,
            surge_unavail: (None, None),
            rows: &[(5, 0, None, None)],
        },
        Case {
            name: "seed000 cloneset component 2+3",
            yaml: include_str!("fixtures/plan/seed000_cloneset.yaml"),
            opts: NONE,
            flavor: Flavor::KubeVela,
            replicas: 5,
            surge_unavail: (None, None),
            rows: &[(2, 3, None, None), (5, 0, None, None)],
        },
        Case {
            name: "seed001 AppRollout 1/50%/50% of 5 with batchPartition 1",
            yaml: include_str!("fixtures/plan/seed001_approllout_partition.yaml"),
            opts: NONE,
            flavor: Flavor::KubeVela,
            replicas: 5,
            surge_unavail: (None, None),
            rows: &[(1, 4, None, None), (4, 1, None, M), (5, 0, None, None)],
        },
        Case {
            name: "seed001 AppRollout 10%/40%/50% of 5 rounds each batch up",
            yaml: include_str!("fixtures/plan/seed001_approllout_v1.yaml"),
            opts: NONE,
            flavor: Flavor::KubeVela,
            replicas: 5,
            surge_unavail: (None, None),
            rows: &[(1, 4, None, None), (3, 2, None, None), (5, 0, None, None)],
        },
        Case {
            name: "seed001 AppRollout 1/2/2",
            yaml: include_str!("fixtures/plan/seed001_approllout_v2.yaml"),
            opts: NONE,
            flavor: Flavor::KubeVela,
            replicas: 5,
            surge_unavail: (None, None),
            rows: &[(1, 4, None, None), (3, 2, None, None), (5, 0, None, None)],
        },
        Case {
            name: "seed001 --replicas 10 overrides the component size; a percent last batch absorbs",
            yaml: include_str!("fixtures/plan/seed001_approllout_partition.yaml"),
            opts: PlanOptions {
                replicas: Some(10),
                from_replicas: None,
            },
            flavor: Flavor::KubeVela,
            replicas: 10,
            surge_unavail: (None, None),
            rows: &[(1, 9, None, None), (6, 4, None, M), (10, 0, None, None)],
        },
        Case {
            name: "seed002 canary: 10% of 10 is 1 new and 9 old",
            yaml: include_str!("fixtures/plan/seed002_argo_canary.yaml"),
            opts: NONE,
            flavor: Flavor::Argo,
            replicas: 10,
            surge_unavail: (Some(3), Some(0)),
            rows: &[
                (1, 9, Some(10), None),
                (1, 9, Some(10), Some(Pause::Seconds(3600))),
                (2, 8, Some(20), None),
                (2, 8, Some(20), M),
            ],
        },
        Case {
            name: "seed002 pauses: 15% of 10 is 2 new and 9 old; 10=10s, 10m=600, 10h=36000",
            yaml: include_str!("fixtures/plan/seed002_argo_pauses.yaml"),
            opts: NONE,
            flavor: Flavor::Argo,
            replicas: 10,
            surge_unavail: (Some(3), Some(2)),
            rows: &[
                (2, 9, Some(15), None),
                (2, 9, Some(15), Some(Pause::Seconds(10))),
                (2, 9, Some(15), Some(Pause::Seconds(10))),
                (2, 9, Some(15), Some(Pause::Seconds(600))),
                (2, 9, Some(15), Some(Pause::Seconds(36000))),
                (2, 9, Some(15), M),
            ],
        },
        Case {
            name: "seed002 setCanaryScale: 90% of traffic to 1 canary pod, then match, then 3",
            yaml: include_str!("fixtures/plan/seed002_argo_canary_scale.yaml"),
            opts: NONE,
            flavor: Flavor::Argo,
            replicas: 10,
            surge_unavail: (Some(3), Some(2)),
            rows: &[
                (1, 10, Some(0), None),
                (1, 10, Some(90), None),
                (1, 10, Some(90), M),
                (9, 10, Some(90), None),
                (3, 10, Some(90), None),
            ],
        },
        Case {
            name: "seed002 dynamicStableScale shrinks the stable with the weight",
            yaml: include_str!("fixtures/plan/seed002_argo_dynamic_stable.yaml"),
            opts: NONE,
            flavor: Flavor::Argo,
            replicas: 4,
            surge_unavail: (Some(1), Some(1)),
            rows: &[
                (1, 3, Some(25), None),
                (1, 3, Some(25), M),
                (3, 1, Some(75), None),
            ],
        },
        Case {
            name: "seed004 ingress example with --replicas 4 (Deployment partition, 50% of 4)",
            yaml: include_str!("fixtures/plan/seed004_kruise_ingress.yaml"),
            opts: PlanOptions {
                replicas: Some(4),
                from_replicas: None,
            },
            flavor: Flavor::Kruise,
            replicas: 4,
            surge_unavail: (None, None),
            rows: &[
                (1, 3, None, M),
                (2, 2, Some(50), Some(Pause::Seconds(60))),
                (4, 0, Some(100), None),
            ],
        },
        Case {
            name: "seed004 batch example with its Deployment of 5: 50% of 5 is 3",
            yaml: include_str!("fixtures/plan/seed004_kruise_batches.yaml"),
            opts: NONE,
            flavor: Flavor::Kruise,
            replicas: 5,
            surge_unavail: (None, None),
            rows: &[
                (1, 4, None, M),
                (3, 2, None, Some(Pause::Seconds(60))),
                (5, 0, Some(100), None),
            ],
        },
        Case {
            name: "kruise v1beta1 CloneSet of 10 with traffic",
            yaml: include_str!("fixtures/plan/kruise_v1beta1_cloneset.yaml"),
            opts: NONE,
            flavor: Flavor::Kruise,
            replicas: 10,
            surge_unavail: (None, None),
            rows: &[
                (1, 9, Some(10), M),
                (3, 7, Some(30), Some(Pause::Seconds(0))),
                (10, 0, None, None),
            ],
        },
    ];
    for c in cases {
        let plan = plan_from_yaml(c.yaml, &c.opts).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(plan.flavor, c.flavor, "{}", c.name);
        assert_eq!(plan.replicas, c.replicas, "{}", c.name);
        assert_eq!(
            (plan.max_surge, plan.max_unavailable),
            c.surge_unavail,
            "{}",
            c.name
        );
        let rows: Vec<Row> = plan
            .steps
            .iter()
            .map(|s| (s.new, s.old, s.weight, s.pause))
            .collect();
        assert_eq!(rows, c.rows, "{}", c.name);
        for (i, s) in plan.steps.iter().enumerate() {
            assert_eq!(s.index, i, "{}: indexes are 0-based", c.name);
        }
    }
}

fn line_of(text: &str, needle: &str) -> u32 {
    let idx = text
        .lines()
        .position(|l| l.contains(needle))
        .expect("needle present");
    u32::try_from(idx + 1).expect("small file")
}

#[test]
fn invalid_specs_name_the_rule_and_line() {
    struct Bad {
        name: &'static str,
        yaml: &'static str,
        opts: PlanOptions,
        line_of: &'static str,
        message: &'static str,
    }
    let cases = [
        Bad {
            name: "kubevela thirds of 10 sum to 12",
            yaml: include_str!("fixtures/plan/kubevela_bad_thirds.yaml"),
            opts: NONE,
            line_of: "rolloutBatches:",
            message: "AppRollout \"thirds\": rolloutBatches: sum of all batches except the last (12) must be less than the total size (10)",
        },
        Bad {
            name: "argo has no d unit",
            yaml: include_str!("fixtures/plan/argo_bad_pause.yaml"),
            opts: NONE,
            line_of: "duration: 1d",
            message: "argo: steps[1].pause.duration: Duration needs to be greater than 0",
        },
        Bad {
            name: "kruise partition-percent-limit with traffic (v1beta1)",
            yaml: include_str!("fixtures/plan/kruise_v1beta1_bad_limit.yaml"),
            opts: PlanOptions {
                replicas: Some(10),
                from_replicas: None,
            },
            line_of: "replicas: 80%",
            message: "kruise: steps[1].replicas: For partition style rollout",
        },
        Bad {
            name: "seed000 partition plan does not add up to a bigger --replicas",
            yaml: include_str!("fixtures/plan/seed000_trait_first.yaml"),
            opts: PlanOptions {
                replicas: Some(6),
                from_replicas: None,
            },
            line_of: "rolloutBatches:",
            message: "kubevela: rolloutBatches: the last batch is an int, so the sum of all batches (5) must equal the total size (6)",
        },
    ];
    for c in cases {
        let err = plan_from_yaml(c.yaml, &c.opts).expect_err(c.name);
        let [e] = err.errors() else {
            panic!("{}: one error expected: {err}", c.name)
        };
        assert!(e.message.starts_with(c.message), "{}: {err}", c.name);
        assert_eq!(
            err.line(),
            Some(line_of(c.yaml, c.line_of)),
            "{}: {err}",
            c.name
        );
    }
}

#[test]
fn kruise_without_workload_needs_replicas() {
    let err = plan_from_yaml(
        include_str!("fixtures/plan/seed004_kruise_ingress.yaml"),
        &NONE,
    )
    .expect_err("no workload");
    assert!(matches!(err, PlanError::UnknownReplicas { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "spec.yaml: Deployment echoserver: the replica count is unknown; put the workload in the file or pass --replicas"
    );
}

#[test]
fn yaml_errors_carry_a_line() {
    let err = plan_from_yaml("kind: Rollout\nspec: [1,\n", &NONE).expect_err("bad yaml");
    assert!(matches!(err, PlanError::Invalid(_)));
    assert!(err.line().is_some(), "{err:?}");
    assert!(
        err.errors()[0].message.starts_with("invalid YAML: "),
        "{err}"
    );
}

#[test]
fn field_type_errors_carry_line_and_field() {
    let y = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nspec:\n  replicas: 3\n  strategy:\n    canary:\n      steps:\n      - setWeight: ten\n";
    let err = plan_from_yaml(y, &NONE).expect_err("bad field");
    assert_eq!(err.line(), Some(8));
    assert_eq!(
        err.to_string(),
        "spec.yaml:8: argo: steps[0].setWeight: must be an integer, got \"ten\""
    );
    assert_eq!(
        err.errors()[0].field.as_deref(),
        Some("spec.strategy.canary.steps[0].setWeight")
    );
}

#[test]
fn no_rollout_in_file() {
    let err = plan_from_yaml("apiVersion: v1\nkind: ConfigMap\n", &NONE).expect_err("none");
    assert_eq!(
        err,
        PlanError::NoRollout {
            path: "spec.yaml".into()
        }
    );
}
