//! Fetching and reading real repositories made with the `git` command.

mod common;

use common::{Remote, commit, git, write};
use rollgit_source::{Credentials, ObjectId, Repo, RepoSpec, SourceError, fetch};

fn oid(hex: &str) -> ObjectId {
    ObjectId::from_hex(hex.as_bytes()).expect("git prints hex ids")
}

#[test]
fn file_remote_first_fetch_clones_then_unchanged_then_new_push() {
    let r = Remote::new();
    let spec = RepoSpec::new(r.url(), "main");
    let first_head = git(&r.work, &["rev-parse", "HEAD"]);

    let first = fetch(&spec, &r.cache).expect("first fetch clones");
    assert_eq!(first.head, oid(&first_head));
    assert!(first.changed, "first fetch is a change");
    assert!(
        first.git_dir.starts_with(&r.cache),
        "mirror lives in the cache dir"
    );
    assert!(
        first.git_dir.join("HEAD").is_file(),
        "mirror is a bare repository"
    );

    let again = fetch(&spec, &r.cache).expect("second fetch");
    assert_eq!(again.head, first.head);
    assert!(!again.changed, "unchanged remote reports changed: false");
    assert!(first.received_pack);
    assert!(!again.received_pack, "no pack for an unchanged remote");

    let repo = Repo::open(&spec, &r.cache).expect("open mirror");
    assert_eq!(
        repo.list_files(first.head).expect("list"),
        [
            "README.md",
            "apps/db/config.yaml",
            "apps/web/deploy.yaml",
            "apps/web/service.yaml",
            "apps/worker/deploy.yaml",
        ]
    );

    // Add, modify, delete and rename, as a user would, and push.
    write(&r.work, "apps/web/ingress.yaml", "kind: Ingress\n");
    write(
        &r.work,
        "apps/web/deploy.yaml",
        "kind: Deployment\nname: web\nreplicas: 3\n",
    );
    git(&r.work, &["rm", "-q", "apps/db/config.yaml"]);
    git(
        &r.work,
        &[
            "mv",
            "apps/worker/deploy.yaml",
            "apps/worker/deployment.yaml",
        ],
    );
    let second_head = commit(&r.work, "scale web, add ingress, drop db, rename worker");
    r.push();

    let second = fetch(&spec, &r.cache).expect("fetch after push");
    assert!(second.changed);
    assert!(second.received_pack);
    assert_eq!(second.head, oid(&second_head));
    // The Repo opened before the fetch sees the new objects without reopening.
    assert_eq!(
        repo.changed_paths(first.head, second.head).expect("diff"),
        [
            "apps/db/config.yaml",
            "apps/web/deploy.yaml",
            "apps/web/ingress.yaml",
            "apps/worker/deploy.yaml",
            "apps/worker/deployment.yaml",
        ]
    );
    assert_eq!(
        repo.changed_paths(second.head, second.head).expect("diff"),
        Vec::<String>::new()
    );

    let unchanged = fetch(&spec, &r.cache).expect("third fetch");
    assert!(!unchanged.changed);
    assert_eq!(unchanged.head, second.head);
}

#[test]
fn reading_a_commit() {
    let r = Remote::new();
    let spec = RepoSpec::new(r.url(), "main");
    let head = fetch(&spec, &r.cache).expect("fetch").head;
    let repo = Repo::open(&spec, &r.cache).expect("open");

    let web = repo.read_files(head, "apps/web").expect("read dir");
    assert_eq!(
        web,
        [
            (
                "apps/web/deploy.yaml".to_owned(),
                b"kind: Deployment\nname: web\n".to_vec()
            ),
            (
                "apps/web/service.yaml".to_owned(),
                b"kind: Service\nname: web\n".to_vec()
            ),
        ]
    );
    assert_eq!(
        repo.read_files(head, "apps/web/").expect("trailing slash"),
        web
    );
    assert_eq!(repo.read_files(head, "").expect("all").len(), 5);
    assert!(
        repo.read_files(head, "apps/nope")
            .expect("missing")
            .is_empty()
    );
    assert_eq!(
        repo.read_files(head, "README.md").expect("file prefix"),
        [("README.md".to_owned(), b"# demo\n".to_vec())]
    );

    assert_eq!(
        repo.read_file(head, "apps/db/config.yaml").expect("read"),
        Some(b"kind: ConfigMap\nname: db\n".to_vec())
    );
    assert_eq!(
        repo.read_file(head, "apps/db/missing.yaml").expect("read"),
        None
    );
    assert_eq!(
        repo.read_file(head, "apps/db").expect("a dir is no file"),
        None
    );

    let info = repo.commit_info(head).expect("info");
    assert_eq!(info.sha, head.to_string());
    assert_eq!(info.summary, "initial");
    assert_eq!(info.author, "Ada Lovelace <ada@example.com>");
    let git_time: i64 = git(&r.work, &["log", "-1", "--format=%at"])
        .parse()
        .expect("unix time");
    assert_eq!(info.time, git_time);

    let missing = oid("0123456789012345678901234567890123456789");
    let err = repo.list_files(missing).expect_err("no such commit");
    assert!(matches!(err, SourceError::CommitNotFound { .. }), "{err:?}");
    assert!(!err.is_transient());
}

