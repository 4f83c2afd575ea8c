//! Measure the source stage on a generated 10,000-file repository (1,000 apps × 10 files).
//!
//! `cargo run --release -p rollgit-source --example bigtree`
//!
//! Creates a bare remote and a clone with `git`, then times: first fetch (clone into the mirror),
//! no-op fetch, list_files, read_files of everything and of one app, one-file commit + push +
//! fetch, and changed_paths between the two commits.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use rollgit_source::{Repo, RepoSpec, fetch};

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["-c", "init.defaultBranch=main"])
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
        ])
        .args(args)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path();
    git(root, &["init", "-q", "--bare", "remote.git"]);
    git(root, &["clone", "-q", "remote.git", "work"]);
    let work = root.join("work");
    for app in 0..1000 {
        let dir = work.join(format!("apps/app-{app:04}"));
        std::fs::create_dir_all(&dir)?;
        for f in 0..10 {
            std::fs::write(
                dir.join(format!("obj-{f}.yaml")),
                format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-{app}-{f}\ndata:\n  key: value-{app}-{f}\n"
                ),
            )?;
        }
    }
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "10k files"]);
    git(&work, &["push", "-q", "origin", "main"]);

    let cache = root.join("cache");
    let spec = RepoSpec::new(
        format!("file://{}", root.join("remote.git").display()),
        "main",
    );

    let t = Instant::now();
    let first = fetch(&spec, &cache)?;
    println!("first fetch (clone):         {:>8.1} ms", ms(t));
    let t = Instant::now();
    let noop = fetch(&spec, &cache)?;
    println!(
        "no-op fetch:                 {:>8.1} ms (changed: {})",
        ms(t),
        noop.changed
    );

    let repo = Repo::open(&spec, &cache)?;
    let t = Instant::now();
    let files = repo.list_files(first.head)?;
    println!("list_files ({} files):    {:>8.1} ms", files.len(), ms(t));
    let t = Instant::now();
    let all = repo.read_files(first.head, "")?;
    let bytes: usize = all.iter().map(|(_, b)| b.len()).sum();
    println!("read_files all ({bytes} B): {:>8.1} ms", ms(t));
    let t = Instant::now();
    let one = repo.read_files(first.head, "apps/app-0500")?;
    println!("read_files one app ({}):    {:>8.1} ms", one.len(), ms(t));

    std::fs::write(
        work.join("apps/app-0500/obj-3.yaml"),
        "kind: ConfigMap\nchanged: true\n",
    )?;
    git(&work, &["commit", "-q", "-am", "one file"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let t = Instant::now();
    let second = fetch(&spec, &cache)?;
    println!(
        "fetch one-file change:       {:>8.1} ms (changed: {})",
        ms(t),
        second.changed
    );
    let t = Instant::now();
    let changed = repo.changed_paths(first.head, second.head)?;
    println!("changed_paths:               {:>8.1} ms {changed:?}", ms(t));
    let t = Instant::now();
    let info = repo.commit_info(second.head)?;
    println!(
        "commit_info:                 {:>8.1} ms ({})",
        ms(t),
        info.summary
    );
    Ok(())
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
