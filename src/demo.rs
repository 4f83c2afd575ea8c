//! The demo repository `rollgit up` creates from `examples-repo/` (embedded in the binary, so
//! `up` works from any directory).

use std::path::Path;
use std::process::Command;

/// The files of `examples-repo/`, relative to it.
pub const FILES: &[(&str, &str)] = &[
    ("README.md", include_str!("../examples-repo/README.md")),
    (
        "apps/guestbook/config.yaml",
        include_str!("../examples-repo/apps/guestbook/config.yaml"),
    ),
    (
        "apps/guestbook/deployment.yaml",
        include_str!("../examples-repo/apps/guestbook/deployment.yaml"),
    ),
    (
        "apps/express-server/app.yaml",
        include_str!("../examples-repo/apps/express-server/app.yaml"),
    ),
    (
        "apps/worker/app.yaml",
        include_str!("../examples-repo/apps/worker/app.yaml"),
    ),
    (
        "apps/cloneset/crd.yaml",
        include_str!("../examples-repo/apps/cloneset/crd.yaml"),
    ),
    (
        "apps/cloneset/app.yaml",
        include_str!("../examples-repo/apps/cloneset/app.yaml"),
    ),
    (
        "apps/echo/echoserver.yaml",
        include_str!("../examples-repo/apps/echo/echoserver.yaml"),
    ),
    (
        "apps/echo/rollout.yaml",
        include_str!("../examples-repo/apps/echo/rollout.yaml"),
    ),
    (
        "apps/canary/rollout.yaml",
        include_str!("../examples-repo/apps/canary/rollout.yaml"),
    ),
    (
        "fleet/demo/app-meta.yaml",
        include_str!("../examples-repo/fleet/demo/app-meta.yaml"),
    ),
    (
        "fleet/demo/policy-topology.yaml",
        include_str!("../examples-repo/fleet/demo/policy-topology.yaml"),
    ),
    (
        "fleet/demo/workflow.yaml",
        include_str!("../examples-repo/fleet/demo/workflow.yaml"),
    ),
    (
        "fleet/demo/app.yaml",
        include_str!("../examples-repo/fleet/demo/app.yaml"),
    ),
];

/// Errors of creating the demo repository.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A file could not be written.
    #[error("writing {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// `git` could not be run.
    #[error("running git (is it installed?)")]
    Spawn(#[source] std::io::Error),
    /// `git` failed.
    #[error("git {args}: {stderr}")]
    Git { args: String, stderr: String },
}

fn git(dir: &Path, args: &[&str]) -> Result<(), DemoError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=rollgit demo",
            "-c",
            "user.email=demo@rollgit.invalid",
        ])
        .args(args)
        .output()
        .map_err(DemoError::Spawn)?;
    if !out.status.success() {
        return Err(DemoError::Git {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Creates the demo repository at `dir` with one commit, unless it already exists.
/// Returns whether it was created.
pub fn ensure_repo(dir: &Path) -> Result<bool, DemoError> {
    if dir.join(".git").exists() {
        return Ok(false);
    }
    for (path, content) in FILES {
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|source| DemoError::Write {
                path: parent.display().to_string(),
                source,
            })?;
        }
        std::fs::write(&p, content).map_err(|source| DemoError::Write {
            path: p.display().to_string(),
            source,
        })?;
    }
    git(dir, &["init", "-q", "-b", "main"])?;
    // rollgit writes rollbacks (git revert commits) back to the branch it follows; for a
    // repository with that branch checked out, git refuses such a push unless the working tree
    // is updated with it (and it refuses that too when the tree has uncommitted changes).
    git(
        dir,
        &["config", "receive.denyCurrentBranch", "updateInstead"],
    )?;
    git(dir, &["add", "."])?;
    git(
        dir,
        &[
            "commit",
            "-q",
            "-m",
            "Demo apps: plain YAML, KubeVela webservice, worker, cloneset, an OpenKruise Rollout, an Argo Rollouts canary",
        ],
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_files_match_examples_repo() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-repo");
        let mut on_disk = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("read examples-repo") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    on_disk.push(
                        p.strip_prefix(&root)
                            .expect("prefix")
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = super::FILES.iter().map(|(p, _)| p.to_string()).collect();
        embedded.sort();
        assert_eq!(
            embedded, on_disk,
            "src/demo.rs must embed every file of examples-repo/"
        );
    }
}
