//! Reading an app's files at a commit: the only place that decides which files of a
//! repository make which app (discovery under the configured roots, a nested app's files left
//! to it), and which other files `ref-objects` may read. Blocking (gix): call from
//! `spawn_blocking`.

use rollgit_render::{AppDir, AppNaming, ObjectIndex, SourceFile};
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
    /// referenced last); an app is matched by its directory (by its name when none is known),
    /// and an app not read again keeps its name.
    Changed {
        /// The commit the known apps were read at.
        prev: ObjectId,
        /// What is known of each app.
        known: &'a BTreeMap<String, (bool, Option<AppDir>)>,
    },
}

/// Why the apps of a commit could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Reading Git failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Two apps of the commit would have one name: the commit is rejected whole (nothing of
    /// it is applied or pruned), since either app would take over the other's objects.
    #[error("{}", clash_text(.0))]
    NameClash(Vec<(String, Vec<String>)>),
}

fn clash_text(clashes: &[(String, Vec<String>)]) -> String {
    let lines: Vec<String> = clashes
        .iter()
        .map(|(name, by)| format!("app name {name:?} is given by {}", by.join(" and by ")))
        .collect();
    format!(
        "{}; an app's name must be unique in its repository: rename the Application (metadata.name) or the directory; nothing of this commit is applied",
        lines.join("; ")
    )
}

/// Reads the apps of `head` under `roots` (empty: the repository is one app). An app holding
/// one KubeVela Application is named after it ([`rollgit_render::app_naming`]); apps not
/// read keep the name `which` knows them by; when the names of two apps would be equal, the
/// commit is rejected ([`ReadError::NameClash`]).
pub fn read_apps(
    repo: &Repo,
    head: ObjectId,
    roots: &[String],
    which: Which<'_>,
) -> Result<Snapshot, ReadError> {
    let files = repo.list_files(head)?;
    let mut apps = rollgit_render::discover_apps(&files, roots);
    // The name each known app had, by directory.
    let mut kept: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    let mut wanted: BTreeSet<String> = match which {
        Which::All => apps.iter().map(|a| a.dir.clone()).collect(),
        Which::Changed { prev, known } => {
            // Two known apps of one directory (an Application renamed while the old app's
            // prune waits): neither is trusted, the directory is read again.
            let mut by_dir: BTreeMap<&str, Option<(&String, bool, &AppDir)>> = BTreeMap::new();
            for (n, (failed, d)) in known {
                if let Some(d) = d {
                    by_dir
                        .entry(d.dir.as_str())
                        .and_modify(|e| *e = None)
                        .or_insert(Some((n, *failed, d)));
                }
            }
            let mut wanted = BTreeSet::new();
            for a in &mut apps {
                let found = match by_dir.get(a.dir.as_str()) {
                    Some(Some((n, failed, d))) => Some(((*n).clone(), *failed, Some(*d))),
                    Some(None) => None,
                    None => known.get(&a.name).map(|(f, _)| (a.name.clone(), *f, None)),
                };
                match found {
                    Some((name, failed, d)) => {
                        if let Some(d) = d {
                            a.referenced = d.referenced.clone();
                        }
                        if failed {
                            wanted.insert(a.dir.clone());
                        }
                        let namespace = d.and_then(|d| d.namespace.clone());
                        kept.insert(a.dir.clone(), (name, namespace));
                    }
                    None => {
                        wanted.insert(a.dir.clone());
                    }
                }
            }
            let changed = repo.changed_paths(prev, head)?;
            let affected: BTreeSet<String> = rollgit_render::affected_apps(&changed, &apps)
                .into_iter()
                .collect();
            wanted.extend(
                apps.iter()
                    .filter(|a| affected.contains(&a.name))
                    .map(|a| a.dir.clone()),
            );
            wanted
        }
    };
    // Each app's files (of those read) and name; an app whose name clashes with another's is
    // read too (its name may have changed with a file it did not read).
    let mut read: BTreeMap<String, Vec<SourceFile>> = BTreeMap::new();
    let mut naming: BTreeMap<String, AppNaming> = BTreeMap::new();
    let names = loop {
        // All unread apps through one object cache (their parent trees inflated once), and
        // each file's app found through the index (not by a scan of every app).
        let index = rollgit_render::AppIndex::new(&apps);
        let unread: Vec<&AppDir> = apps
            .iter()
            .filter(|a| wanted.contains(&a.dir) && !read.contains_key(&a.dir))
            .collect();
        let dirs: Vec<&str> = unread.iter().map(|a| a.dir.as_str()).collect();
        let contents = repo.read_files_many(head, &dirs)?;
        for (a, contents) in unread.into_iter().zip(contents) {
            let files = own_files(contents, a, &index);
            // Undecided names (and homes) the app as before: when that is its directory's
            // name in no namespace of its own and no file can hold a KubeVela
            // Application, the files need not be parsed twice (here and in the render) to
            // learn that the directory names it.
            let as_before = kept
                .get(&a.dir)
                .is_none_or(|(n, ns)| *n == a.name && ns.is_none());
            let named = if as_before && rollgit_render::names_no_application(&files) {
                AppNaming::Directory
            } else {
                rollgit_render::app_naming(&files)
            };
            naming.insert(a.dir.clone(), named);
            read.insert(a.dir.clone(), files);
        }
        let homes: Vec<(String, Option<String>)> = apps
            .iter()
            .map(|a| match naming.get(&a.dir) {
                Some(AppNaming::Application {
                    name, namespace, ..
                }) => (name.clone(), namespace.clone()),
                Some(AppNaming::Directory) => (a.name.clone(), None),
                Some(AppNaming::Undecided) | None => kept
                    .get(&a.dir)
                    .cloned()
                    .unwrap_or_else(|| (a.name.clone(), None)),
            })
            .collect();
        let names: Vec<String> = homes.iter().map(|(n, _)| n.clone()).collect();
        let clashing = clashing_dirs(&apps, &names);
        let unread: Vec<String> = clashing
            .into_iter()
            .filter(|d| !read.contains_key(d))
            .collect();
        if unread.is_empty() {
            break homes;
        }
        wanted.extend(unread);
    };
    let (names, namespaces): (Vec<String>, Vec<Option<String>>) = names.into_iter().unzip();
    let clashes = clashes(&apps, &names, &naming);
    if !clashes.is_empty() {
        return Err(ReadError::NameClash(clashes));
    }
    for ((a, name), namespace) in apps.iter_mut().zip(names).zip(namespaces) {
        a.name = name;
        a.namespace = namespace;
    }
    let read: Vec<(AppDir, Vec<SourceFile>)> = apps
        .iter()
        .filter_map(|a| read.remove(&a.dir).map(|files| (a.clone(), files)))
        .collect();
    let needs_refs = read
        .iter()
        .any(|(_, files)| files.iter().any(uses_ref_objects));
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

/// The directories of the apps whose name (`names[i]` is `apps[i]`'s) another app has too.
fn clashing_dirs(apps: &[AppDir], names: &[String]) -> Vec<String> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for n in names {
        *count.entry(n.as_str()).or_default() += 1;
    }
    apps.iter()
        .zip(names)
        .filter(|(_, n)| count.get(n.as_str()).copied().unwrap_or(0) > 1)
        .map(|(a, _)| a.dir.clone())
        .collect()
}

