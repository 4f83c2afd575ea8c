#![allow(dead_code)]
use rollgit_render::{NoRefs, RenderErrors, Rendered, RevisionState, SourceFile, render_app};

/// The files of `tests/fixtures/<name>` as if they were at `apps/<name>/` in a repository.
pub fn fixture(name: &str) -> Vec<SourceFile> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let mut files: Vec<SourceFile> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .map(|e| {
            let e = e.expect("entry");
            let file = e.file_name().to_string_lossy().into_owned();
            SourceFile::new(
                format!("apps/{name}/{file}"),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

pub fn one(path: &str, text: &str) -> Vec<SourceFile> {
    vec![SourceFile::new(path, text)]
}

pub fn render(files: &[SourceFile]) -> Result<Rendered, RenderErrors> {
    render_app("app", "default", files, &NoRefs, &RevisionState::default())
}

pub fn render_ok(files: &[SourceFile]) -> Rendered {
    match render(files) {
        Ok(r) => r,
        Err(e) => panic!("render failed:\n{e}"),
    }
}

pub fn render_err(files: &[SourceFile]) -> Vec<String> {
    match render(files) {
        Ok(r) => panic!("render succeeded: {:#?}", r.objects),
        Err(e) => e.lines(),
    }
}

/// An Application with one component of `ty` and the given properties block (indented 8).
pub fn application(ty: &str, properties: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: shop\nspec:\n  components:\n    - name: web\n      type: {ty}\n      properties:\n{properties}"
    )
}
