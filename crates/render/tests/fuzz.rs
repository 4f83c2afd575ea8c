//! Fuzzing on stable, with proptest: whatever the bytes, the YAML reader, [`render_app`] and
//! `rollgit plan`'s [`plan_document`] never panic (nor abort on a deep document), and either
//! succeed or report `path:line: message` errors whose display holds no raw control character.
//!
//! The inputs are arbitrary bytes, and the test fixtures (manifests, Applications, the seed
//! rollout specs of `tests/fixtures/plan/`) mutated: truncated, with YAML's structural
//! characters, tabs, control characters, huge and negative numbers and deep nesting inserted
//! at random places, lines deleted or repeated. Each property runs [`CASES`] cases
//! (`PROPTEST_CASES` overrides it), so the suite stays fast.

use proptest::prelude::*;
use proptest::sample::Index;
use rollgit_render::plan::{Flavor, PlanError, PlanOptions, plan_document};
use rollgit_render::{NoRefs, RenderErrors, RevisionState, SourceFile, render_app};
use rollgit_syntax::text::needs_escape;

/// Cases per property, unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 256;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    ProptestConfig {
        // Integration tests have no lib.rs beside them to persist failures next to.
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    }
}

/// Every fixture file under `tests/fixtures`, as `(repository path, content)`.
fn corpus(sub: &str) -> Vec<(String, Vec<u8>)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if rollgit_render::is_manifest_path(&p.to_string_lossy()) {
                out.push(p);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files = Vec::new();
    walk(&root.join(sub), &mut files);
    files.sort();
    assert!(!files.is_empty(), "no fixtures under {sub}");
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&root).expect("under the root");
            let content = std::fs::read(&p).expect("readable fixture");
            (format!("apps/{}", rel.to_string_lossy()), content)
        })
        .collect()
}