#[test]
fn local_worktree_path_is_read_in_place_and_sees_new_commits() {
    let r = Remote::new();
    let spec = RepoSpec::new(r.work.to_str().expect("utf-8 path"), "main");
    assert!(spec.is_local_path());

    let first = fetch(&spec, &r.cache).expect("resolve local");
    assert_eq!(first.head, oid(&git(&r.work, &["rev-parse", "HEAD"])));
    assert!(first.changed);
    assert_eq!(
        first.git_dir.canonicalize().expect("exists"),
        r.work.join(".git").canonicalize().expect("exists"),
        "read in place, not mirrored"
    );
    assert!(!fetch(&spec, &r.cache).expect("again").changed);

    let repo = Repo::open(&spec, &r.cache).expect("open local");
    write(
        &r.work,
        "apps/web/deploy.yaml",
        "kind: Deployment\nname: web\nreplicas: 2\n",
    );
    let new_head = commit(&r.work, "scale web");
    let second = fetch(&spec, &r.cache).expect("new commit");
    assert!(second.changed);
    assert_eq!(second.head, oid(&new_head));
    assert_eq!(
        repo.changed_paths(first.head, second.head).expect("diff"),
        ["apps/web/deploy.yaml"]
    );
    // Uncommitted edits are not part of any commit and are not seen.
    write(&r.work, "apps/web/deploy.yaml", "dirty\n");
    let third = fetch(&spec, &r.cache).expect("dirty worktree");
    assert!(!third.changed);
}

#[test]
fn local_bare_repository_path_is_read_in_place() {
    let r = Remote::new();
    let spec = RepoSpec::new(r.bare.to_str().expect("utf-8 path"), "main");
    let first = fetch(&spec, &r.cache).expect("resolve bare");
    assert_eq!(first.head, oid(&git(&r.work, &["rev-parse", "HEAD"])));
    write(&r.work, "new.yaml", "a: 1\n");
    let pushed = commit(&r.work, "add new");
    r.push();
    let second = fetch(&spec, &r.cache).expect("after push");
    assert!(second.changed);
    assert_eq!(second.head, oid(&pushed));
    assert!(!r.cache.join("remote.git").exists());
}

#[test]
fn missing_branch_is_a_clear_terminal_error() {
    let r = Remote::new();
    for spec in [
        RepoSpec::new(r.url(), "does-not-exist"),
        RepoSpec::new(r.work.to_str().expect("utf-8"), "does-not-exist"),
    ] {
        let err = fetch(&spec, &r.cache).expect_err("no such branch");
        assert!(
            matches!(&err, SourceError::BranchNotFound { branch, .. } if branch == "does-not-exist"),
            "{err:?}"
        );
        assert!(!err.is_transient());
        let text = err.to_string();
        assert!(text.contains("does-not-exist"), "{text}");
    }
}

#[test]
fn other_branches_are_followed_independently() {
    let r = Remote::new();
    git(&r.work, &["checkout", "-q", "-b", "staging"]);
    write(&r.work, "staging.yaml", "env: staging\n");
    let staging_head = commit(&r.work, "staging only");
    git(&r.work, &["push", "-q", "origin", "staging"]);

    let main = fetch(&RepoSpec::new(r.url(), "main"), &r.cache).expect("main");
    let staging = fetch(&RepoSpec::new(r.url(), "staging"), &r.cache).expect("staging");
    assert_eq!(staging.head, oid(&staging_head));
    assert_ne!(main.head, staging.head);
    assert_eq!(main.git_dir, staging.git_dir, "one mirror per URL");
    assert!(
        !fetch(&RepoSpec::new(r.url(), "main"), &r.cache)
            .expect("main again")
            .changed
    );
}

#[test]
fn force_push_is_followed() {
    let r = Remote::new();
    let spec = RepoSpec::new(r.url(), "main");
    write(&r.work, "x.yaml", "x: 1\n");
    commit(&r.work, "x");
    r.push();
    let before = fetch(&spec, &r.cache).expect("fetch");
    git(&r.work, &["reset", "-q", "--hard", "HEAD~1"]);
    write(&r.work, "y.yaml", "y: 1\n");
    let rewritten = commit(&r.work, "y instead of x");
    git(&r.work, &["push", "-q", "--force", "origin", "HEAD:main"]);
    let after = fetch(&spec, &r.cache).expect("fetch after force push");
    assert!(after.changed);
    assert_eq!(after.head, oid(&rewritten));
    let repo = Repo::open(&spec, &r.cache).expect("open");
    assert_eq!(
        repo.changed_paths(before.head, after.head).expect("diff"),
        ["x.yaml", "y.yaml"]
    );
}

