//! What moves from one stage's directory to the next (pure: file maps in, file edits out).
//!
//! * [`replay`]: the changes made in the previous stage's directory between `base` (its
//!   content when it was last promoted) and `theirs` (its content now), replayed on `ours`
//!   (the next stage's directory) with a three-way merge per file ([`merge3`], line based,
//!   as `git merge-file`): a file the next stage changed in other lines keeps its own
//!   changes; lines both changed differently are a conflict. Files matching an `exclude`
//!   glob (relative to the stage directory) are never carried.
//! * [`replay_images`]: only the container image references (`image:` fields), matched by
//!   the name of their component or container, are carried; nothing else of the file moves.
//!
//! Paths in every map are relative to the stage's directory.

use rollgit_syntax::Glob;
use std::collections::{BTreeMap, BTreeSet};

/// A directory's files: relative path → content.
pub type Files = BTreeMap<String, Vec<u8>>;

/// How a file changes in the next stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A new file.
    Added,
    /// New content.
    Modified,
    /// Removed.
    Deleted,
}

impl ChangeKind {
    /// `added`, `modified`, `deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Modified => "modified",
            Self::Deleted => "deleted",
        }
    }
}

/// One image reference moved forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageChange {
    /// The component or container name.
    pub name: String,
    /// The next stage's image before.
    pub from: String,
    /// The image it gets.
    pub to: String,
}

/// The result of a replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replay {
    /// Relative path → new content (`None`: delete it).
    pub edits: BTreeMap<String, Option<Vec<u8>>>,
    /// The same paths, with how they change.
    pub files: Vec<(String, ChangeKind)>,
    /// Files where both stages changed the same lines (nothing is carried then).
    pub conflicts: Vec<String>,
    /// The image references that change (from the next stage's files before and after).
    pub images: Vec<ImageChange>,
}

impl Replay {
    fn edit(&mut self, path: &str, before: Option<&Vec<u8>>, after: Option<Vec<u8>>) {
        if before == after.as_ref() {
            return;
        }
        let kind = match (before, &after) {
            (None, _) => ChangeKind::Added,
            (_, None) => ChangeKind::Deleted,
            _ => ChangeKind::Modified,
        };
        self.files.push((path.to_string(), kind));
        self.edits.insert(path.to_string(), after);
    }
}

/// The changes of `base` → `theirs` replayed on `ours`, except paths matching `exclude`.
///
/// ```
/// use rollgit::promote::replay::{replay, Files};
/// let f = |s: &str| Files::from([("app.yaml".to_string(), s.as_bytes().to_vec())]);
/// let r = replay(
///     &f("a\nimage: v1\nb\nc\n"),
///     &f("a\nimage: v2\nb\nc\n"),
///     &f("a\nimage: v1\nb\nc-prod\n"),
///     &[],
/// );
/// assert_eq!(r.edits["app.yaml"].as_deref(), Some(&b"a\nimage: v2\nb\nc-prod\n"[..]));
/// ```
pub fn replay(base: &Files, theirs: &Files, ours: &Files, exclude: &[Glob]) -> Replay {
    let mut out = Replay::default();
    let paths: BTreeSet<&String> = base.keys().chain(theirs.keys()).collect();
    for path in paths {
        if exclude.iter().any(|g| g.is_match(path)) {
            continue;
        }
        let (b, t, o) = (base.get(path), theirs.get(path), ours.get(path));
        if b == t {
            continue; // the previous stage did not change it
        }
        let merged: Result<Option<Vec<u8>>, ()> = match (b, t, o) {
            // Theirs changed it; ours still has the base (or already has theirs).
            _ if o == b || o == t => Ok(t.cloned()),
            // Added on both sides differently, or deleted by theirs and changed by ours.
            (None, _, _) | (_, None, _) => Err(()),
            // Ours deleted a file theirs changed.
            (Some(_), Some(_), None) => Err(()),
            (Some(b), Some(t), Some(o)) => merge_bytes(b, o, t).map(Some),
        };
        match merged {
            Ok(after) => out.edit(path, o, after),
            Err(()) => out.conflicts.push(path.clone()),
        }
    }
    if !out.conflicts.is_empty() {
        out.edits.clear();
        out.files.clear();
    }
    out.images = image_changes(ours, &out.edits);
    out
}

