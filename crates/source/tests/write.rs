//! Writing to real repositories: reverts, file commits, races with other pushers, conflicts,
//! failing pushes, and credentials over a real smart-HTTP server (`git http-backend`).

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{Remote, commit, git, write};
use rollgit_source::write::{
    BranchOutcome, BranchRequest, CommitRequest, Identity, RevertRequest, WriteError, WriteOutcome,
    commit_files, commit_files_with_hook, commit_to_branch, log, revert, revert_dry_run,
    revert_with_hook,
};
use rollgit_source::{Credentials, ObjectId, Repo, RepoSpec, fetch, fetch_for_write, mirror_path};

fn oid(hex: &str) -> ObjectId {
    ObjectId::from_hex(hex.as_bytes()).expect("git prints hex ids")
}

fn identity() -> Identity {
    Identity {
        name: "rollgit".into(),
        email: "rollgit@example.com".into(),
        signing_key: None,
    }
}

fn revert_request(commits: &[&str], message: &str) -> RevertRequest {
    RevertRequest {
        commits: commits.iter().map(|c| oid(c)).collect(),
        message: message.into(),
        identity: identity(),
        paths: None,
        max_attempts: 5,
    }
}

/// `git` on the bare remote.
fn remote_git(r: &Remote, args: &[&str]) -> String {
    git(&r.bare, args)
}

fn remote_head(r: &Remote) -> String {
    remote_git(r, &["rev-parse", "refs/heads/main"])
}

fn remote_file(r: &Remote, path: &str) -> String {
    remote_git(r, &["show", &format!("main:{path}")])
}

fn pushed(outcome: WriteOutcome) -> (ObjectId, u32) {
    match outcome {
        WriteOutcome::Pushed { commit, attempts } => (commit, attempts),
        other => panic!("expected a push, got {other:?}"),
    }
}

/// Commit a change in the user's clone and push it, returning the commit.
fn user_pushes(r: &Remote, path: &str, contents: &str, message: &str) -> String {
    git(&r.work, &["pull", "-q", "--rebase", "origin", "main"]);
    write(&r.work, path, contents);
    let c = commit(&r.work, message);
    r.push();
    c
}

/// Every way to render an error: Display, Debug, and the whole source chain.
fn all_text(err: &WriteError) -> String {
    let mut text = format!("{err}\n{err:?}\n");
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = cur {
        text.push_str(&format!("{e}\n{e:?}\n"));
        cur = e.source();
    }
    text
}

const REVERT_MESSAGE: &str = "Revert \"scale web to 5\"\n\nRolled back by rollgit: the canary failed.\n\nReverts: {bad}\nRollgit-Rollout: web-42\n";

