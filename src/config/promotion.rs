//! `promotion`: pipelines of stages an app walks through by pull request, and the forge that
//! hosts the pull requests. Validated once into [`Pipeline`]s; every error names the field
//! (`promotion[0].stages[1].soak: ...`); the forge token is a [`Secret`].

use super::{Repo, Secret, parse_duration, read_secret_env, read_secret_file};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `promotion[]` as written.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPipeline {
    /// The pipeline's name (the app that walks through it).
    pub app: Option<String>,
    /// The repository (its name in `repos`) of the stages that name none (default: the
    /// first repository).
    pub repo: Option<String>,
    /// Where the pull requests are opened (each stage may override it).
    pub forge: Option<RawForge>,
    /// The stages, in order.
    #[serde(default)]
    pub stages: Vec<RawStage>,
}

/// `promotion[].stages[]`.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawStage {
    /// The stage's name (`dev`, `staging`, `prod`).
    pub name: Option<String>,
    /// The stage's app directory.
    pub path: Option<String>,
    /// The branch the stage lives on, when it is not the repository's (a repository of
    /// `repos` with the same URL must follow it).
    pub branch: Option<String>,
    /// The repository (its name in `repos`) the stage lives in.
    pub repo: Option<String>,
    /// How long the stage stays healthy before it is promoted to the next (default 0s).
    pub soak: Option<String>,
    /// Merge the pull request into this stage when the forge says it is mergeable.
    pub auto_merge: Option<bool>,
    /// Files (globs relative to the stage's directory) never carried into this stage.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Carry only the container image references into this stage.
    pub images: Option<bool>,
    /// The forge of this stage's pull requests (default: the pipeline's).
    pub forge: Option<RawForge>,
}

/// `forge`: where the pull requests are opened.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawForge {
    /// github, gitlab, gitea (also Forgejo) or bitbucket.
    pub kind: Option<String>,
    /// The REST API's base URL (default: the public service's; required for gitea).
    pub url: Option<String>,
    /// A file holding the API token.
    pub token_file: Option<PathBuf>,
    /// An environment variable holding the API token.
    pub token_env: Option<String>,
    /// `owner/name` (GitHub, Gitea), `workspace/slug` (Bitbucket).
    pub repo: Option<String>,
    /// The GitLab project: its id or its `group/name` path.
    pub project: Option<String>,
    /// How often an open pull request's state (merged, closed, mergeable) is asked for
    /// (default 30s: the APIs' rate limits).
    pub poll_interval: Option<String>,
}

/// The forges rollgit opens pull requests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForgeKind {
    /// GitHub (and GitHub Enterprise).
    Github,
    /// GitLab merge requests.
    Gitlab,
    /// Gitea and Forgejo.
    Gitea,
    /// Bitbucket Cloud.
    Bitbucket,
}

impl ForgeKind {
    /// The value of `forge.kind`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "github" => Self::Github,
            "gitlab" => Self::Gitlab,
            "gitea" | "forgejo" => Self::Gitea,
            "bitbucket" => Self::Bitbucket,
            _ => return None,
        })
    }

    /// Its name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Gitlab => "gitlab",
            Self::Gitea => "gitea",
            Self::Bitbucket => "bitbucket",
        }
    }

    /// The public service's API, where there is one.
    pub fn default_url(self) -> Option<&'static str> {
        match self {
            Self::Github => Some("https://api.github.com"),
            Self::Gitlab => Some("https://gitlab.com/api/v4"),
            Self::Bitbucket => Some("https://api.bitbucket.org/2.0"),
            Self::Gitea => None,
        }
    }
}

/// A resolved forge.
#[derive(Debug, Clone)]
pub struct Forge {
    /// Which API.
    pub kind: ForgeKind,
    /// The API's base URL, without a trailing `/`.
    pub url: String,
    /// The token (never logged).
    pub token: Secret,
    /// `owner/name`, `workspace/slug`, or the GitLab project id or path.
    pub repo: String,
    /// How often an open pull request's state is asked for.
    pub poll_interval: Duration,
}

/// The default `forge.pollInterval`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);

/// A resolved stage.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Name.
    pub name: String,
    /// The name (in `repos`) of the repository (and branch) the stage lives on.
    pub repo: String,
    /// The stage's app directory (no trailing `/`).
    pub path: String,
    /// Soak before promoting out of this stage.
    pub soak: Duration,
    /// Merge pull requests into this stage when mergeable.
    pub auto_merge: bool,
    /// Globs (relative to the stage's directory) never carried into this stage.
    pub exclude: Vec<rollgit_syntax::Glob>,
    /// Carry only image references into this stage.
    pub images: bool,
    /// Where pull requests into this stage are opened (`None` only for the first stage).
    pub forge: Option<Forge>,
}