/// Only the image references: every image whose reference differs between `base` and
/// `theirs` (by component or container name) is set in `ours`, where that name has one.
pub fn replay_images(base: &Files, theirs: &Files, ours: &Files) -> Replay {
    let before = images_by_name(base);
    let after = images_by_name(theirs);
    let moved: BTreeMap<&String, &String> = after
        .iter()
        .filter(|(name, image)| before.get(*name) != Some(*image))
        .collect();
    let mut out = Replay::default();
    for (path, content) in ours {
        let Ok(text) = std::str::from_utf8(content) else {
            continue;
        };
        let mut changed = false;
        let mut lines: Vec<String> = Vec::new();
        for line in image_lines(text) {
            match line {
                ImageLine::Other(l) => lines.push(l.to_string()),
                ImageLine::Image { line, refs } => {
                    let mut new = line.to_string();
                    // Right to left, so that the offsets before each stay true.
                    for r in refs.iter().rev() {
                        let Some((n, to)) = r
                            .name
                            .and_then(|n| moved.get(&n.to_string()).map(|v| (n, v)))
                        else {
                            continue;
                        };
                        if r.value == to.as_str() {
                            continue;
                        }
                        out.images.push(ImageChange {
                            name: n.to_string(),
                            from: r.value.to_string(),
                            to: to.to_string(),
                        });
                        new.replace_range(r.value_at..r.value_at + r.raw_len, to);
                        changed = true;
                    }
                    lines.push(new);
                }
            }
        }
        if changed {
            // `split('\n')` kept the empty piece after a final newline: joined, it returns.
            let joined = lines.join("\n");
            out.edit(path, Some(content), Some(joined.into_bytes()));
        }
    }
    out
}

/// The image references of `files` by component or container name (the last one wins).
pub fn images_by_name(files: &Files) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for content in files.values() {
        let Ok(text) = std::str::from_utf8(content) else {
            continue;
        };
        for line in image_lines(text) {
            if let ImageLine::Image { refs, .. } = line {
                for r in refs {
                    if let Some(n) = r.name {
                        out.insert(n.to_string(), r.value.to_string());
                    }
                }
            }
        }
    }
    out
}

/// The images that change between `ours` and `ours` with `edits`.
fn image_changes(ours: &Files, edits: &BTreeMap<String, Option<Vec<u8>>>) -> Vec<ImageChange> {
    let before = images_by_name(ours);
    let mut after_files = ours.clone();
    for (p, e) in edits {
        match e {
            Some(c) => {
                after_files.insert(p.clone(), c.clone());
            }
            None => {
                after_files.remove(p);
            }
        }
    }
    images_by_name(&after_files)
        .into_iter()
        .filter_map(|(name, to)| {
            let from = before.get(&name)?;
            (from != &to).then(|| ImageChange {
                name,
                from: from.clone(),
                to,
            })
        })
        .collect()
}

enum ImageLine<'a> {
    Other(&'a str),
    /// A line with image references: a block-style `image:` key, or flow mappings holding
    /// one (`- {name: web, image: web:1}`, `containers: [{name: a, image: x}, ...]`).
    Image {
        line: &'a str,
        /// Left to right.
        refs: Vec<ImageRef<'a>>,
    },
}

/// One image reference of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ImageRef<'a> {
    /// The `name` of its flow mapping, else the nearest `name:` at the same or an outer level
    /// (the container's, or the component's for a KubeVela `properties.image`).
    name: Option<&'a str>,
    /// Byte offset of the raw value in the line.
    value_at: usize,
    /// Byte length of the raw value (quotes included, comment excluded).
    raw_len: usize,
    /// The value, without quotes or comment.
    value: &'a str,
}

