//! rollgit in the cluster it manages: the `deploy/` base against the dev cluster (a server-side
//! dry run, then the rights it grants as `kubectl auth can-i` reports them), least-privilege
//! operation (rollgit run as a ServiceAccount bound to exactly the documented namespace
//! rules, CRDs installed by an admin), and tenant lock-down (`allow` rules, and applying as
//! the tenant's ServiceAccount so that the dev cluster's RBAC decides).

mod common;

use common::world::{GitRepo, World, wait_for};
use common::{TestCluster, WAIT};
use kube::api::{Api, DynamicObject};
use rollgit::config::{ClusterScopedRaw, RawAllow};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `rollgit run` as a separate process with `args` (its log in `log`).
fn spawn_rollgit(args: &[&str], kubeconfig: &Path, log: &Path) -> tokio::process::Child {
    let log = std::fs::File::create(log).expect("a log file");
    tokio::process::Command::new(env!("CARGO_BIN_EXE_rollgit"))
        .arg("run")
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env_remove("KUBECONFIG")
        .env("ROLLGIT_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("rollgit run starts")
}

/// Waits, bounded by [`WAIT`], until the file `log` holds `text`; returns the log.
async fn wait_log(log: &Path, text: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let have = std::fs::read_to_string(log).unwrap_or_default();
        if have.contains(text) {
            return have;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the log never said {text:?} within {WAIT:?}:\n{have}"
        );
        // A log file has no watch; poll it.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn apps(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        ns,
        &rollgit::record::status::application_resource(),
    )
}