/// Each name given twice, with what gives it (`the KubeVela Application at path:line`, `the
/// directory apps/web`).
fn clashes(
    apps: &[AppDir],
    names: &[String],
    naming: &BTreeMap<String, AppNaming>,
) -> Vec<(String, Vec<String>)> {
    let clashing: BTreeSet<String> = clashing_dirs(apps, names).into_iter().collect();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (a, name) in apps.iter().zip(names) {
        if !clashing.contains(&a.dir) {
            continue;
        }
        let by = match naming.get(&a.dir) {
            Some(AppNaming::Application { at, .. }) => {
                format!("the KubeVela Application at {at} (metadata.name)")
            }
            _ if a.dir.is_empty() => "the repository root's app".to_owned(),
            _ => format!("the directory {}", rollgit_syntax::escape(&a.dir)),
        };
        out.entry(name.clone()).or_default().push(by);
    }
    out.into_iter().collect()
}

/// The files of `app` at `commit` (those of a deeper app of `apps` left out).
pub fn app_files(
    repo: &Repo,
    commit: ObjectId,
    app: &AppDir,
    apps: &[AppDir],
) -> Result<Vec<SourceFile>, SourceError> {
    let index = rollgit_render::AppIndex::new(apps);
    Ok(own_files(repo.read_files(commit, &app.dir)?, app, &index))
}

/// Of the files read under `app`'s directory, `app`'s own (not a deeper app's).
fn own_files(
    read: Vec<(String, Vec<u8>)>,
    app: &AppDir,
    index: &rollgit_render::AppIndex<'_>,
) -> Vec<SourceFile> {
    read.into_iter()
        .filter(|(p, _)| index.belongs_to(p, app))
        .map(|(p, c)| SourceFile::new(p, c))
        .collect()
}

/// App `name` in directory `dir` at `commit` (named `name` whatever discovery names it), with its files, and the repository index when
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
    let app = match apps.iter_mut().find(|a| a.dir == dir) {
        // Named as the caller knows it (an app holding a KubeVela Application is named after
        // it, not its directory).
        Some(a) => {
            a.name = name.to_string();
            a.clone()
        }
        None => {
            let a = AppDir {
                name: name.to_string(),
                dir: dir.to_string(),
                referenced: Vec::new(),
                namespace: None,
            };
            apps = vec![a.clone()];
            a
        }
    };
    let read = app_files(repo, commit, &app, &apps)?;
    let mut app = app;
    if let AppNaming::Application { namespace, .. } = rollgit_render::app_naming(&read) {
        app.namespace = namespace;
    }
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
