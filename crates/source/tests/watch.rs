//! The file-system watch on a local repository fires on a real `git commit`.

mod common;

use std::time::Duration;

use common::{Remote, commit, git, write};
use rollgit_source::{Trigger, watch_local_repo};

/// Bounded wait for the trigger; the watch must fire within a second of the commit.
async fn fired_within_a_second(trigger: &Trigger) -> bool {
    tokio::time::timeout(Duration::from_secs(1), trigger.wait())
        .await
        .is_ok()
}

#[tokio::test]
async fn git_commit_in_a_worktree_fires_the_watch() {
    let r = Remote::new();
    let trigger = Trigger::new();
    let _watch = watch_local_repo(&r.work, "main", trigger.clone()).expect("watch");
    assert!(!trigger.is_pending());

    write(&r.work, "apps/web/deploy.yaml", "replicas: 5\n");
    commit(&r.work, "scale");
    assert!(fired_within_a_second(&trigger).await, "commit noticed");

    // Amending rewrites the same ref.
    git(
        &r.work,
        &[
            "-c",
            "user.name=Ada Lovelace",
            "-c",
            "user.email=ada@example.com",
            "commit",
            "-q",
            "--amend",
            "-m",
            "scale web",
        ],
    );
    assert!(fired_within_a_second(&trigger).await, "amend noticed");
}

#[tokio::test]
async fn push_into_a_local_bare_repository_fires_the_watch() {
    let r = Remote::new();
    let trigger = Trigger::new();
    let _watch = watch_local_repo(&r.bare, "main", trigger.clone()).expect("watch bare");

    write(&r.work, "new.yaml", "a: 1\n");
    commit(&r.work, "add");
    r.push();
    assert!(fired_within_a_second(&trigger).await, "push noticed");
}

#[tokio::test]
async fn branch_with_a_slash_is_watched() {
    let r = Remote::new();
    git(&r.work, &["checkout", "-q", "-b", "env/prod"]);
    let trigger = Trigger::new();
    let _watch = watch_local_repo(&r.work, "env/prod", trigger.clone()).expect("watch");
    write(&r.work, "prod.yaml", "env: prod\n");
    commit(&r.work, "prod");
    assert!(
        fired_within_a_second(&trigger).await,
        "commit on env/prod noticed"
    );
}

#[tokio::test]
async fn reading_the_repository_does_not_fire_the_watch() {
    let r = Remote::new();
    let trigger = Trigger::new();
    let _watch = watch_local_repo(&r.work, "main", trigger.clone()).expect("watch");
    // What the daemon does after a trigger: resolve and read. Then a git command that writes
    // nothing to refs.
    let spec = rollgit_source::RepoSpec::new(r.work.to_str().expect("utf-8"), "main");
    let cache = r.tmp.path().join("cache");
    let head = rollgit_source::fetch(&spec, &cache).expect("resolve").head;
    let repo = rollgit_source::Repo::open(&spec, &cache).expect("open");
    repo.list_files(head).expect("list");
    git(&r.work, &["log", "-1", "--oneline"]);
    // A commit is the proof the watch is live; only one fetch may be pending after it, and
    // nothing was pending before it.
    assert!(!trigger.is_pending(), "reads must not trigger a fetch");
    write(&r.work, "x.yaml", "x: 1\n");
    commit(&r.work, "x");
    assert!(fired_within_a_second(&trigger).await);
}