#[test]
fn revert_of_the_last_commit_restores_the_tree_and_records_trailers() {
    let r = Remote::new();
    let spec = RepoSpec::new(r.url(), "main");
    let good = remote_head(&r);
    let good_tree = remote_git(&r, &["rev-parse", "main^{tree}"]);
    let bad = user_pushes(
        &r,
        "apps/web/deploy.yaml",
        "kind: Deployment\nname: web\nreplicas: 5\n",
        "scale web to 5",
    );
    // The daemon saw the bad commit.
    let seen = fetch(&spec, &r.cache).expect("daemon fetch");
    assert_eq!(seen.head, oid(&bad));

    let message = REVERT_MESSAGE.replace("{bad}", &bad);
    let dry = revert_dry_run(&spec, &r.cache, &revert_request(&[&bad], &message)).expect("dry");
    match dry {
        WriteOutcome::DryRun { diff, commit_tree } => {
            assert_eq!(commit_tree, oid(&good_tree));
            assert!(
                diff.starts_with("diff --git a/apps/web/deploy.yaml b/apps/web/deploy.yaml\n"),
                "{diff}"
            );
            assert!(diff.contains("--- a/apps/web/deploy.yaml\n+++ b/apps/web/deploy.yaml\n"));
            assert!(diff.contains("\n-replicas: 5\n"), "{diff}");
        }
        other => panic!("expected a dry run, got {other:?}"),
    }
    assert_eq!(remote_head(&r), bad, "a dry run pushes nothing");

    let (reverted, attempts) =
        pushed(revert(&spec, &r.cache, &revert_request(&[&bad], &message)).expect("revert"));
    assert_eq!(attempts, 1);
    assert_eq!(remote_head(&r), reverted.to_string());
    assert_eq!(remote_git(&r, &["rev-parse", "main^{tree}"]), good_tree);
    assert_eq!(
        remote_git(&r, &["rev-parse", "main^"]),
        bad,
        "parent is the head"
    );
    assert_eq!(
        remote_git(&r, &["log", "-1", "--format=%B", "main"]),
        message.trim()
    );
    assert_eq!(
        remote_git(&r, &["log", "-1", "--format=%an <%ae>|%cn <%ce>", "main"]),
        "rollgit <rollgit@example.com>|rollgit <rollgit@example.com>"
    );
    assert_eq!(
        remote_git(
            &r,
            &[
                "log",
                "-1",
                "--format=%(trailers:key=Reverts,valueonly)",
                "main"
            ]
        ),
        bad
    );
    remote_git(&r, &["fsck", "--strict", "--no-progress"]);
    assert_eq!(remote_git(&r, &["rev-list", "--count", "main"]), "3");

    // The daemon's next fetch sees the revert as a change.
    let next = fetch(&spec, &r.cache).expect("daemon fetch");
    assert!(next.changed);
    assert_eq!(next.head, reverted);

    // Reverting again: the head already has the reverted content.
    let again = revert(&spec, &r.cache, &revert_request(&[&bad], &message)).expect("again");
    assert_eq!(again, WriteOutcome::NothingToDo);
    assert_eq!(
        revert_dry_run(&spec, &r.cache, &revert_request(&[&bad], &message)).expect("dry"),
        WriteOutcome::NothingToDo
    );
    assert_eq!(remote_head(&r), reverted.to_string(), "no empty commit");

    let history = log(&spec, &r.cache, 10).expect("log");
    let shas: Vec<String> = history.iter().map(|e| e.commit.to_string()).collect();
    assert_eq!(shas, [reverted.to_string(), bad.clone(), good]);
    let top = &history[0];
    assert_eq!(top.summary, "Revert \"scale web to 5\"");
    assert_eq!(top.author, "rollgit <rollgit@example.com>");
    assert_eq!(top.reverts, [oid(&bad)]);
    assert_eq!(top.rollout.as_deref(), Some("web-42"));
    assert_eq!(
        top.trailers,
        [
            ("Reverts".to_owned(), bad.clone()),
            ("Rollgit-Rollout".to_owned(), "web-42".to_owned())
        ]
    );
    assert!(history[1].reverts.is_empty() && history[1].rollout.is_none());
    assert_eq!(log(&spec, &r.cache, 1).expect("log").len(), 1);
}

