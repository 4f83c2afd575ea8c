//! Property tests: a render never panics, and is deterministic.

use proptest::prelude::*;
use rollgit_render::{NoRefs, RevisionState, SourceFile, render_app};

const FRAGMENTS: &[&str] = &[
    "apiVersion: v1\n",
    "apiVersion: apps/v1\n",
    "apiVersion: core.oam.dev/v1beta1\n",
    "kind: ConfigMap\n",
    "kind: Deployment\n",
    "kind: Application\n",
    "kind: Namespace\n",
    "metadata:\n",
    "  name: a\n",
    "  name: A_b\n",
    "  namespace: x\n",
    "metadata: {name: b}\n",
    "spec:\n",
    "  components:\n",
    "    - name: web\n",
    "      type: webservice\n",
    "      type: ref-objects\n",
    "      type: foo\n",
    "      properties:\n",
    "        image: x\n",
    "        image: [1]\n",
    "        ports: [{port: 80, expose: true}]\n",
    "        port: 99999\n",
    "        env: [{name: A, value: 1}]\n",
    "        objects: [{apiVersion: v1, kind: ConfigMap, name: a}]\n",
    "      externalRevision: web-v1\n",
    "      traits: [{type: rollout}]\n",
    "---\n",
    "- a\n",
    "&a x\n",
    "b: *a\n",
    "? [a]\n: b\n",
    "{",
    "}",
    "[",
    "\"",
    "'",
    "\t",
    ": ",
    "|\n",
    ">-\n",
    "  ",
    "\n",
    "...\n",
    "%YAML 1.2\n",
    "!!binary aGk=\n",
    "<<: {a: 1}\n",
    "0777\n",
    ".nan\n",
];

fn yamlish() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..40).prop_map(|v| v.concat())
}

fn run(files: &[SourceFile]) -> Result<rollgit_render::Rendered, rollgit_render::RenderErrors> {
    render_app("app", "default", files, &NoRefs, &RevisionState::default())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let files = vec![SourceFile::new("a/x.yaml", bytes)];
        if let Err(e) = run(&files) {
            for err in &e.0 {
                prop_assert!(err.line >= 1);
                prop_assert!(err.to_string().starts_with("a/x.yaml:"));
            }
        }
    }

    #[test]
    fn yamlish_text_never_panics_and_is_deterministic(a in yamlish(), b in yamlish()) {
        let files = vec![SourceFile::new("a/1.yaml", a.clone()), SourceFile::new("a/2.yml", b.clone())];
        let first = run(&files);
        let reversed = vec![SourceFile::new("a/2.yml", b), SourceFile::new("a/1.yaml", a)];
        let second = run(&reversed);
        prop_assert_eq!(first, second);
    }
}
