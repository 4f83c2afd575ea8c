//! App discovery and incremental render.

use rollgit_render::{AppDir, AppIndex, affected_apps, app_of, belongs_to, discover_apps};

fn paths(ps: &[&str]) -> Vec<String> {
    ps.iter().map(|p| (*p).to_owned()).collect()
}

fn found(ps: &[&str], roots: &[&str]) -> Vec<(String, String)> {
    discover_apps(&paths(ps), &paths(roots))
        .into_iter()
        .map(|a| (a.name, a.dir))
        .collect()
}

fn pair(n: &str, d: &str) -> (String, String) {
    (n.to_owned(), d.to_owned())
}

#[test]
fn discover_table() {
    let tree = [
        "README.md",
        "apps/web/deploy.yaml",
        "apps/web/svc.yml",
        "apps/api/app.yaml",
        "apps/api/base/cm.yaml",
        "apps/docs/README.md",
        "infra/ns.yaml",
        "envs/prod/web/app.yaml",
        "envs/dev/web/app.json",
        "root.yaml",
    ];
    // (case, roots, expected (name, dir))
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<(String, String)>);
    let cases: Vec<Case> = vec![
        (
            "plain dir with yaml",
            vec!["infra"],
            vec![pair("infra", "infra")],
        ),
        (
            "trailing slash and ./",
            vec!["./infra/"],
            vec![pair("infra", "infra")],
        ),
        (
            "glob one per directory",
            vec!["apps/*"],
            vec![pair("api", "apps/api"), pair("web", "apps/web")],
        ),
        (
            "plain dir without yaml acts as dir/*",
            vec!["apps"],
            vec![pair("api", "apps/api"), pair("web", "apps/web")],
        ),
        (
            "prefix glob",
            vec!["apps/w*"],
            vec![pair("web", "apps/web")],
        ),
        (
            "name collisions use the whole dir",
            vec!["envs/*/web"],
            vec![
                pair("envs-dev-web", "envs/dev/web"),
                pair("envs-prod-web", "envs/prod/web"),
            ],
        ),
        (
            "double star",
            vec!["envs/**/web"],
            vec![
                pair("envs-dev-web", "envs/dev/web"),
                pair("envs-prod-web", "envs/prod/web"),
            ],
        ),
        ("repository root", vec!["."], vec![pair("root", "")]),
        (
            "a trailing double star matches the directory itself too",
            vec!["apps/**"],
            vec![
                pair("apps", "apps"),
                pair("api", "apps/api"),
                pair("base", "apps/api/base"),
                pair("web", "apps/web"),
            ],
        ),
        (
            "alternatives",
            vec!["apps/{web,api}"],
            vec![pair("api", "apps/api"), pair("web", "apps/web")],
        ),
        (
            "a pattern that does not compile finds nothing",
            vec!["apps/[web"],
            vec![],
        ),
        ("missing dir", vec!["nothing"], vec![]),
        (
            "several roots",
            vec!["infra", "apps/web"],
            vec![pair("web", "apps/web"), pair("infra", "infra")],
        ),
    ];
    for (case, roots, expected) in cases {
        assert_eq!(found(&tree, &roots), expected, "{case}");
    }
}

fn app(name: &str, dir: &str, referenced: &[&str]) -> AppDir {
    AppDir {
        name: name.into(),
        dir: dir.into(),
        referenced: paths(referenced),
        namespace: None,
    }
}

#[test]
fn affected_table() {
    let apps = vec![
        app("web", "apps/web", &["shared/config.yaml"]),
        app("api", "apps/api", &[]),
        app("nested", "apps/api/nested", &[]),
        app("webx", "apps/webx", &[]),
    ];
    // (case, changed, expected)
    let cases: &[(&str, &[&str], &[&str])] = &[
        ("one app", &["apps/web/deploy.yaml"], &["web"]),
        (
            "sibling with a common prefix is not affected",
            &["apps/webx/a.yaml"],
            &["webx"],
        ),
        ("subdirectory", &["apps/api/base/cm.yaml"], &["api"]),
        ("nested app wins", &["apps/api/nested/x.yaml"], &["nested"]),
        (
            "non-manifest change affects nothing",
            &["apps/web/README.md"],
            &[],
        ),
        ("unrelated change", &["docs/index.yaml"], &[]),
        ("referenced file", &["shared/config.yaml"], &["web"]),
        (
            "several, sorted and deduplicated",
            &["apps/web/a.yaml", "apps/api/b.yaml", "apps/web/c.yaml"],
            &["api", "web"],
        ),
    ];
    for (case, changed, expected) in cases {
        assert_eq!(
            affected_apps(&paths(changed), &apps),
            paths(expected),
            "{case}"
        );
    }
    assert_eq!(
        app_of("apps/api/nested/x.yaml", &apps).map(|a| a.name.as_str()),
        Some("nested")
    );
}