#[test]
fn a_tool_reads_the_first_parent_line_and_trailers_without_disturbing_the_daemon() {
    let r = Remote::new();
    let spec = RepoSpec::new(r.url(), "main");
    let initial = remote_head(&r);
    // The daemon has seen the initial commit.
    assert_eq!(
        fetch(&spec, &r.cache).expect("daemon fetch").head,
        oid(&initial)
    );
    // A side branch merged without fast-forward: the first-parent line skips its commit.
    git(&r.work, &["checkout", "-q", "-b", "side"]);
    write(
        &r.work,
        "apps/worker/deploy.yaml",
        "kind: Deployment\nname: w2\n",
    );
    let side = commit(&r.work, "worker: w2");
    git(&r.work, &["checkout", "-q", "main"]);
    let web = user_pushes(
        &r,
        "apps/web/deploy.yaml",
        "kind: Deployment\nname: w\n",
        "web",
    );
    git(
        &r.work,
        &[
            "-c",
            "user.name=Ada Lovelace",
            "-c",
            "user.email=ada@example.com",
            "merge",
            "-q",
            "--no-ff",
            "-m",
            "Merge side",
            "side",
        ],
    );
    let merge = git(&r.work, &["rev-parse", "HEAD"]);
    write(
        &r.work,
        "apps/db/config.yaml",
        "kind: ConfigMap\nname: db2\n",
    );
    let trailer = commit(
        &r.work,
        &format!("db: revert something\n\nBody.\n\nReverts: {web}\nRollgit-App: db"),
    );
    r.push();

    let fetched = fetch_for_write(&spec, &r.cache).expect("fetch for a tool");
    assert_eq!(fetched.head, oid(&trailer));
    let repo = Repo::open(&spec, &r.cache).expect("open the mirror");
    let line: Vec<String> = repo
        .first_parent_line(fetched.head, 100)
        .expect("first-parent line")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        line,
        [trailer.clone(), merge.clone(), web.clone(), initial.clone()]
    );
    assert!(!line.contains(&side));
    assert_eq!(
        repo.first_parent_line(fetched.head, 2)
            .expect("bounded")
            .len(),
        2
    );
    let entry = repo.log_entry(oid(&trailer)).expect("log entry");
    assert_eq!(entry.summary, "db: revert something");
    assert_eq!(entry.author, "Ada Lovelace <ada@example.com>");
    assert_eq!(entry.reverts, [oid(&web)]);
    assert_eq!(
        entry.trailers,
        [
            ("Reverts".to_owned(), web.clone()),
            ("Rollgit-App".to_owned(), "db".to_owned())
        ]
    );
    let logged = log(&spec, &r.cache, 1).expect("log");
    assert_eq!(logged, [entry], "the same entry as write::log's");

    // The daemon's next fetch still reports the new commits.
    let next = fetch(&spec, &r.cache).expect("daemon fetch");
    assert!(next.changed);
    assert_eq!(next.head, oid(&trailer));
}

#[test]
fn revert_of_an_older_commit_keeps_newer_changes() {
    let r = Remote::new();
    let spec = RepoSpec::new(r.url(), "main");
    let bad = user_pushes(
        &r,
        "apps/web/deploy.yaml",
        "kind: Deployment\nname: web\nimage: web:2\n",
        "web image 2",
    );
    user_pushes(
        &r,
        "apps/worker/deploy.yaml",
        "kind: Deployment\nname: worker\nreplicas: 3\n",
        "scale worker",
    );
    let newer = user_pushes(
        &r,
        "apps/web/ingress.yaml",
        "kind: Ingress\n",
        "web ingress",
    );

    let (reverted, _) = pushed(
        revert(
            &spec,
            &r.cache,
            &revert_request(&[&bad], "Revert web image 2\n"),
        )
        .expect("revert"),
    );
    assert_eq!(remote_git(&r, &["rev-parse", "main^"]), newer);
    assert_eq!(remote_head(&r), reverted.to_string());
    assert_eq!(
        remote_file(&r, "apps/web/deploy.yaml"),
        "kind: Deployment\nname: web"
    );
    assert_eq!(
        remote_file(&r, "apps/worker/deploy.yaml"),
        "kind: Deployment\nname: worker\nreplicas: 3"
    );
    assert_eq!(remote_file(&r, "apps/web/ingress.yaml"), "kind: Ingress");
    assert_eq!(
        remote_git(&r, &["diff", "--name-only", "main^", "main"]),
        "apps/web/deploy.yaml"
    );
}

