//! umoci reads the OCI archive (unpacked into a layout directory, which is what umoci takes): it
//! lists the tag, unpacks the image into a runtime bundle with the plan's files and modes, and the
//! bundle's runtime config has the plan's entrypoint and workdir. Skipped with a reason when umoci
//! is not installed (`apt-get install umoci`); no engine is needed.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use support::*;

#[test]
fn umoci_unpacks_the_oci_archive_into_a_bundle() {
    if kerblam_test_support::require_tool(
        "umoci",
        "it reads the OCI archive; bash scripts/engines.sh install",
    )
    .is_none()
    {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let root = process_project(t.path(), None);
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let kerblam = fake_kerblam(t.path());
    let req = request(plan(&root, "process_exec", true), &root, &out, &kerblam);
    execute(&req).0.unwrap_or_else(|e| panic!("{e}"));
    let layout = t.path().join("layout");
    tar::Archive::new(std::fs::File::open(out.join("process.oci.tar")).unwrap())
        .unpack(&layout)
        .unwrap();

    let ls = Command::new("umoci")
        .arg("ls")
        .arg("--layout")
        .arg(&layout)
        .output()
        .unwrap();
    assert!(
        ls.status.success(),
        "{}",
        String::from_utf8_lossy(&ls.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ls.stdout).trim(), "process_exec");

    let bundle = t.path().join("bundle");
    let o = Command::new("umoci")
        .arg("unpack")
        .arg("--rootless")
        .arg("--image")
        .arg(format!("{}:process_exec", layout.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "umoci unpack: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read(rootfs.join("kerblam")).unwrap(),
        std::fs::read(&kerblam).unwrap()
    );
    assert_eq!(
        std::fs::metadata(rootfs.join("kerblam"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    assert!(rootfs.join("kerblam-replay.sh").is_file());
    assert!(rootfs.join("src/workflows/process.makefile").is_file());
    assert!(
        !rootfs.join("data/in/precious.txt").exists(),
        "data never goes into the image"
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["process"]["args"],
        serde_json::json!(["/bin/sh", "/kerblam-replay.sh"])
    );
    assert_eq!(config["process"]["cwd"], "/");
}