/// The index finds the same app as the scan over every app, for paths at every depth, with
/// and without an app at the repository root.
#[test]
fn app_index_agrees_with_app_of() {
    let nested = vec![
        app("web", "apps/web", &[]),
        app("api", "apps/api", &[]),
        app("nested", "apps/api/nested", &[]),
        app("webx", "apps/webx", &[]),
    ];
    let mut rooted = nested.clone();
    rooted.push(app("root", "", &[]));
    // (path, its app without a root app, with one)
    let rows: &[(&str, Option<&str>, &str)] = &[
        ("apps/web/deploy.yaml", Some("web"), "web"),
        ("apps/webx/a.yaml", Some("webx"), "webx"),
        ("apps/web", None, "root"),
        ("apps/api/base/cm.yaml", Some("api"), "api"),
        ("apps/api/nested/x.yaml", Some("nested"), "nested"),
        ("apps/api/nested/deeper/x.yaml", Some("nested"), "nested"),
        ("apps/apix/x.yaml", None, "root"),
        ("top.yaml", None, "root"),
        ("apps/web/README.md", Some("web"), "web"),
    ];
    for (path, plain, with_root) in rows {
        let name = |a: Option<&AppDir>| a.map(|a| a.name.clone());
        for (apps, want) in [(&nested, *plain), (&rooted, Some(*with_root))] {
            let index = AppIndex::new(apps);
            assert_eq!(name(index.app_of(path)), want.map(str::to_string), "{path}");
            assert_eq!(name(index.app_of(path)), name(app_of(path, apps)), "{path}");
            for a in apps.iter() {
                assert_eq!(
                    index.belongs_to(path, a),
                    belongs_to(path, a, apps),
                    "{path} in {}",
                    a.name
                );
            }
        }
    }
}

/// A directory whose name cannot name an app (a newline, an ANSI escape, upper case, too
/// long) is discovered under that name, not renamed or skipped; its render is rejected whole,
/// and the error shows the name escaped.
#[test]
fn invalid_app_directory_names_are_discovered_and_rejected_escaped() {
    let long = "a".repeat(64);
    let dir_long = format!("apps/{long}");
    // (case, directory, the app name as the error shows it)
    let rows: &[(&str, &str, &str)] = &[
        ("newline", "apps/we\nb", "we\\nb"),
        ("ansi escape", "apps/\x1b[31mred", "\\u{1b}[31mred"),
        ("right-to-left override", "apps/a\u{202e}b", "a\\u{202e}b"),
        ("upper case", "apps/Web", "Web"),
        ("underscore", "apps/my_app", "my_app"),
        ("64 characters", &dir_long, &long),
    ];
    for (case, dir, shown) in rows {
        let file = format!("{dir}/app.yaml");
        let apps = discover_apps(&paths(&[&file]), &paths(&["apps/*"]));
        let name = dir.trim_start_matches("apps/");
        assert_eq!(apps.len(), 1, "{case}");
        assert_eq!(
            (apps[0].name.as_str(), apps[0].dir.as_str()),
            (name, *dir),
            "{case}"
        );
        assert!(rollgit_render::check_app_name(name).is_err(), "{case}");
        let files = [rollgit_render::SourceFile::new(
            file.clone(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
        )];
        let err = rollgit_render::render_app(
            name,
            "default",
            &files,
            &rollgit_render::NoRefs,
            &rollgit_render::RevisionState::default(),
        )
        .expect_err(case)
        .to_string();
        let shown_file = rollgit_syntax::escape(&file);
        assert_eq!(
            err,
            format!(
                "{shown_file}:1: app name \"{shown}\" (the name of its directory) is not valid: an app's name is the value of its rollgit.dev/app label and the name of its status object, so it must be at most 63 lower-case letters, digits, '-' or '.', starting and ending with a letter or digit; rename the directory"
            ),
            "{case}"
        );
        assert!(
            !err.chars().any(rollgit_syntax::text::needs_escape),
            "{case}"
        );
    }
}

#[test]
fn an_application_name_that_cannot_name_an_app_is_an_error_at_its_metadata_name() {
    let long = "a".repeat(64);
    let content = format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {long}\nspec:\n  components: []\n"
    );
    let files = [rollgit_render::SourceFile::new(
        "apps/web/app.yaml",
        content,
    )];
    match rollgit_render::app_naming(&files) {
        rollgit_render::AppNaming::Application { name, at, .. } => {
            assert_eq!(
                (name.as_str(), at.to_string()),
                (long.as_str(), "apps/web/app.yaml:4".to_owned())
            );
        }
        other => panic!("{other:?}"),
    }
    let err = rollgit_render::render_app(
        &long,
        "default",
        &files,
        &rollgit_render::NoRefs,
        &rollgit_render::RevisionState::default(),
    )
    .expect_err("a 64-character app name")
    .to_string();
    assert!(
        err.starts_with(&format!(
            "apps/web/app.yaml:4: the app is named after this KubeVela Application, and \"{long}\" cannot name an app"
        )) && err.ends_with("rename the Application"),
        "{err}"
    );
}