/// The image references in the flow mappings of `line` (`{...}` on one line), each named by
/// its mapping's `name` or else `outer`.
fn flow_images<'a>(line: &'a str, outer: Option<&'a str>) -> Vec<ImageRef<'a>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = line[from..].find('{').map(|i| from + i) {
        let Some(close) = line[open..].find('}').map(|i| open + i) else {
            break;
        };
        let mut name = None;
        let mut image = None;
        let mut at = open + 1;
        for entry in line[open + 1..close].split(',') {
            if let Some(colon) = entry.find(':') {
                let key = entry[..colon]
                    .trim()
                    .trim_matches(|c| c == '"' || c == '\'');
                let raw = &entry[colon + 1..];
                let lead = raw.len() - raw.trim_start().len();
                let token = raw.trim();
                let value = token.trim_matches(|c| c == '"' || c == '\'');
                let value_at = at + colon + 1 + lead;
                match key {
                    "name" => name = Some(value),
                    "image" => image = Some((value_at, token.len(), value)),
                    _ => {}
                }
            }
            at += entry.len() + 1;
        }
        if let Some((value_at, raw_len, value)) = image {
            out.push(ImageRef {
                name: name.or(outer),
                value_at,
                raw_len,
                value,
            });
        }
        from = close + 1;
    }
    out
}

/// Each line of a YAML text, `image:` lines with their owner's name. Textual on purpose: the
/// rest of the file stays byte for byte as it is.
fn image_lines(text: &str) -> Vec<ImageLine<'_>> {
    // (indent of the key, name) of the `name:` keys seen, innermost last.
    let mut names: Vec<(usize, &str)> = Vec::new();
    let mut out = Vec::new();
    for line in text.split('\n') {
        let code = line.split(" #").next().unwrap_or(line);
        if code.contains('{') && code.contains("image") {
            let outer = names.last().map(|(_, n)| *n);
            let refs = flow_images(code, outer);
            if !refs.is_empty() {
                out.push(ImageLine::Image { line, refs });
                continue;
            }
        }
        let Some((indent, key, value_at)) = key_of(line) else {
            out.push(ImageLine::Other(line));
            continue;
        };
        // A key closes the blocks deeper than itself, and their names.
        names.retain(|(i, _)| *i <= indent);
        if key == "name" {
            let v = clean_value(&line[value_at..]);
            names.retain(|(i, _)| *i < indent);
            names.push((indent, v));
            out.push(ImageLine::Other(line));
        } else if key == "image" {
            let value = clean_value(&line[value_at..]);
            let name = names
                .iter()
                .rev()
                .find(|(i, _)| *i <= indent)
                .map(|(_, n)| *n);
            let value_at = value_at + line[value_at..].find(|c: char| c != ' ').unwrap_or(0);
            out.push(ImageLine::Image {
                line,
                refs: vec![ImageRef {
                    name,
                    value_at,
                    raw_len: raw_value_len(&line[value_at..]),
                    value,
                }],
            });
        } else {
            out.push(ImageLine::Other(line));
        }
    }
    out
}

/// `(indent of the key, key, offset after the colon)` of a `key: value` line (`- key:` too).
fn key_of(line: &str) -> Option<(usize, &str, usize)> {
    let trimmed = line.trim_start();
    let mut indent = line.len() - trimmed.len();
    let mut rest = trimmed;
    while let Some(r) = rest.strip_prefix("- ") {
        let r2 = r.trim_start();
        indent += 2 + (r.len() - r2.len());
        rest = r2;
    }
    if rest.starts_with('#') {
        return None;
    }
    let colon = rest
        .find(": ")
        .or_else(|| rest.strip_suffix(':').map(|r| r.len()))?;
    let key = rest[..colon].trim_matches(|c| c == '"' || c == '\'');
    if key.is_empty() || key.contains(' ') {
        return None;
    }
    Some((indent, key, line.len() - rest.len() + colon + 1))
}

/// A scalar value without surrounding spaces, quotes or a trailing comment.
fn clean_value(v: &str) -> &str {
    let v = v.trim();
    let v = match v.find(" #") {
        Some(i) => v[..i].trim_end(),
        None => v,
    };
    v.trim_matches(|c| c == '"' || c == '\'')
}