/// Waits until app `app` in `ns` applied `commit` and is healthy.
async fn wait_applied(
    client: &kube::Client,
    ns: &str,
    app: &str,
    commit: &str,
) -> serde_json::Value {
    wait_for(
        &apps(client, ns),
        app,
        &format!("{app} applied {commit} in {ns}"),
        |o: Option<&DynamicObject>| {
            o.is_some_and(|o| {
                o.data["status"]["lastAppliedCommit"] == commit
                    && o.data["status"]["healthy"] == true
            })
        },
    )
    .await
    .expect("the app exists")
    .data["status"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_base_passes_a_server_side_dry_run_and_grants_only_what_rollgit_uses() {
    let c = TestCluster::start().await;
    let deploy = repo_root().join("deploy");
    let deploy = deploy.to_str().expect("a UTF-8 path");
    // The namespaced objects of a dry run need their namespace (as on kube-apiserver).
    c.kubectl_ok(&["create", "namespace", "rollgit-system"])
        .await;
    let out = c
        .kubectl_ok(&["apply", "--dry-run=server", "-k", deploy])
        .await;
    for what in [
        "customresourcedefinition.apiextensions.k8s.io/applications.rollgit.dev created (server dry run)",
        "clusterrole.rbac.authorization.k8s.io/rollgit created (server dry run)",
        "deployment.apps/rollgit created (server dry run)",
        "service/rollgit created (server dry run)",
        "configmap/rollgit-config created (server dry run)",
    ] {
        assert!(out.contains(what), "{what}\n{out}");
    }
    assert!(
        c.kubectl(&["get", "deployment", "rollgit", "-n", "rollgit-system"])
            .await
            .code
            != Some(0),
        "a dry run creates nothing"
    );
    // Applied for real: two replicas, and the ServiceAccount's rights as kubectl sees them.
    c.kubectl_ok(&["apply", "-k", deploy]).await;
    let d = c
        .kubectl_json(&[
            "get",
            "deployment",
            "rollgit",
            "-n",
            "rollgit-system",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        true
    );
    assert_eq!(
        pod["containers"][0]["readinessProbe"]["httpGet"]["path"],
        "/readyz"
    );
    assert_eq!(
        pod["containers"][0]["livenessProbe"]["httpGet"]["path"],
        "/livez"
    );
    let sa = "--as=system:serviceaccount:rollgit-system:rollgit";
    let cases = [
        (
            vec!["patch", "customresourcedefinitions.apiextensions.k8s.io"],
            "yes",
        ),
        (vec!["patch", "deployments.apps", "-n", "team-a"], "yes"),
        (vec!["delete", "configmaps", "-n", "team-a"], "yes"),
        (
            vec!["impersonate", "serviceaccounts", "-n", "team-a"],
            "yes",
        ),
        (
            vec![
                "update",
                "leases.coordination.k8s.io",
                "-n",
                "rollgit-system",
            ],
            "yes",
        ),
        (vec!["deletecollection", "configmaps", "-n", "team-a"], "no"),
        (vec!["bind", "clusterroles.rbac.authorization.k8s.io"], "no"),
        (
            vec!["escalate", "clusterroles.rbac.authorization.k8s.io"],
            "no",
        ),
        (vec!["impersonate", "users"], "no"),
        (vec!["impersonate", "groups"], "no"),
    ];
    for (args, want) in cases {
        let mut all = vec!["auth", "can-i"];
        all.extend(args.iter().copied());
        all.push(sa);
        let r = c.kubectl(&all).await;
        assert_eq!(r.stdout.trim(), want, "kubectl {all:?}: {}", r.stderr);
    }
}

/// The documented namespace-scoped rights: the CRD reader (cluster) and the Role in each
/// watched namespace, bound to `rollgit-system/rollgit`.
async fn grant_namespaced_rights(c: &TestCluster, namespaces: &[&str], role: &Path) {
    c.kubectl_ok(&["create", "namespace", "rollgit-system"])
        .await;
    c.kubectl_ok(&[
        "-n",
        "rollgit-system",
        "create",
        "serviceaccount",
        "rollgit",
    ])
    .await;
    let reader = repo_root().join("deploy/namespaced/crd-reader.yaml");
    c.kubectl_ok(&["apply", "-f", reader.to_str().expect("UTF-8")])
        .await;
    for ns in namespaces {
        c.kubectl_ok(&["create", "namespace", ns]).await;
        c.kubectl_ok(&["-n", ns, "apply", "-f", role.to_str().expect("UTF-8")])
            .await;
    }
}

const WEB: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: example/web:1
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollgit_runs_as_a_service_account_with_only_the_documented_namespace_rights() {
    let c = TestCluster::start_with(|c| {
        c.simulation.ready_delay = Duration::from_millis(100);
    })
    .await;
    let admin = c.client().await;
    let role = repo_root().join("deploy/namespaced/role.yaml");
    grant_namespaced_rights(&c, &["team-a"], &role).await;
    let kubeconfig = c.service_account_kubeconfig("rollgit-system", "rollgit");
    let git = GitRepo::with_remote().await;
    git.write("apps/web/web.yaml", WEB);
    let commit = git.commit_and_push("web").await;
    let state = tempfile::tempdir().expect("state dir");
    let log = state.path().join("rollgit.log");
    let url = git.url();
    let args = [
        "--repo",
        url.as_str(),
        "--path",
        "apps/*",
        "--namespace",
        "team-a",
        "--interval",
        "1s",
        "--install-crds=false",
        "--watch-namespaces",
        "team-a",
        "--state-dir",
    ];
    let mut all: Vec<&str> = args.to_vec();
    let state_dir = state.path().join("state");
    all.push(state_dir.to_str().expect("UTF-8"));

    // CRDs not installed yet: rollgit says what is missing and who installs it, and waits.
    let mut daemon = spawn_rollgit(&all, &kubeconfig, &log);
    wait_log(
        &log,
        "CRD applications.rollgit.dev is not installed (--install-crds=false); an admin installs it with `rollgit crds | kubectl apply -f -`",
    )
    .await;
    // The admin installs them; rollgit goes on by itself.
    rollgit::k8s::crds::ensure_crds(&admin)
        .await
        .expect("the admin installs the CRDs");
    let status = wait_applied(&admin, "team-a", "web", &commit).await;
    assert_eq!(status["phase"], "running", "{status:#}");
    let cm: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(admin.clone(), "team-a");
    assert!(cm.get_opt("web-config").await.expect("get").is_some());
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !text.contains("permission denied") && !text.contains("lacks a permission"),
        "no request of rollgit was refused:\n{text}"
    );
    // Drift is seen through the namespace's watch.
    c.kubectl_ok(&[
        "-n",
        "team-a",
        "patch",
        "configmap",
        "web-config",
        "-p",
        r#"{"data":{"greeting":"changed"}}"#,
    ])
    .await;
    wait_for(
        &cm,
        "web-config",
        "drift corrected",
        |o: Option<&k8s_openapi::api::core::v1::ConfigMap>| {
            o.and_then(|o| o.data.as_ref())
                .and_then(|d| d.get("greeting"))
                .map(String::as_str)
                == Some("hello")
        },
    )
    .await;
    daemon.kill().await.expect("kill rollgit");

    // Without list and watch on Deployments, the one error names the verb, resource and scope.
    let narrow = std::fs::read_to_string(&role).expect("read the Role");
    let narrow = narrow.replace(
        "  resources: [controllerrevisions, deployments, deployments/scale, statefulsets, replicasets]\n  verbs: [get, list, watch, create, update, patch, delete]",
        "  resources: [controllerrevisions, deployments, deployments/scale, statefulsets, replicasets]\n  verbs: [get, create, update, patch, delete]\n- apiGroups: [apps]\n  resources: [controllerrevisions, statefulsets, replicasets]\n  verbs: [list, watch]",
    );
    assert_ne!(
        narrow,
        std::fs::read_to_string(&role).expect("read"),
        "the Role was narrowed"
    );
    let narrow_file = c.file("narrow-role.yaml", &narrow);
    c.kubectl_ok(&[
        "-n",
        "team-a",
        "apply",
        "-f",
        narrow_file.to_str().expect("UTF-8"),
    ])
    .await;
    let log2 = state.path().join("rollgit-narrow.log");
    daemon = spawn_rollgit(&all, &kubeconfig, &log2);
    let text = wait_log(&log2, "lacks a permission").await;
    let line = text
        .lines()
        .find(|l| l.contains("lacks a permission"))
        .expect("the line");
    assert!(
        line.contains(r#"cannot list resource \"deployments\" in API group \"apps\" in the namespace \"team-a\""#)
            || line.contains(r#"cannot list resource "deployments" in API group "apps" in the namespace "team-a""#),
        "{line}"
    );
    daemon.kill().await.expect("kill rollgit");
}

fn locked_down(repo: &mut rollgit::config::RawRepo) {
    repo.allow = Some(RawAllow {
        namespaces: Some(vec!["default".into(), "team-a-*".into()]),
        cluster_scoped: Some(ClusterScopedRaw::All(false)),
        kinds: None,
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_write_to_kube_system_bind_cluster_roles_or_reach_another_tenant() {
    let git = GitRepo::with_remote().await;
    git.write(
        "apps/team/ok.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\ndata: {a: \"1\"}\n",
    );
    git.commit_and_push("ok").await;
    let w = World::start_configured(git, |_| {}, locked_down).await;
    let cms = |ns: &str| -> Api<k8s_openapi::api::core::v1::ConfigMap> {
        Api::namespaced(w.client.clone(), ns)
    };
    let team_apps = apps(&w.client, "default");
    wait_for(
        &team_apps,
        "team",
        "the first commit applied",
        |o: Option<&DynamicObject>| o.is_some_and(|o| o.data["status"]["phase"] == "running"),
    )
    .await;
    assert!(cms("default").get_opt("ok").await.expect("get").is_some());

    let cases = [
        (
            "kube-system",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sneaky, namespace: kube-system}\n",
            r#"apps/team/bad.yaml:1: ConfigMap kube-system/sneaky: namespace "kube-system" is not allowed for repository "deploy" (allow.namespaces: default, team-a-*)"#,
        ),
        (
            "a ClusterRoleBinding",
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: me-admin}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: User, name: me, apiGroup: rbac.authorization.k8s.io}]\n",
            r#"apps/team/bad.yaml:1: ClusterRoleBinding.rbac.authorization.k8s.io me-admin: cluster-scoped rbac.authorization.k8s.io/ClusterRoleBinding is not allowed for repository "deploy" (allow.clusterScoped: false)"#,
        ),
        (
            "another tenant's namespace",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: theirs, namespace: team-b}\nstringData: {a: b}\n",
            r#"apps/team/bad.yaml:1: Secret team-b/theirs: namespace "team-b" is not allowed for repository "deploy""#,
        ),
    ];
    for (name, bad, want) in cases {
        // The allowed change in the same commit is not applied either: the commit is rejected whole.
        w.git.write(
            "apps/team/ok.yaml",
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: ok}}\ndata: {{a: \"{name}\"}}\n"
            ),
        );
        let commit = w.push("apps/team/bad.yaml", bad, name).await;
        let app = wait_for(
            &team_apps,
            "team",
            &format!("{name}: rejected"),
            |o: Option<&DynamicObject>| {
                o.is_some_and(|o| {
                    o.data["status"]["lastAttemptedCommit"] == commit.as_str()
                        && o.data["status"]["phase"] == "failed"
                })
            },
        )
        .await
        .expect("the app exists");
        let errors = app.data["status"].to_string();
        assert!(
            errors.contains(&want.replace('"', "\\\"")),
            "{name}: {want}\n{errors}"
        );
        assert_eq!(
            cms("default")
                .get("ok")
                .await
                .expect("get")
                .data
                .and_then(|d| d.get("a").cloned())
                .as_deref(),
            Some("1"),
            "{name}: nothing of the commit applied"
        );
    }
    assert!(
        cms("kube-system")
            .get_opt("sneaky")
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        Api::<k8s_openapi::api::core::v1::Secret>::namespaced(w.client.clone(), "team-b")
            .get_opt("theirs")
            .await
            .expect("get")
            .is_none()
    );
    let crb: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> = Api::all(w.client.clone());
    assert!(crb.get_opt("me-admin").await.expect("get").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_as_the_tenants_service_account_lets_the_clusters_rbac_decide() {
    let git = GitRepo::with_remote().await;
    git.write(
        "apps/team/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: allowed}\ndata: {a: \"1\"}\n",
    );
    git.commit_and_push("cm").await;
    let w = World::start_configured(
        git,
        |_| {},
        |r| {
            r.service_account_name = Some("deployer".into());
        },
    )
    .await;
    // The tenant's ServiceAccount may manage ConfigMaps in its namespace, and nothing else.
    w.cluster
        .kubectl_ok(&["-n", "default", "create", "serviceaccount", "deployer"])
        .await;
    w.cluster
        .kubectl_ok(&[
            "-n",
            "default",
            "create",
            "role",
            "deployer",
            "--verb=get,list,watch,create,update,patch,delete",
            "--resource=configmaps",
        ])
        .await;
    w.cluster
        .kubectl_ok(&[
            "-n",
            "default",
            "create",
            "rolebinding",
            "deployer",
            "--role=deployer",
            "--serviceaccount=default:deployer",
        ])
        .await;
    // The first commit was refused (the ServiceAccount did not exist): the next one lands.
    let granted = w
        .push(
            "apps/team/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: allowed}\ndata: {a: \"1\", b: \"granted\"}\n",
            "after the grant",
        )
        .await;
    let app_api = apps(&w.client, "default");
    wait_applied(&w.client, "default", "team", &granted).await;
    let cm: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(w.client.clone(), "default");
    let applied = cm.get("allowed").await.expect("the ConfigMap is applied");
    let managers: Vec<String> = applied
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(
        managers,
        ["rollgit"],
        "applied under rollgit's field manager"
    );

    // A Secret is outside the ServiceAccount's rights: the dev cluster's RBAC refuses it, and
    // the commit is rejected whole (the ConfigMap change is not applied).
    w.git.write(
        "apps/team/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: allowed}\ndata: {a: \"2\"}\n",
    );
    let commit = w
        .push(
            "apps/team/secret.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {token: x}\n",
            "a secret",
        )
        .await;
    let app = wait_for(
        &app_api,
        "team",
        "rejected by RBAC",
        |o: Option<&DynamicObject>| {
            o.is_some_and(|o| {
                o.data["status"]["lastAttemptedCommit"] == commit.as_str()
                    && o.data["status"]["phase"] == "failed"
            })
        },
    )
    .await
    .expect("the app exists");
    let errors = app.data["status"].to_string();
    assert!(
        errors.contains("Secret default/creds")
            && errors.contains(r#"User \"system:serviceaccount:default:deployer\" cannot"#)
            && errors.contains(r#"resource \"secrets\""#),
        "{errors}"
    );
    assert_eq!(
        cm.get("allowed")
            .await
            .expect("get")
            .data
            .and_then(|d| d.get("a").cloned())
            .as_deref(),
        Some("1")
    );
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(w.client.clone(), "default");
    assert!(secrets.get_opt("creds").await.expect("get").is_none());
}

/// A KubeVela Application `team` delivered by a workflow (a topology policy on the
/// repository's own cluster, `namespace` as given) with `components`.
fn workflow_app(components: &str, namespace: Option<&str>) -> String {
    let ns = namespace
        .map(|n| format!(", namespace: {n}"))
        .unwrap_or_default();
    format!(
        "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: team
spec:
  components:
{components}  policies:
    - name: here
      type: topology
      properties: {{clusters: [local]{ns}}}
"
    )
}

const REF_CM: &str = "    - name: settings
      type: ref-objects
      properties:
        objects:
          - {apiVersion: v1, kind: ConfigMap, name: delivered}
";

const WEB_COMPONENT: &str = "    - name: web
      type: webservice
      properties:
        image: registry.example/web:1
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topology_policy_cannot_send_a_tenants_objects_outside_its_namespaces() {
    let git = GitRepo::with_remote().await;
    git.write(
        "apps/team/ok.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\ndata: {a: \"1\"}\n",
    );
    git.commit_and_push("ok").await;
    let w = World::start_configured(git, |_| {}, locked_down).await;
    let team_apps = apps(&w.client, "default");
    wait_for(
        &team_apps,
        "team",
        "the first commit applied",
        |o: Option<&DynamicObject>| o.is_some_and(|o| o.data["status"]["phase"] == "running"),
    )
    .await;
    w.git.write(
        "apps/team/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: delivered}\ndata: {a: \"1\"}\n",
    );
    let commit = w
        .push(
            "apps/team/app.yaml",
            &workflow_app(REF_CM, Some("kube-system")),
            "deliver to kube-system",
        )
        .await;
    let app = wait_for(
        &team_apps,
        "team",
        "rejected",
        |o: Option<&DynamicObject>| {
            o.is_some_and(|o| {
                o.data["status"]["lastAttemptedCommit"] == commit.as_str()
                    && o.data["status"]["phase"] == "failed"
            })
        },
    )
    .await
    .expect("the app exists");
    let want = r#"apps/team/app.yaml:13: policy "here": namespace "kube-system" is not allowed for repository "deploy" (allow.namespaces: default, team-a-*)"#;
    let errors = app.data["status"].to_string();
    assert!(
        errors.contains(&want.replace('"', "\\\"")),
        "{want}\n{errors}"
    );
    let cms = |ns: &str| -> Api<k8s_openapi::api::core::v1::ConfigMap> {
        Api::namespaced(w.client.clone(), ns)
    };
    assert!(
        cms("kube-system")
            .get_opt("delivered")
            .await
            .expect("get")
            .is_none(),
        "nothing delivered to kube-system"
    );
    assert!(
        cms("default")
            .get_opt("delivered")
            .await
            .expect("get")
            .is_none(),
        "the commit is rejected whole"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_delivers_to_the_repositorys_cluster_as_the_tenants_service_account() {
    let git = GitRepo::with_remote().await;
    git.write(
        "apps/team/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: delivered}\ndata: {a: \"1\"}\n",
    );
    git.commit_and_push("cm").await;
    let w = World::start_configured(
        git,
        |_| {},
        |r| {
            r.service_account_name = Some("deployer".into());
        },
    )
    .await;
    // The tenant's ServiceAccount may manage ConfigMaps (and the app's ControllerRevisions)
    // in its namespace, and nothing else.
    for args in [
        &["-n", "default", "create", "serviceaccount", "deployer"][..],
        &[
            "-n",
            "default",
            "create",
            "role",
            "deployer",
            "--verb=get,list,watch,create,update,patch,delete",
            "--resource=configmaps,controllerrevisions.apps",
        ],
        &[
            "-n",
            "default",
            "create",
            "rolebinding",
            "deployer",
            "--role=deployer",
            "--serviceaccount=default:deployer",
        ],
    ] {
        w.cluster.kubectl_ok(args).await;
    }
    // A ConfigMap delivered by the workflow: within the ServiceAccount's rights.
    w.push(
        "apps/team/app.yaml",
        &workflow_app(REF_CM, None),
        "deliver the ConfigMap",
    )
    .await;
    let cm: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(w.client.clone(), "default");
    wait_for(
        &cm,
        "delivered",
        "the ConfigMap delivered as the ServiceAccount",
        |c: Option<&k8s_openapi::api::core::v1::ConfigMap>| c.is_some(),
    )
    .await;
    // A Deployment is outside its rights: the dev cluster's RBAC refuses the delivery (the
    // daemon's own identity could create it).
    w.push(
        "apps/team/app.yaml",
        &workflow_app(&format!("{REF_CM}{WEB_COMPONENT}"), None),
        "deliver a Deployment too",
    )
    .await;
    let app = wait_for(
        &apps(&w.client, "default"),
        "team",
        "the delivery refused by RBAC",
        |o: Option<&DynamicObject>| {
            o.is_some_and(|o| {
                o.data["status"]
                    .to_string()
                    .contains(r#"User \"system:serviceaccount:default:deployer\" cannot"#)
            })
        },
    )
    .await
    .expect("the app exists");
    let status = app.data["status"].to_string();
    assert!(status.contains(r#"resource \"deployments\""#), "{status}");
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(w.client.clone(), "default");
    assert!(
        deployments.get_opt("web").await.expect("get").is_none(),
        "nothing applied with the daemon's rights"
    );
}