#[test]
fn revert_of_several_commits_restricted_to_an_app_directory() {
    let r = Remote::new();
    let spec = RepoSpec::new(r.url(), "main");
    let before = remote_head(&r);
    // One commit touches two apps; the next touches web again.
    git(&r.work, &["pull", "-q", "origin", "main"]);
    write(
        &r.work,
        "apps/web/deploy.yaml",
        "kind: Deployment\nname: web\nimage: web:2\n",
    );
    write(
        &r.work,
        "apps/db/config.yaml",
        "kind: ConfigMap\nname: db\nsize: 2\n",
    );
    let first = commit(&r.work, "web 2 and db 2");
    write(
        &r.work,
        "apps/web/extra.yaml",
        "kind: ConfigMap\nname: extra\n",
    );
    let second = commit(&r.work, "web extra");
    r.push();

    let mut req = revert_request(&[&second, &first], "Revert web to before\n");
    req.paths = Some(vec!["apps/web/".into()]);
    pushed(revert(&spec, &r.cache, &req).expect("revert"));
    assert_eq!(
        remote_git(&r, &["diff", "--name-only", &before, "main"]),
        "apps/db/config.yaml",
        "web is back to before, db keeps its change"
    );
    assert_eq!(
        remote_file(&r, "apps/db/config.yaml"),
        "kind: ConfigMap\nname: db\nsize: 2"
    );
    assert_eq!(
        remote_git(&r, &["rev-list", "--count", "main"]),
        "4",
        "one commit"
    );

    // A path the commits did not touch: nothing to do.
    let mut req = revert_request(&[&first], "Revert worker\n");
    req.paths = Some(vec!["apps/worker".into()]);
    assert_eq!(
        revert(&spec, &r.cache, &req).expect("no-op"),
        WriteOutcome::NothingToDo
    );
}

#[test]
fn race_with_another_pusher_redoes_the_revert_on_the_new_head() {
    let r = Remote::new();
    let spec = RepoSpec::new(r.url(), "main");
    let bad = user_pushes(
        &r,
        "apps/web/deploy.yaml",
        "kind: Deployment\nname: web\nreplicas: 5\n",
        "scale web to 5",
    );
    let mut raced = None;
    let mut hook = |attempt: u32| {
        if attempt == 1 {
            raced = Some(user_pushes(
                &r,
                "apps/worker/deploy.yaml",
                "kind: Deployment\nname: worker\nreplicas: 2\n",
                "scale worker meanwhile",
            ));
        }
    };
    let req = revert_request(&[&bad], "Revert scale web\n");
    let (reverted, attempts) =
        pushed(revert_with_hook(&spec, &r.cache, &req, &mut hook).expect("revert"));
    let raced = raced.expect("the hook ran");
    assert_eq!(attempts, 2, "the first push was rejected");
    assert_eq!(remote_head(&r), reverted.to_string());
    assert_eq!(
        remote_git(&r, &["rev-parse", "main^"]),
        raced,
        "no force push"
    );
    assert_eq!(
        remote_file(&r, "apps/worker/deploy.yaml"),
        "kind: Deployment\nname: worker\nreplicas: 2"
    );
    assert_eq!(
        remote_file(&r, "apps/web/deploy.yaml"),
        "kind: Deployment\nname: web"
    );
}

