//! `rollgit crds`: rollgit's CustomResourceDefinitions as YAML (what `deploy/crds/` holds),
//! for clusters where an admin installs them: `rollgit crds | kubectl apply -f -`.

use std::process::ExitCode;

/// Arguments of `rollgit crds`.
#[derive(clap::Args, Debug)]
pub struct CrdsArgs {}

/// Prints every CRD, separated by `---`.
pub fn run(_: &CrdsArgs) -> ExitCode {
    let crds = rollgit::k8s::crds::crds();
    let docs: Vec<String> = crds.iter().map(rollgit::k8s::crds::crd_yaml).collect();
    print!("{}", docs.join("---\n"));
    ExitCode::SUCCESS
}