/// A resolved pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The app that walks through it.
    pub app: String,
    /// At least two stages.
    pub stages: Vec<Stage>,
}

/// Validates `promotion` against the resolved repositories; errors are `(field, message)`.
pub(super) fn resolve_pipelines(
    raw: Vec<RawPipeline>,
    repos: &[Repo],
) -> Result<Vec<Pipeline>, (String, String)> {
    let mut out: Vec<Pipeline> = Vec::new();
    for (i, p) in raw.into_iter().enumerate() {
        let f = |k: &str| format!("promotion[{i}].{k}");
        let app = p
            .app
            .filter(|a| !a.trim().is_empty())
            .ok_or_else(|| (f("app"), "required".to_string()))?;
        if !rollgit_syntax::is_dns1123_label(&app) {
            return Err((
                f("app"),
                format!("{app:?} must be a DNS-1123 label (lower-case letters, digits, '-')"),
            ));
        }
        if out.iter().any(|o| o.app == app) {
            return Err((f("app"), format!("duplicate pipeline {app:?}")));
        }
        let find_repo = |field: String, name: &str| {
            repos
                .iter()
                .position(|r| r.name == name)
                .ok_or_else(|| (field, format!("no repository named {name:?} in repos")))
        };
        let default_repo = match &p.repo {
            Some(r) => find_repo(f("repo"), r)?,
            None => 0,
        };
        let pipeline_forge = p
            .forge
            .as_ref()
            .map(|fg| resolve_forge(fg).map_err(|(k, m)| (f(&format!("forge.{k}")), m)))
            .transpose()?;
        if p.stages.len() < 2 {
            return Err((f("stages"), "a pipeline needs at least two stages".into()));
        }
        let mut stages: Vec<Stage> = Vec::new();
        for (j, s) in p.stages.into_iter().enumerate() {
            let g = |k: &str| f(&format!("stages[{j}].{k}"));
            let name = s.name.ok_or_else(|| (g("name"), "required".to_string()))?;
            if !rollgit_syntax::is_dns1123_label(&name) {
                return Err((
                    g("name"),
                    format!("{name:?} must be a DNS-1123 label (lower-case letters, digits, '-')"),
                ));
            }
            if stages.iter().any(|x| x.name == name) {
                return Err((g("name"), format!("duplicate stage {name:?}")));
            }
            let mut repo = match &s.repo {
                Some(r) => find_repo(g("repo"), r)?,
                None => default_repo,
            };
            if let Some(branch) = &s.branch {
                let url = &repos[repo].url;
                repo = repos
                    .iter()
                    .position(|r| &r.url == url && &r.branch == branch)
                    .ok_or_else(|| {
                        (
                            g("branch"),
                            format!(
                                "no repository in repos follows branch {branch:?} of {}; add one \
                                 (rollgit deploys a stage from a repository it follows)",
                                repos[repo].name
                            ),
                        )
                    })?;
            }
            let path = match s.path {
                Some(p) => p.trim_matches('/').to_string(),
                None => match stages.first() {
                    Some(first) if s.branch.is_some() || s.repo.is_some() => first.path.clone(),
                    _ => return Err((g("path"), "required".into())),
                },
            };
            if path.split('/').any(|c| c == "." || c == "..") {
                return Err((g("path"), format!("{path:?} must not contain . or ..")));
            }
            if stages
                .iter()
                .any(|x| x.repo == repos[repo].name && x.path == path)
            {
                return Err((
                    g("path"),
                    format!(
                        "{path:?} is another stage's directory in the same repository and branch"
                    ),
                ));
            }
            let soak = match &s.soak {
                Some(d) => parse_duration(d).map_err(|m| (g("soak"), m))?,
                None => Duration::ZERO,
            };
            let mut exclude = Vec::new();
            for (k, e) in s.exclude.iter().enumerate() {
                exclude.push(
                    rollgit_syntax::Glob::path(e)
                        .map_err(|err| (g(&format!("exclude[{k}]")), err.to_string()))?,
                );
            }
            let forge = match &s.forge {
                Some(fg) => {
                    Some(resolve_forge(fg).map_err(|(k, m)| (g(&format!("forge.{k}")), m))?)
                }
                None => pipeline_forge.clone(),
            };
            if j > 0 && forge.is_none() {
                return Err((
                    g("forge"),
                    "required (or promotion[].forge): where the pull requests into this stage are opened"
                        .into(),
                ));
            }
            stages.push(Stage {
                name,
                repo: repos[repo].name.clone(),
                path,
                soak,
                auto_merge: s.auto_merge.unwrap_or(false),
                exclude,
                images: s.images.unwrap_or(false),
                forge,
            });
        }
        out.push(Pipeline { app, stages });
    }
    Ok(out)
}