/// Every way to render an error: Display, Debug, and the whole source chain.
#[test]
fn commits_touching_an_app_walk_the_first_parent_line_between_two_commits() {
    let r = Remote::new();
    let base = git(&r.work, &["rev-parse", "HEAD"]);
    write(
        &r.work,
        "apps/web/deploy.yaml",
        "kind: Deployment\nname: web\nreplicas: 2\n",
    );
    let w1 = commit(&r.work, "web: 2 replicas");
    write(
        &r.work,
        "apps/db/config.yaml",
        "kind: ConfigMap\nname: db2\n",
    );
    let d1 = commit(&r.work, "db: config");
    write(
        &r.work,
        "apps/webhooks/x.yaml",
        "kind: ConfigMap\nname: x\n",
    );
    let _other = commit(&r.work, "apps/webhooks is not apps/web");
    write(
        &r.work,
        "apps/web/service.yaml",
        "kind: Service\nname: web2\n",
    );
    let w2 = commit(&r.work, "web: service");
    git(&r.work, &["push", "-q", "origin", "main"]);
    let spec = RepoSpec::new(r.url(), "main");
    let head = fetch(&spec, &r.cache).expect("fetch").head;
    let repo = Repo::open(&spec, &r.cache).expect("open");
    let web = vec!["apps/web".to_string()];
    assert_eq!(
        repo.commits_touching(Some(oid(&base)), head, &web, 100)
            .expect("walk"),
        [oid(&w2), oid(&w1)],
        "newest first, only the app's commits, a sibling prefix is not the app"
    );
    assert_eq!(
        repo.commits_touching(Some(oid(&w1)), head, &web, 100)
            .expect("walk"),
        [oid(&w2)],
        "the lower bound is excluded"
    );
    assert_eq!(
        repo.commits_touching(Some(oid(&base)), oid(&d1), &["apps/db".to_string()], 100)
            .expect("walk"),
        [oid(&d1)]
    );
    assert_eq!(
        repo.commits_touching(Some(oid(&base)), head, &web, 1)
            .expect("walk"),
        [oid(&w2)],
        "bounded by max"
    );
}

fn all_text(err: &SourceError) -> String {
    let mut text = format!("{err}\n{err:?}\n");
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = cur {
        text.push_str(&format!("{e}\n{e:?}\n"));
        cur = e.source();
    }
    text
}

#[test]
fn unreachable_https_remote_is_transient_and_leaks_no_credentials() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Nothing listens on port 1 of the loopback address: connection refused.
    let spec = RepoSpec {
        url: "https://deploy-bot:url-password-9f8e@127.0.0.1:1/org/app.git".into(),
        branch: "main".into(),
        credentials: Some(Credentials::Token("ghp_tokenvalue_1a2b3c".into())),
    };
    let err = fetch(&spec, tmp.path()).expect_err("nothing listens there");
    assert!(
        matches!(err, SourceError::Fetch { .. }),
        "a connection failure is a fetch error: {err:?}"
    );
    assert!(
        err.is_transient(),
        "connection refused is worth a retry: {err:?}"
    );
    let text = all_text(&err);
    assert!(
        text.contains("https://127.0.0.1:1/org/app.git"),
        "names the repo: {text}"
    );
    for secret in ["url-password-9f8e", "ghp_tokenvalue_1a2b3c", "deploy-bot:"] {
        assert!(!text.contains(secret), "leaked {secret:?}: {text}");
    }
}

#[test]
fn unreachable_ssh_remote_is_a_fetch_error_without_credentials() {
    if std::process::Command::new("ssh")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("no ssh binary; skipped");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = RepoSpec::new("ssh://git@127.0.0.1:1/org/app.git", "main");
    let err = fetch(&spec, tmp.path()).expect_err("nothing listens there");
    assert!(matches!(err, SourceError::Fetch { .. }), "{err:?}");
    assert!(
        err.is_transient(),
        "an unreachable ssh server is an outage: {err:?}"
    );
}

#[test]
fn invalid_urls_are_terminal() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("nope.git");
    let cases = [
        ("missing_file_url", format!("file://{}", missing.display())),
        ("missing_local_path", missing.display().to_string()),
        (
            "unsupported_scheme",
            "ftp://example.com/repo.git".to_owned(),
        ),
        ("ext_helper_refused", "ext::sh -c true".to_owned()),
    ];
    for (name, url) in cases {
        let err = fetch(&RepoSpec::new(url, "main"), tmp.path()).expect_err(name);
        assert!(!err.is_transient(), "case {name}: {err:?}");
        assert!(
            matches!(
                err,
                SourceError::InvalidUrl { .. } | SourceError::RepositoryNotFound { .. }
            ),
            "case {name}: {err:?}"
        );
    }
}

#[test]
fn invalid_url_error_leaks_no_credentials() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = RepoSpec {
        url: "https://bot:pw-77a1@exa mple.com:99999/x.git".into(),
        branch: "main".into(),
        credentials: Some(Credentials::UserPassword {
            username: "bot".into(),
            password: "pw-credential-55".into(),
        }),
    };
    let err = fetch(&spec, tmp.path()).expect_err("invalid");
    let text = all_text(&err);
    for secret in ["pw-77a1", "pw-credential-55"] {
        assert!(!text.contains(secret), "leaked {secret:?}: {text}");
    }
}
