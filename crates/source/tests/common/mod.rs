//! Real git repositories in temp dirs, driven by the `git` command as a user would.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Run `git` in `dir` with a config isolated from the machine's (no global or system config).
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Commit everything in the worktree as a user would.
pub fn commit(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(
        dir,
        &[
            "-c",
            "user.name=Ada Lovelace",
            "-c",
            "user.email=ada@example.com",
            "commit",
            "-q",
            "-m",
            message,
        ],
    );
    git(dir, &["rev-parse", "HEAD"])
}

pub fn write(dir: &Path, path: &str, contents: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().expect("has parent")).expect("mkdir");
    std::fs::write(p, contents).expect("write");
}

/// A bare "remote" and a clone of it with one pushed commit.
pub struct Remote {
    pub tmp: tempfile::TempDir,
    pub bare: PathBuf,
    pub work: PathBuf,
    pub cache: PathBuf,
}

impl Remote {
    pub fn new() -> Remote {
        let tmp = tempfile::tempdir().expect("tempdir");
        let bare = tmp.path().join("remote.git");
        let work = tmp.path().join("work");
        let cache = tmp.path().join("cache");
        git(tmp.path(), &["init", "-q", "--bare", "remote.git"]);
        git(tmp.path(), &["clone", "-q", "remote.git", "work"]);
        write(
            &work,
            "apps/web/deploy.yaml",
            "kind: Deployment\nname: web\n",
        );
        write(&work, "apps/web/service.yaml", "kind: Service\nname: web\n");
        write(
            &work,
            "apps/worker/deploy.yaml",
            "kind: Deployment\nname: worker\n",
        );
        write(&work, "apps/db/config.yaml", "kind: ConfigMap\nname: db\n");
        write(&work, "README.md", "# demo\n");
        commit(&work, "initial");
        git(&work, &["push", "-q", "origin", "main"]);
        Remote {
            tmp,
            bare,
            work,
            cache,
        }
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    pub fn push(&self) {
        git(&self.work, &["push", "-q", "origin", "HEAD:main"]);
    }
}