/// What is inserted: YAML's structure, whitespace, control characters, numbers at and past
/// every limit (int32, int64, u64, f64), special floats, Unicode.
const TOKENS: &[&str] = &[
    ":",
    ": ",
    "-",
    "- ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "?",
    "? ",
    "|",
    ">-",
    "#",
    "&a ",
    "*a",
    "!!str ",
    "!!binary ",
    "<<: ",
    "'",
    "\"",
    "\t",
    "\n",
    "\r\n",
    " ",
    "  ",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "\0",
    "\x1b[31m",
    "\u{202e}",
    "\u{feff}",
    "\u{85}",
    "é",
    "-1",
    "0",
    "2147483647",
    "2147483648",
    "-2147483649",
    "1000000000000",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "99999999999999999999999999999999999999999",
    "1e400",
    "-1e400",
    "1.5",
    ".nan",
    ".inf",
    "0x7fffffffffffffff",
    "0o777",
    "0777",
    "150%",
    "\"-5%\"",
    "\"%\"",
    "null",
    "~",
    "true",
    "no",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Cut the file at this place.
    Truncate(Index),
    /// Insert a token at this place.
    Insert(Index, &'static str),
    /// Insert `depth` nested flow sequences, flow mappings or block mappings at this place.
    Nest(Index, usize, u8),
    /// Delete the line at this place.
    DeleteLine(Index),
    /// Repeat the line at this place.
    RepeatLine(Index),
    /// Replace the number at or after this place with a token.
    ReplaceNumber(Index, &'static str),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let token = prop::sample::select(TOKENS);
    prop_oneof![
        1 => any::<Index>().prop_map(Mutation::Truncate),
        6 => (any::<Index>(), token.clone()).prop_map(|(i, t)| Mutation::Insert(i, t)),
        1 => (any::<Index>(), 1usize..200, 0u8..3).prop_map(|(i, d, k)| Mutation::Nest(i, d, k)),
        1 => any::<Index>().prop_map(Mutation::DeleteLine),
        1 => any::<Index>().prop_map(Mutation::RepeatLine),
        3 => (any::<Index>(), token).prop_map(|(i, t)| Mutation::ReplaceNumber(i, t)),
    ]
}

/// The byte offset `i` picks in `text`, moved back to a character boundary.
fn at(text: &str, i: &Index) -> usize {
    let mut n = i.index(text.len() + 1);
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    n
}

/// The line around byte `n`: `(start, end including its newline)`.
fn line_at(text: &str, n: usize) -> (usize, usize) {
    let start = text[..n].rfind('\n').map_or(0, |p| p + 1);
    let end = text[n..].find('\n').map_or(text.len(), |p| n + p + 1);
    (start, end)
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut s = text.to_owned();
    match m {
        Mutation::Truncate(i) => s.truncate(at(&s, i)),
        Mutation::Insert(i, t) => s.insert_str(at(&s, i), t),
        Mutation::Nest(i, depth, kind) => {
            let nest = match kind {
                0 => format!("{}{}", "[".repeat(*depth), "]".repeat(*depth)),
                1 => format!("{}1{}", "{a: ".repeat(*depth), "}".repeat(*depth)),
                _ => (0..*depth)
                    .map(|d| format!("\n{}a:", " ".repeat(d + 1)))
                    .collect::<String>(),
            };
            s.insert_str(at(&s, i), &nest);
        }
        Mutation::DeleteLine(i) => {
            let (a, b) = line_at(&s, at(&s, i));
            s.replace_range(a..b, "");
        }
        Mutation::RepeatLine(i) => {
            let (a, b) = line_at(&s, at(&s, i));
            let line = s[a..b].to_owned();
            s.insert_str(b, &line);
        }
        Mutation::ReplaceNumber(i, t) => {
            let from = at(&s, i);
            if let Some(p) = s[from..].find(|c: char| c.is_ascii_digit()) {
                let a = from + p;
                let len = s[a..]
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(s.len() - a);
                s.replace_range(a..a + len, t);
            }
        }
    }
    s
}

fn mutated(sub: &'static str) -> impl Strategy<Value = (String, Vec<u8>)> {
    let files = corpus(sub);
    (0..files.len(), prop::collection::vec(mutation(), 1..6)).prop_map(move |(f, muts)| {
        let (path, content) = &files[f];
        let mut text = String::from_utf8_lossy(content).into_owned();
        for m in &muts {
            text = apply(&text, m);
        }
        (path.clone(), text.into_bytes())
    })
}

/// Every error is `path:line: message` about one of the app's files, shown escaped.
fn check_errors(errors: &RenderErrors, paths: &[&str]) -> Result<(), TestCaseError> {
    prop_assert!(!errors.0.is_empty());
    for e in &errors.0 {
        prop_assert!(e.line >= 1, "{e:?}");
        prop_assert!(paths.contains(&e.path.as_str()), "{e:?}");
        let shown = e.to_string();
        let place = format!("{}:{}: ", rollgit_syntax::escape(&e.path), e.line);
        prop_assert!(shown.starts_with(&place), "{shown}");
        prop_assert!(!shown.chars().any(needs_escape), "{shown:?}");
    }
    Ok(())
}

fn check_render(app: &str, files: &[SourceFile]) -> Result<(), TestCaseError> {
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    match render_app(app, "default", files, &NoRefs, &RevisionState::default()) {
        Ok(r) => {
            for w in &r.warnings {
                prop_assert!(!w.to_string().chars().any(needs_escape), "{w}");
            }
            Ok(())
        }
        Err(e) => check_errors(&e, &paths),
    }
}

fn check_plan(path: &str, bytes: &[u8], opts: &PlanOptions) -> Result<(), TestCaseError> {
    match plan_document(path, bytes, opts) {
        Ok(plan) => {
            // KubeVela's admitted batches never go below zero pods, nor past the larger of the
            // sizes they move between.
            if plan.flavor == Flavor::KubeVela {
                let top = plan.replicas.max(opts.from_replicas.map_or(0, i64::from));
                for s in &plan.steps {
                    prop_assert!(s.new >= 0 && s.old >= 0, "{plan:?}");
                    prop_assert!(s.new <= top, "{plan:?}");
                }
            }
            Ok(())
        }
        Err(PlanError::Invalid(e)) => check_errors(&e, &[path]),
        Err(e) => {
            prop_assert!(e.errors().is_empty());
            prop_assert!(!e.to_string().chars().any(needs_escape), "{e}");
            Ok(())
        }
    }
}

fn options() -> impl Strategy<Value = PlanOptions> {
    let size = prop_oneof![
        2 => Just(None),
        2 => (0u32..20).prop_map(Some),
        1 => any::<u32>().prop_map(Some),
    ];
    (size.clone(), size).prop_map(|(replicas, from_replicas)| PlanOptions {
        replicas,
        from_replicas,
    })
}

/// A file name with anything in it, control characters included.
fn file_name() -> impl Strategy<Value = String> {
    "[a-z\n\r\t\x1b\u{202e}\u{85} ]{1,12}".prop_map(|n| format!("apps/app/{n}.yaml"))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn render_of_arbitrary_bytes_never_panics(
        name in file_name(),
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        check_render("app", &[SourceFile::new(name, bytes)])?;
    }

    #[test]
    fn render_of_mutated_manifests_never_panics((path, bytes) in mutated("")) {
        check_render("app", &[SourceFile::new(path, bytes)])?;
    }

    #[test]
    fn render_of_a_mutated_file_beside_valid_ones_never_panics(
        (path, bytes) in mutated("rollout-trait-test"),
        name in file_name(),
    ) {
        let mut files: Vec<SourceFile> = corpus("ref-objects-demo")
            .into_iter()
            .map(|(p, c)| SourceFile::new(p, c))
            .collect();
        files.push(SourceFile::new(path, bytes.clone()));
        files.push(SourceFile::new(name, bytes));
        check_render("app", &files)?;
    }

    #[test]
    fn plan_of_arbitrary_bytes_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        opts in options(),
    ) {
        check_plan("spec.yaml", &bytes, &opts)?;
    }

    #[test]
    fn plan_of_mutated_seed_specs_never_panics(
        (path, bytes) in mutated("plan"),
        opts in options(),
    ) {
        check_plan(&path, &bytes, &opts)?;
    }

    #[test]
    fn app_names_from_any_directory_never_panic(dir in "[a-zA-Z0-9._\n\x1b-]{0,70}") {
        let file = format!("apps/{dir}/cm.yaml");
        let apps = rollgit_render::discover_apps(std::slice::from_ref(&file), &["apps/*".to_owned()]);
        for app in &apps {
            let files = [SourceFile::new(
                file.clone(),
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
            )];
            let valid = rollgit_render::check_app_name(&app.name).is_ok();
            match render_app(&app.name, "default", &files, &NoRefs, &RevisionState::default()) {
                Ok(_) => prop_assert!(valid, "{app:?}"),
                Err(e) => {
                    prop_assert!(!valid, "{app:?}: {e}");
                    check_errors(&e, &[file.as_str()])?;
                }
            }
        }
    }
}