/// A `pre-push` hook in the mirror pushes from the user's clone after git read the remote's
/// refs: the remote rejects our ref update (`failed to update ref`), as in a real race.
fn install_racing_pre_push_hook(r: &Remote, spec: &RepoSpec, every_time: bool) {
    fetch(spec, &r.cache).expect("create the mirror");
    let hooks = mirror_path(spec, &r.cache).join("hooks");
    std::fs::create_dir_all(&hooks).expect("hooks dir");
    let marker = r.tmp.path().join("raced");
    let guard = if every_time {
        String::new()
    } else {
        format!(
            "[ -e '{m}' ] && exit 0\ntouch '{m}'\n",
            m = marker.display()
        )
    };
    let script = format!(
        "#!/bin/sh\n{guard}unset GIT_DIR\nexport GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1\n\
         cd '{work}' || exit 1\ndate +%s%N >> race.txt\ngit add -A\n\
         git -c user.name=Racer -c user.email=racer@example.com commit -q -m race >&2 || exit 1\n\
         git push -q origin HEAD:main >&2 || exit 1\n",
        work = r.work.display()
    );
    let path = hooks.join("pre-push");
    std::fs::write(&path, script).expect("write hook");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn server_side_race_is_retried() {
    let r = Remote::new();
    let spec = RepoSpec::new(r.url(), "main");
    let bad = user_pushes(
        &r,
        "apps/db/config.yaml",
        "kind: ConfigMap\nname: db2\n",
        "db2",
    );
    install_racing_pre_push_hook(&r, &spec, false);
    let (reverted, attempts) =
        pushed(revert(&spec, &r.cache, &revert_request(&[&bad], "Revert db2\n")).expect("revert"));
    assert_eq!(attempts, 2);
    let racer = git(&r.work, &["rev-parse", "HEAD"]);
    assert_eq!(remote_git(&r, &["rev-parse", "main^"]), racer);
    assert_eq!(remote_head(&r), reverted.to_string());
    assert_eq!(
        remote_file(&r, "apps/db/config.yaml"),
        "kind: ConfigMap\nname: db"
    );
}

#[test]
fn a_remote_that_keeps_moving_gives_up_without_losing_commits() {
    let r = Remote::new();
    let spec = RepoSpec::new(r.url(), "main");
    let bad = user_pushes(
        &r,
        "apps/db/config.yaml",
        "kind: ConfigMap\nname: db2\n",
        "db2",
    );
    install_racing_pre_push_hook(&r, &spec, true);
    let mut req = revert_request(&[&bad], "Revert db2\n");
    req.max_attempts = 2;
    let err = revert(&spec, &r.cache, &req).expect_err("keeps moving");
    assert!(
        matches!(err, WriteError::RemoteKeptMoving { attempts: 2, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(remote_head(&r), git(&r.work, &["rev-parse", "HEAD"]));
    assert_eq!(remote_git(&r, &["rev-list", "--count", "main"]), "4");

    req.max_attempts = 0;
    let err = revert(&spec, &r.cache, &req).expect_err("zero attempts");
    assert!(matches!(err, WriteError::InvalidRequest { .. }), "{err:?}");
}

#[test]
fn conflicting_revert_names_the_file_and_pushes_nothing() {
    let r = Remote::new();
    let spec = RepoSpec::new(r.url(), "main");
    let bad = user_pushes(
        &r,
        "apps/web/deploy.yaml",
        "kind: Deployment\nname: web\nreplicas: 5\n",
        "scale web to 5",
    );
    user_pushes(
        &r,
        "apps/web/deploy.yaml",
        "kind: Deployment\nname: web\nreplicas: 7\n",
        "scale web to 7",
    );
    let head = remote_head(&r);
    let req = revert_request(&[&bad], "Revert scale web to 5\n");
    for result in [
        revert(&spec, &r.cache, &req),
        revert_dry_run(&spec, &r.cache, &req),
    ] {
        let err = result.expect_err("conflict");
        match &err {
            WriteError::Conflict {
                paths, head: at, ..
            } => {
                assert_eq!(paths, &["apps/web/deploy.yaml"]);
                assert_eq!(at, &oid(&head));
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert!(!err.is_transient());
        assert!(err.to_string().contains("apps/web/deploy.yaml"), "{err}");
    }
    assert_eq!(remote_head(&r), head, "the remote is untouched");
}

fn files(entries: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    entries
        .iter()
        .map(|(p, c)| ((*p).to_owned(), c.as_bytes().to_vec()))
        .collect()
}

#[test]
fn commit_to_branch_pushes_edits_and_deletions_to_a_new_branch_never_over_an_existing_one() {
    let r = Remote::new();
    let spec = RepoSpec::new(r.url(), "main");
    let head = remote_head(&r);
    let mut edits = BTreeMap::new();
    edits.insert(
        "apps/web/deploy.yaml".to_string(),
        Some(b"kind: Deployment\nname: web\nimage: web:2\n".to_vec()),
    );
    edits.insert("apps/web/service.yaml".to_string(), None);
    let req = BranchRequest {
        edits,
        branch: "rollgit/promote/shop/prod/0123456".into(),
        message: "Promote shop to prod\n\nRollgit-Promotion: shop/prod\n".into(),
        identity: identity(),
    };
    let BranchOutcome::Pushed { commit, parent } =
        commit_to_branch(&spec, &r.cache, &req).expect("pushed")
    else {
        panic!("expected a push");
    };
    assert_eq!(parent.to_string(), head);
    assert_eq!(remote_head(&r), head, "main is untouched");
    let branch = "refs/heads/rollgit/promote/shop/prod/0123456";
    assert_eq!(remote_git(&r, &["rev-parse", branch]), commit.to_string());
    assert_eq!(
        remote_git(&r, &["diff", "--name-status", &head, branch]),
        "M\tapps/web/deploy.yaml\nD\tapps/web/service.yaml"
    );
    remote_git(&r, &["fsck", "--strict", "--no-progress"]);

    // Again, as another commit (a restart before the pull request was recorded): the branch
    // exists, and it is not overwritten.
    let again = BranchRequest {
        message: "Promote shop to prod (again)\n".into(),
        ..req.clone()
    };
    assert_eq!(
        commit_to_branch(&spec, &r.cache, &again).expect("answered"),
        BranchOutcome::Exists
    );
    assert_eq!(remote_git(&r, &["rev-parse", branch]), commit.to_string());

    let onto_main = BranchRequest {
        branch: "main".into(),
        ..req.clone()
    };
    assert!(matches!(
        commit_to_branch(&spec, &r.cache, &onto_main),
        Err(WriteError::InvalidRequest { .. })
    ));
    let bad_name = BranchRequest {
        branch: "rollgit/../x".into(),
        ..req
    };
    assert!(matches!(
        commit_to_branch(&spec, &r.cache, &bad_name),
        Err(WriteError::InvalidRequest { .. })
    ));
}

#[test]
fn commit_files_makes_one_commit_then_nothing_to_do() {
    let r = Remote::new();
    let spec = RepoSpec::new(r.url(), "main");
    let before = remote_head(&r);
    let req = CommitRequest {
        files: files(&[
            (
                "apps/web/deploy.yaml",
                "kind: Deployment\nname: web\nimage: web:3\n",
            ),
            ("apps/web/revision.yaml", "revision: 3\n"),
        ]),
        message: "Bump web to revision 3\n\nRollgit-Rollout: web-43\n".into(),
        identity: identity(),
        max_attempts: 3,
    };
    let (c, attempts) = pushed(commit_files(&spec, &r.cache, &req).expect("commit"));
    assert_eq!(attempts, 1);
    assert_eq!(remote_head(&r), c.to_string());
    assert_eq!(remote_git(&r, &["rev-parse", "main^"]), before);
    assert_eq!(
        remote_git(&r, &["diff", "--name-only", &before, "main"]),
        "apps/web/deploy.yaml\napps/web/revision.yaml"
    );
    assert_eq!(remote_file(&r, "apps/web/revision.yaml"), "revision: 3");
    assert_eq!(
        remote_git(&r, &["ls-tree", "main", "apps/web/revision.yaml"])
            .split(' ')
            .next(),
        Some("100644")
    );
    remote_git(&r, &["fsck", "--strict", "--no-progress"]);

    assert_eq!(
        commit_files(&spec, &r.cache, &req).expect("again"),
        WriteOutcome::NothingToDo
    );
    assert_eq!(remote_head(&r), c.to_string(), "no empty commit");

    let bad_path = CommitRequest {
        files: files(&[("../escape.yaml", "x")]),
        ..req.clone()
    };
    let err = commit_files(&spec, &r.cache, &bad_path).expect_err("bad path");
    assert!(matches!(err, WriteError::InvalidRequest { .. }), "{err:?}");
    let below_a_file = CommitRequest {
        files: files(&[("README.md/x.yaml", "x")]),
        ..req
    };
    let err = commit_files(&spec, &r.cache, &below_a_file).expect_err("below a file");
    assert!(matches!(err, WriteError::InvalidRequest { .. }), "{err:?}");
    assert_eq!(remote_head(&r), c.to_string());
}

#[test]
fn commit_files_after_the_remote_moved_reapplies_or_conflicts() {
    let r = Remote::new();
    let spec = RepoSpec::new(r.url(), "main");
    let req = CommitRequest {
        files: files(&[("apps/web/revision.yaml", "revision: 4\n")]),
        message: "Bump web to revision 4\n".into(),
        identity: identity(),
        max_attempts: 3,
    };

    // Another pusher changes an unrelated file: re-applied on the new head.
    let mut raced = None;
    let (c, attempts) = pushed(
        commit_files_with_hook(&spec, &r.cache, &req, &mut |attempt| {
            if attempt == 1 {
                raced = Some(user_pushes(
                    &r,
                    "apps/db/config.yaml",
                    "size: 9\n",
                    "db size",
                ));
            }
        })
        .expect("commit"),
    );
    assert_eq!(attempts, 2);
    assert_eq!(remote_head(&r), c.to_string());
    assert_eq!(
        remote_git(&r, &["rev-parse", "main^"]),
        raced.expect("raced")
    );
    assert_eq!(remote_file(&r, "apps/db/config.yaml"), "size: 9");
    assert_eq!(remote_file(&r, "apps/web/revision.yaml"), "revision: 4");

    // Another pusher changes the same file: a conflict, their commit stays.
    let req = CommitRequest {
        files: files(&[("apps/web/revision.yaml", "revision: 5\n")]),
        message: "Bump web to revision 5\n".into(),
        ..req
    };
    let mut theirs = None;
    let err = commit_files_with_hook(&spec, &r.cache, &req, &mut |attempt| {
        if attempt == 1 {
            theirs = Some(user_pushes(
                &r,
                "apps/web/revision.yaml",
                "revision: 6\n",
                "manual bump",
            ));
        }
    })
    .expect_err("conflict");
    match &err {
        WriteError::Conflict { paths, .. } => assert_eq!(paths, &["apps/web/revision.yaml"]),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(remote_head(&r), theirs.expect("raced"));
    assert_eq!(remote_file(&r, "apps/web/revision.yaml"), "revision: 6");
}

#[test]
fn local_bare_repository_is_written_in_place() {
    let r = Remote::new();
    let spec = RepoSpec::new(r.bare.to_str().expect("utf-8"), "main");
    let bad = user_pushes(&r, "README.md", "# oops\n", "oops");
    let (c, _) =
        pushed(revert(&spec, &r.cache, &revert_request(&[&bad], "Revert oops\n")).expect("revert"));
    assert_eq!(remote_head(&r), c.to_string());
    assert_eq!(remote_file(&r, "README.md"), "# demo");
}

#[test]
fn signed_revert_with_an_ssh_key() {
    let r = Remote::new();
    let key = r.tmp.path().join("signing_key");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "rollgit", "-f"])
        .arg(&key)
        .output();
    if !keygen.is_ok_and(|o| o.status.success()) {
        eprintln!("no ssh-keygen; skipped");
        return;
    }
    let spec = RepoSpec::new(r.url(), "main");
    let bad = user_pushes(&r, "README.md", "# oops\n", "oops");
    let mut req = revert_request(&[&bad], "Revert oops\n");
    req.identity.signing_key = Some(key.to_str().expect("utf-8").to_owned());
    let (c, _) = pushed(revert(&spec, &r.cache, &req).expect("signed revert"));
    assert_eq!(remote_head(&r), c.to_string());
    let raw = remote_git(&r, &["cat-file", "commit", "main"]);
    assert!(
        raw.contains("gpgsig -----BEGIN SSH SIGNATURE-----"),
        "{raw}"
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    let allowed = r.tmp.path().join("allowed_signers");
    std::fs::write(&allowed, format!("rollgit@example.com {public}")).expect("write");
    let allowed_config = format!("gpg.ssh.allowedSignersFile={}", allowed.display());
    remote_git(&r, &["-c", &allowed_config, "verify-commit", "main"]);
    assert_eq!(remote_file(&r, "README.md"), "# demo");
}

#[test]
fn failing_push_is_an_error_without_credentials() {
    // The remote disappears between the fetch and the push.
    let r = Remote::new();
    let spec = RepoSpec {
        url: r.url(),
        branch: "main".into(),
        credentials: Some(Credentials::Token("tok-secret-5e6f".into())),
    };
    let bad = user_pushes(&r, "README.md", "# oops\n", "oops");
    let moved = r.tmp.path().join("moved.git");
    let err = revert_with_hook(
        &spec,
        &r.cache,
        &revert_request(&[&bad], "Revert oops\n"),
        &mut |_| std::fs::rename(&r.bare, &moved).expect("move the remote away"),
    )
    .expect_err("no remote");
    assert!(
        matches!(
            err,
            WriteError::Push {
                transient: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_transient());
    let text = all_text(&err);
    assert!(
        text.contains("does not appear to be a git repository"),
        "{text}"
    );
    assert!(!text.contains("tok-secret-5e6f"), "{text}");

    // Nothing listens: the fetch before the push fails, transient, without the secret.
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = RepoSpec::new("https://bot:secret-url-pw@127.0.0.1:1/org/app.git", "main");
    let err = revert(&spec, tmp.path(), &revert_request(&[&bad], "x\n")).expect_err("refused");
    assert!(matches!(err, WriteError::Fetch { .. }), "{err:?}");
    assert!(err.is_transient());
    let text = all_text(&err);
    assert!(text.contains("https://127.0.0.1:1/org/app.git"), "{text}");
    assert!(
        !text.contains("secret-url-pw") && !text.contains("bot:"),
        "{text}"
    );
}

#[test]
fn credentials_reach_git_over_http_and_never_show() {
    let r = Remote::new();
    let server = http::GitHttpServer::start(r.tmp.path(), "deploy-bot", "s3cret-pw-77");
    let url = |userinfo: &str| format!("http://{userinfo}127.0.0.1:{}/remote.git", server.port);
    let bad = user_pushes(&r, "README.md", "# oops\n", "oops");

    // Wrong password in the URL: fetching needs none, the push is refused.
    let spec = RepoSpec::new(url("deploy-bot:wrong-pw-secret@"), "main");
    let err = revert(&spec, &r.cache, &revert_request(&[&bad], "Revert oops\n"))
        .expect_err("wrong password");
    assert!(
        matches!(
            err,
            WriteError::Push {
                transient: false,
                ..
            }
        ),
        "{err:?}"
    );
    let text = all_text(&err);
    assert!(!text.contains("wrong-pw-secret"), "{text}");
    assert!(text.contains(&url("")), "names the repository: {text}");
    assert_eq!(remote_head(&r), bad);
    let seen = server.authorizations();
    assert!(
        seen.contains(&Some(http::basic("deploy-bot", "wrong-pw-secret"))),
        "git offered the URL's credentials: {seen:?}"
    );

    // Right password in the configured credentials: pushed.
    let spec = RepoSpec {
        url: url(""),
        branch: "main".into(),
        credentials: Some(Credentials::UserPassword {
            username: "deploy-bot".into(),
            password: "s3cret-pw-77".into(),
        }),
    };
    let (c, _) =
        pushed(revert(&spec, &r.cache, &revert_request(&[&bad], "Revert oops\n")).expect("revert"));
    assert_eq!(remote_head(&r), c.to_string());
    assert_eq!(remote_file(&r, "README.md"), "# demo");
}

#[test]
fn invalid_requests_are_refused_before_any_network_access() {
    let spec = RepoSpec::new("https://127.0.0.1:1/org/app.git", "main");
    let cache = Path::new("/nonexistent-cache");
    let good = "0123456789012345678901234567890123456789";
    let mut empty = revert_request(&[], "x\n");
    empty.commits.clear();
    let mut bad_path = revert_request(&[good], "x\n");
    bad_path.paths = Some(vec!["apps/../etc".into()]);
    let mut no_paths = revert_request(&[good], "x\n");
    no_paths.paths = Some(Vec::new());
    for (name, req) in [
        ("empty", empty),
        ("bad_path", bad_path),
        ("no_paths", no_paths),
    ] {
        let err = revert(&spec, cache, &req).expect_err(name);
        assert!(
            matches!(err, WriteError::InvalidRequest { .. }),
            "{name}: {err:?}"
        );
        assert!(!err.is_transient());
    }
}

#[path = "support/git_http.rs"]
mod http;
