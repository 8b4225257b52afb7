//! `remove_temporaries` in its own test process: it removes every live temporary of the process,
//! so it must not run next to other tests.

use std::fs;

use kerblam_archive::*;
use kerblam_test_support::archive::*;

#[test]
fn remove_temporaries_cleans_up_for_a_ctrl_c_handler() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("project");
    let files = project(&root);
    let out = t.path().join("p.kerblam.tar");
    let mut w = ReplayWriter::create(
        &out,
        ReplayContents {
            manifest: MANIFEST,
            image_name: "x",
            plan_json: Some(b"{}"),
            input_dir: "data/in",
        },
        ReplayOptions::default(),
    )
    .unwrap();
    w.add_data(&root, &files, None).unwrap();
    let names = || -> Vec<String> {
        fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert!(
        names().iter().any(|n| n.starts_with("p.kerblam.tar.tmp-")),
        "{:?}",
        names()
    );
    // What a Ctrl-C handler does before exiting without unwinding:
    assert!(remove_temporaries() >= 1);
    assert_eq!(names(), ["project"]);
    std::mem::forget(w);
}