fn resolve_forge(raw: &RawForge) -> Result<Forge, (String, String)> {
    let kind_text = raw
        .kind
        .as_deref()
        .ok_or_else(|| ("kind".to_string(), "required".to_string()))?;
    let kind = ForgeKind::parse(kind_text).ok_or_else(|| {
        (
            "kind".to_string(),
            format!("{kind_text:?} must be github, gitlab, gitea or bitbucket"),
        )
    })?;
    let url = match (&raw.url, kind.default_url()) {
        (Some(u), _) => u.trim_end_matches('/').to_string(),
        (None, Some(d)) => d.to_string(),
        (None, None) => return Err(("url".into(), format!("required for {kind_text}"))),
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(("url".into(), format!("{url:?} must be an http(s) URL")));
    }
    if url.contains('@') {
        return Err((
            "url".into(),
            "must not carry credentials; use tokenFile or tokenEnv".into(),
        ));
    }
    let token = match (&raw.token_file, &raw.token_env) {
        (Some(p), None) => read_secret_file(p),
        (None, Some(v)) => read_secret_env(v),
        _ => Err("give exactly one of tokenFile, tokenEnv".to_string()),
    }
    .map_err(|m| ("token".to_string(), m))?;
    if token.trim().is_empty() {
        return Err(("token".into(), "the token is empty".into()));
    }
    let repo = match (kind, &raw.repo, &raw.project) {
        (ForgeKind::Gitlab, None, Some(p)) | (ForgeKind::Gitlab, Some(p), None) => p.clone(),
        (ForgeKind::Gitlab, _, _) => {
            return Err(("project".into(), "give the project id or path".into()));
        }
        (_, Some(r), None) => {
            if r.split('/').count() != 2 || r.split('/').any(str::is_empty) {
                return Err(("repo".into(), format!("{r:?} must be owner/name")));
            }
            r.clone()
        }
        (_, _, Some(_)) => {
            return Err((
                "project".into(),
                format!("only for gitlab; {kind_text} takes repo: owner/name"),
            ));
        }
        (_, None, None) => return Err(("repo".into(), "required (owner/name)".into())),
    };
    let poll_interval = match &raw.poll_interval {
        Some(d) => parse_duration(d).map_err(|m| ("pollInterval".to_string(), m))?,
        None => DEFAULT_POLL_INTERVAL,
    };
    Ok(Forge {
        kind,
        url,
        token: Secret::new(token),
        repo,
        poll_interval,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, RawConfig};

    fn resolve(yaml: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = serde_saphyr::from_str(yaml).map_err(|e| ConfigError::Parse {
            path: "t.yaml".into(),
            message: e.to_string(),
        })?;
        raw.resolve("t.yaml")
    }

    const REPOS: &str = "repos:
- {name: deploy, url: /tmp/deploy}
- {name: deploy-prod, url: /tmp/deploy, branch: prod}
";

    fn with(pipeline: &str) -> String {
        format!("{REPOS}promotion:\n{pipeline}")
    }

    /// A forge whose token is any non-empty value (`PATH` is always set).
    const FORGE: &str = "{kind: github, tokenEnv: PATH, repo: org/deploy}";

    #[test]
    fn invalid_pipelines_name_the_field() {
        let rows: Vec<(&str, String, &str)> = vec![
            (
                "no app",
                with("- stages: [{name: a, path: x}, {name: b, path: y}]\n"),
                "t.yaml: promotion[0].app: required",
            ),
            (
                "one stage",
                with(&format!(
                    "- app: shop\n  forge: {FORGE}\n  stages: [{{name: a, path: x}}]\n"
                )),
                "t.yaml: promotion[0].stages: a pipeline needs at least two stages",
            ),
            (
                "a bad soak",
                with(&format!(
                    "- app: shop\n  forge: {FORGE}\n  stages: [{{name: a, path: x, soak: soon}}, {{name: b, path: y}}]\n"
                )),
                "t.yaml: promotion[0].stages[0].soak: invalid duration \"soon\"",
            ),
            (
                "a bad exclude glob",
                with(&format!(
                    "- app: shop\n  forge: {FORGE}\n  stages: [{{name: a, path: x}}, {{name: b, path: y, exclude: [\"a[\"]}}]\n"
                )),
                "t.yaml: promotion[0].stages[1].exclude[0]: invalid pattern",
            ),
            (
                "no forge",
                with("- app: shop\n  stages: [{name: a, path: x}, {name: b, path: y}]\n"),
                "t.yaml: promotion[0].stages[1].forge: required",
            ),
            (
                "an unknown forge",
                with(
                    "- app: shop\n  forge: {kind: svn, tokenEnv: X, repo: a/b}\n  stages: [{name: a, path: x}, {name: b, path: y}]\n",
                ),
                "t.yaml: promotion[0].forge.kind: \"svn\" must be github, gitlab, gitea or bitbucket",
            ),
            (
                "gitea needs its URL",
                with(
                    "- app: shop\n  forge: {kind: gitea, tokenEnv: X, repo: a/b}\n  stages: [{name: a, path: x}, {name: b, path: y}]\n",
                ),
                "t.yaml: promotion[0].forge.url: required for gitea",
            ),
            (
                "a token that is not there",
                with(
                    "- app: shop\n  forge: {kind: github, tokenEnv: ROLLGIT_TEST_NO_SUCH_VAR, repo: a/b}\n  stages: [{name: a, path: x}, {name: b, path: y}]\n",
                ),
                "t.yaml: promotion[0].forge.token: environment variable ROLLGIT_TEST_NO_SUCH_VAR is not set",
            ),
            (
                "an empty token",
                with(
                    "- app: shop\n  forge: {kind: github, tokenFile: /dev/null, repo: a/b}\n  stages: [{name: a, path: x}, {name: b, path: y}]\n",
                ),
                "t.yaml: promotion[0].forge.token: the token is empty",
            ),
            (
                "a branch no repository follows",
                with(&format!(
                    "- app: shop\n  forge: {FORGE}\n  stages: [{{name: a, path: x}}, {{name: b, branch: release}}]\n"
                )),
                "t.yaml: promotion[0].stages[1].branch: no repository in repos follows branch \"release\"",
            ),
            (
                "two stages in one directory",
                with(&format!(
                    "- app: shop\n  forge: {FORGE}\n  stages: [{{name: a, path: x}}, {{name: b, path: x/}}]\n"
                )),
                "t.yaml: promotion[0].stages[1].path: \"x\" is another stage's directory",
            ),
            (
                "an unknown field",
                with("- app: shop\n  stages: [{name: a, path: x, autoMerg: true}]\n"),
                "unknown field `autoMerg`",
            ),
        ];
        for (case, yaml, want) in rows {
            let got = resolve(&yaml).expect_err(case).to_string();
            assert!(got.contains(want), "{case}: {got}");
        }
    }

    #[test]
    fn a_pipeline_resolves_with_stage_branches_and_redacted_tokens() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cr3t-token\n").expect("write the token");
        let cfg = resolve(&with(&format!(
            "- app: shop
  forge: {{kind: gitlab, url: https://gitlab.example/api/v4/, tokenFile: {}, project: g/deploy}}
  stages:
  - {{name: dev, path: envs/dev/shop}}
  - {{name: staging, path: envs/staging/shop, soak: 10m, exclude: [\"*.env\"], autoMerge: true}}
  - {{name: prod, branch: prod, images: true}}
",
            token.display()
        )))
        .expect("valid");
        let p = &cfg.promotion[0];
        assert_eq!(p.app, "shop");
        let names: Vec<(&str, &str, &str)> = p
            .stages
            .iter()
            .map(|s| (s.name.as_str(), s.repo.as_str(), s.path.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("dev", "deploy", "envs/dev/shop"),
                ("staging", "deploy", "envs/staging/shop"),
                ("prod", "deploy-prod", "envs/dev/shop"),
            ],
            "a branch stage keeps the first stage's directory"
        );
        let staging = &p.stages[1];
        assert_eq!(staging.soak, std::time::Duration::from_secs(600));
        assert!(staging.auto_merge && staging.exclude[0].is_match("a.env"));
        assert!(p.stages[2].images);
        let forge = staging.forge.as_ref().expect("the pipeline's forge");
        assert_eq!(forge.url, "https://gitlab.example/api/v4");
        assert_eq!(forge.repo, "g/deploy");
        assert_eq!(forge.token.expose(), "s3cr3t-token");
        assert!(
            !format!("{cfg:?}").contains("s3cr3t"),
            "the token is redacted"
        );
    }
}
