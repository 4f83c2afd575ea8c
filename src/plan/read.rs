//! Reading an app's files at a commit: the only place that decides which files of a
//! repository make which app (discovery under the configured roots, a nested app's files left
//! to it), and which other files `ref-objects` may read. Blocking (gix): call from
//! `spawn_blocking`.

use rollgit_render::{AppDir, ObjectIndex, SourceFile};
use rollgit_source::{ObjectId, Repo, SourceError};
use std::collections::{BTreeMap, BTreeSet};

/// The apps of a commit and the files of those asked for.
pub struct Snapshot {
    /// Every app of the commit, sorted by directory.
    pub apps: Vec<AppDir>,
    /// The apps asked for, with their files.
    pub read: Vec<(AppDir, Vec<SourceFile>)>,
    /// The repository's objects, for `ref-objects` (only when an app read uses it).
    pub index: Option<ObjectIndex>,
    /// The commit's summary line.
    pub summary: String,
}

/// Which apps to read.
pub enum Which<'a> {
    /// Every app.
    All,
    /// The apps a change since `prev` affects, plus those not known yet or whose last commit
    /// failed. `known`: app name → (failed last time, its directory with the paths it
    /// referenced last).
    Changed {
        /// The commit the known apps were read at.
        prev: ObjectId,
        /// What is known of each app.
        known: &'a BTreeMap<String, (bool, Option<AppDir>)>,
    },
}

/// Reads the apps of `head` under `roots` (empty: the repository is one app).
pub fn read_apps(
    repo: &Repo,
    head: ObjectId,
    roots: &[String],
    which: Which<'_>,
) -> Result<Snapshot, SourceError> {
    let files = repo.list_files(head)?;
    let mut apps = rollgit_render::discover_apps(&files, roots);
    let wanted: BTreeSet<String> = match which {
        Which::All => apps.iter().map(|a| a.name.clone()).collect(),
        Which::Changed { prev, known } => {
            for a in &mut apps {
                if let Some((_, Some(d))) = known.get(&a.name) {
                    a.referenced = d.referenced.clone();
                }
            }
            let changed = repo.changed_paths(prev, head)?;
            let mut wanted: BTreeSet<String> = rollgit_render::affected_apps(&changed, &apps)
                .into_iter()
                .collect();
            for a in &apps {
                if known.get(&a.name).is_none_or(|(failed, _)| *failed) {
                    wanted.insert(a.name.clone());
                }
            }
            wanted
        }
    };
    let mut read = Vec::new();
    let mut needs_refs = false;
    for a in apps.iter().filter(|a| wanted.contains(&a.name)) {
        let files = app_files(repo, head, a, &apps)?;
        needs_refs |= files.iter().any(uses_ref_objects);
        read.push((a.clone(), files));
    }
    let index = needs_refs.then(|| {
        let paths: Vec<String> = files
            .iter()
            .filter(|p| rollgit_render::is_manifest_path(p))
            .cloned()
            .collect();
        ObjectIndex::build(&paths, &|p: &str| repo.read_file(head, p).ok().flatten())
    });
    let summary = repo.commit_info(head)?.summary;
    Ok(Snapshot {
        apps,
        read,
        index,
        summary,
    })
}

/// The files of `app` at `commit` (those of a deeper app of `apps` left out).
pub fn app_files(
    repo: &Repo,
    commit: ObjectId,
    app: &AppDir,
    apps: &[AppDir],
) -> Result<Vec<SourceFile>, SourceError> {
    Ok(repo
        .read_files(commit, &app.dir)?
        .into_iter()
        .filter(|(p, _)| rollgit_render::belongs_to(p, app, apps))
        .map(|(p, c)| SourceFile::new(p, c))
        .collect())
}

/// App `name` in directory `dir` at `commit`, with its files, and the repository index when
/// it uses `ref-objects`. Its files are those discovery under `roots` gives it; when the roots
/// do not make `dir` an app (a command given only the repository), every manifest under `dir`.
pub fn read_app_at(
    repo: &Repo,
    commit: ObjectId,
    roots: &[String],
    name: &str,
    dir: &str,
) -> Result<(AppDir, Vec<SourceFile>, Option<ObjectIndex>), SourceError> {
    let files = repo.list_files(commit)?;
    let mut apps = rollgit_render::discover_apps(&files, roots);
    let app = match apps.iter().find(|a| a.dir == dir) {
        Some(a) => a.clone(),
        None => {
            let a = AppDir {
                name: name.to_string(),
                dir: dir.to_string(),
                referenced: Vec::new(),
            };
            apps = vec![a.clone()];
            a
        }
    };
    let read = app_files(repo, commit, &app, &apps)?;
    let index = read.iter().any(uses_ref_objects).then(|| {
        let paths: Vec<String> = files
            .iter()
            .filter(|p| rollgit_render::is_manifest_path(p))
            .cloned()
            .collect();
        ObjectIndex::build(&paths, &|p: &str| repo.read_file(commit, p).ok().flatten())
    });
    Ok((app, read, index))
}

/// Whether a file may name objects of other files (`ref-objects` components): only then is
/// the repository indexed.
fn uses_ref_objects(f: &SourceFile) -> bool {
    f.content.windows(11).any(|w| w == b"ref-objects")
}