/// The length of the raw value (quotes included, comment excluded) at the start of `v`.
fn raw_value_len(v: &str) -> usize {
    let end = v.find(" #").unwrap_or(v.len());
    v[..end].trim_end().len()
}

/// A three-way merge of byte contents (as UTF-8 text); `Err` on a conflict or binary data.
fn merge_bytes(base: &[u8], ours: &[u8], theirs: &[u8]) -> Result<Vec<u8>, ()> {
    let (Ok(b), Ok(o), Ok(t)) = (
        std::str::from_utf8(base),
        std::str::from_utf8(ours),
        std::str::from_utf8(theirs),
    ) else {
        return Err(());
    };
    merge3(b, o, t).map(String::into_bytes).ok_or(())
}

/// One side's change of a run of base lines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hunk<'a> {
    start: usize,
    end: usize,
    lines: Vec<&'a str>,
}

fn hunks<'a>(base: &[&'a str], other: &[&'a str]) -> Vec<Hunk<'a>> {
    use similar::{Algorithm, DiffOp, capture_diff_slices};
    let mut out: Vec<Hunk<'a>> = Vec::new();
    for op in capture_diff_slices(Algorithm::Myers, base, other) {
        let (start, end, new) = match op {
            DiffOp::Equal { .. } => continue,
            DiffOp::Delete {
                old_index, old_len, ..
            } => (old_index, old_index + old_len, &other[0..0]),
            DiffOp::Insert {
                old_index,
                new_index,
                new_len,
            } => (old_index, old_index, &other[new_index..new_index + new_len]),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => (
                old_index,
                old_index + old_len,
                &other[new_index..new_index + new_len],
            ),
        };
        match out.last_mut() {
            Some(last) if last.end == start => {
                last.end = end;
                last.lines.extend_from_slice(new);
            }
            _ => out.push(Hunk {
                start,
                end,
                lines: new.to_vec(),
            }),
        }
    }
    out
}

/// A line-based three-way merge: `None` when both sides changed the same (or adjacent)
/// lines differently.
///
/// ```
/// use rollgit::promote::replay::merge3;
/// assert_eq!(merge3("a\nb\nc\n", "A\nb\nc\n", "a\nb\nC\n").as_deref(), Some("A\nb\nC\n"));
/// assert_eq!(merge3("a\nb\n", "x\nb\n", "y\nb\n"), None);
/// ```
pub fn merge3(base: &str, ours: &str, theirs: &str) -> Option<String> {
    fn split(s: &str) -> Vec<&str> {
        s.split_inclusive('\n').collect()
    }
    let (b, o, t) = (split(base), split(ours), split(theirs));
    let mut all: Vec<(Hunk<'_>, bool)> = hunks(&b, &o)
        .into_iter()
        .map(|h| (h, true))
        .chain(hunks(&b, &t).into_iter().map(|h| (h, false)))
        .collect();
    all.sort_by_key(|(h, ours)| (h.start, h.end, !*ours));
    let mut merged: Vec<Hunk<'_>> = Vec::new();
    for (h, _) in all {
        if let Some(last) = merged.last() {
            // Overlapping or adjacent changes conflict, as in `git merge-file`.
            if h.start <= last.end {
                if *last == h {
                    continue; // the same change on both sides
                }
                return None;
            }
        }
        merged.push(h);
    }
    let mut out = String::new();
    let mut at = 0;
    for h in merged {
        for l in &b[at..h.start] {
            out.push_str(l);
        }
        for l in &h.lines {
            out.push_str(l);
        }
        at = h.end;
    }
    for l in &b[at..] {
        out.push_str(l);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Files {
        list.iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn merge3_table() {
        let rows: &[(&str, &str, &str, &str, Option<&str>)] = &[
            (
                "only theirs changed",
                "a\nb\n",
                "a\nb\n",
                "a\nB\n",
                Some("a\nB\n"),
            ),
            (
                "only ours changed",
                "a\nb\n",
                "A\nb\n",
                "a\nb\n",
                Some("A\nb\n"),
            ),
            (
                "both changed different lines",
                "a\nb\nc\nd\n",
                "A\nb\nc\nd\n",
                "a\nb\nc\nD\n",
                Some("A\nb\nc\nD\n"),
            ),
            (
                "both made the same change",
                "a\nb\n",
                "a\nX\n",
                "a\nX\n",
                Some("a\nX\n"),
            ),
            (
                "both changed the same line",
                "a\nb\n",
                "a\nX\n",
                "a\nY\n",
                None,
            ),
            (
                "adjacent lines conflict as in git",
                "a\nb\nc\n",
                "A\nb\nc\n",
                "a\nB\nc\n",
                None,
            ),
            (
                "theirs appends, ours edits the top",
                "a\nb\nc\n",
                "A\nb\nc\n",
                "a\nb\nc\nd\n",
                Some("A\nb\nc\nd\n"),
            ),
            (
                "both insert at the same place",
                "a\n",
                "a\nx\n",
                "a\ny\n",
                None,
            ),
            (
                "theirs deletes a line ours kept",
                "a\nb\nc\nd\n",
                "a\nb\nc\nD\n",
                "b\nc\nd\n",
                Some("b\nc\nD\n"),
            ),
        ];
        for (case, b, o, t, want) in rows {
            assert_eq!(merge3(b, o, t).as_deref(), *want, "{case}");
        }
    }

    #[test]
    fn replay_table() {
        let g = |p: &str| Glob::path(p).expect("valid glob");
        struct Row {
            case: &'static str,
            base: Files,
            theirs: Files,
            ours: Files,
            exclude: Vec<Glob>,
            edits: Vec<(&'static str, Option<&'static str>)>,
            conflicts: Vec<&'static str>,
        }
        let rows = vec![
            Row {
                case: "a modified file is merged with the next stage's own lines",
                base: files(&[("d.yaml", "replicas: 1\nname: web\nimage: web:1\n")]),
                theirs: files(&[("d.yaml", "replicas: 1\nname: web\nimage: web:2\n")]),
                ours: files(&[("d.yaml", "replicas: 5\nname: web\nimage: web:1\n")]),
                exclude: vec![],
                edits: vec![("d.yaml", Some("replicas: 5\nname: web\nimage: web:2\n"))],
                conflicts: vec![],
            },
            Row {
                case: "an added file is added, a deleted one deleted",
                base: files(&[("old.yaml", "x\n")]),
                theirs: files(&[("new.yaml", "y\n")]),
                ours: files(&[("old.yaml", "x\n")]),
                exclude: vec![],
                edits: vec![("new.yaml", Some("y\n")), ("old.yaml", None)],
                conflicts: vec![],
            },
            Row {
                case: "excluded files are never carried",
                base: files(&[("config/env.yaml", "a\n"), ("d.yaml", "1\n")]),
                theirs: files(&[("config/env.yaml", "b\n"), ("d.yaml", "2\n")]),
                ours: files(&[("config/env.yaml", "prod\n"), ("d.yaml", "1\n")]),
                exclude: vec![g("config/*")],
                edits: vec![("d.yaml", Some("2\n"))],
                conflicts: vec![],
            },
            Row {
                case: "the same line changed on both sides is a conflict and carries nothing",
                base: files(&[("d.yaml", "image: web:1\n"), ("e.yaml", "1\n")]),
                theirs: files(&[("d.yaml", "image: web:2\n"), ("e.yaml", "2\n")]),
                ours: files(&[("d.yaml", "image: web:9\n"), ("e.yaml", "1\n")]),
                exclude: vec![],
                edits: vec![],
                conflicts: vec!["d.yaml"],
            },
            Row {
                case: "a file the next stage already has is no change",
                base: files(&[("d.yaml", "1\n")]),
                theirs: files(&[("d.yaml", "2\n")]),
                ours: files(&[("d.yaml", "2\n")]),
                exclude: vec![],
                edits: vec![],
                conflicts: vec![],
            },
        ];
        for r in rows {
            let got = replay(&r.base, &r.theirs, &r.ours, &r.exclude);
            let edits: Vec<(&str, Option<&str>)> = got
                .edits
                .iter()
                .map(|(p, c)| {
                    (
                        p.as_str(),
                        c.as_deref().map(|c| std::str::from_utf8(c).expect("utf-8")),
                    )
                })
                .collect();
            assert_eq!(edits, r.edits, "{}", r.case);
            assert_eq!(got.conflicts, r.conflicts, "{}", r.case);
        }
    }

    #[test]
    fn images_only_changes_image_fields_matched_by_name() {
        let dev_before = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  replicas: 1\n  template:\n    spec:\n      containers:\n      - name: web\n        image: web:1.0\n      - name: sidecar\n        image: \"proxy:1\"\n";
        let dev_after = dev_before
            .replace("replicas: 1", "replicas: 2")
            .replace("web:1.0", "web:1.1")
            .replace("proxy:1", "proxy:2");
        let prod = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  replicas: 10\n  template:\n    spec:\n      containers:\n      - name: sidecar\n        image: \"proxy:1\" # pinned\n      - name: web\n        image: web:1.0\n";
        let r = replay_images(
            &files(&[("d.yaml", dev_before)]),
            &files(&[("d.yaml", &dev_after)]),
            &files(&[("deploy.yaml", prod)]),
        );
        let want = prod
            .replace("web:1.0", "web:1.1")
            .replace("\"proxy:1\" # pinned", "proxy:2 # pinned");
        assert_eq!(
            r.edits["deploy.yaml"].as_deref(),
            Some(want.as_bytes()),
            "only the image values change; replicas stay at 10"
        );
        assert_eq!(
            r.images,
            vec![
                ImageChange {
                    name: "sidecar".into(),
                    from: "proxy:1".into(),
                    to: "proxy:2".into()
                },
                ImageChange {
                    name: "web".into(),
                    from: "web:1.0".into(),
                    to: "web:1.1".into()
                },
            ]
        );
    }

    #[test]
    fn images_only_reaches_flow_style_mappings() {
        let dev_before = "spec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: web:1.0\n      - name: sidecar\n        image: proxy:1\n";
        let dev_after = dev_before
            .replace("web:1.0", "web:1.1")
            .replace("proxy:1", "proxy:2");
        let cases = [
            (
                "one mapping per line",
                "      containers:\n      - {name: web, image: web:1.0, ports: [{containerPort: 80}]}\n      - {image: \"proxy:1\", name: sidecar} # pinned\n",
                "      containers:\n      - {name: web, image: web:1.1, ports: [{containerPort: 80}]}\n      - {image: proxy:2, name: sidecar} # pinned\n",
            ),
            (
                "a list of mappings on one line",
                "      containers: [{name: sidecar, image: proxy:1}, {name: web, image: 'web:1.0'}]\n",
                "      containers: [{name: sidecar, image: proxy:2}, {name: web, image: web:1.1}]\n",
            ),
        ];
        for (what, prod, want) in cases {
            let r = replay_images(
                &files(&[("d.yaml", dev_before)]),
                &files(&[("d.yaml", &dev_after)]),
                &files(&[("deploy.yaml", prod)]),
            );
            assert_eq!(
                r.edits["deploy.yaml"]
                    .as_deref()
                    .map(String::from_utf8_lossy),
                Some(want.into()),
                "{what}"
            );
            assert_eq!(r.images.len(), 2, "{what}: {:?}", r.images);
        }
    }

    #[test]
    fn images_of_kubevela_components_are_matched_by_component_name() {
        let app = |img: &str, replicas: u32| {
            format!(
                "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: shop\nspec:\n  components:\n  - name: express-server\n    type: webservice\n    properties:\n      image: {img}\n      port: 8000\n    traits:\n    - type: scaler\n      properties:\n        replicas: {replicas}\n"
            )
        };
        let r = replay_images(
            &files(&[("app.yaml", &app("shop:1", 1))]),
            &files(&[("app.yaml", &app("shop:2", 2))]),
            &files(&[("app.yaml", &app("shop:1", 7))]),
        );
        assert_eq!(
            r.edits["app.yaml"].as_deref(),
            Some(app("shop:2", 7).as_bytes())
        );
        assert_eq!(
            r.files,
            vec![("app.yaml".to_string(), ChangeKind::Modified)]
        );
    }
}
