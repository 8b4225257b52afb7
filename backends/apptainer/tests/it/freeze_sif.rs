//! A freeze plan (a synthetic EESSI tree with excludes, generated start/activate scripts, help
//! and test) carried out by the native SIF path, then run from the unpacked image under chroot.

use crate::common;

use std::path::Path;
use std::process::Command;

use kerblam_backend_api::plan::ArtifactKind;
use kerblam_backend_api::{Action, Host};
use kerblam_backend_apptainer::execute_with;
use kerblam_compiler::freeze::{self, FreezeOptions, compile_freeze, spec_from_env, synthetic};
use kerblam_compiler::{CheckOptions, SourceFile};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn freeze_plan_becomes_a_sif_whose_runscript_loads_the_modules() {
    if common::require_tools(&["mksquashfs", "unsquashfs", "siftool", "chroot"]).is_none() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let work = t.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let Some(base) = kerblam_test_support::require(common::base_archive(&work)) else {
        return;
    };
    let s = synthetic::create(&t.path().join("host"), false);
    let mut spec = spec_from_env(&s.env, "Jane Doe <jane@example.org>").unwrap();
    spec.destination = Some(work.join("dist").to_string_lossy().into());
    spec.test = Some("gmx".into());
    std::fs::create_dir_all(work.join("dist")).unwrap();
    let source = SourceFile::new("freeze.toml", spec.to_toml());
    let (spec, _) = freeze::parse(source.clone(), CheckOptions::default()).unwrap();
    let plan = compile_freeze(
        &spec,
        &source,
        &FreezeOptions {
            epoch: 1_700_000_000,
            base_dir: t.path().to_path_buf(),
            temp_dir: work.join("tmp"),
            manifest: "freeze.toml".into(),
        },
    )
    .unwrap();
    let mut req = common::request(
        Action::Package,
        plan,
        t.path(),
        &work.join("tmp"),
        Path::new("/k"),
    );
    let sif = req.plan.artifact(ArtifactKind::Sif).unwrap().path.clone();
    req.options.base_archive = Some(base.to_string_lossy().into());
    let res = execute_with(&req, &Host::none(), &common::settings(None, 1000, &work)).unwrap();
    assert_eq!(res.artifacts.len(), 1);
    assert_eq!(res.artifacts[0].path, sif);

    let def = run(Command::new("siftool").args(["dump", "1", &sif]));
    assert!(def.contains("\n%help\n"), "{def}");
    assert!(
        def.contains("\n%test\n    /bin/bash /kerblam-freeze/start.sh /bin/bash -c gmx\n"),
        "{def}"
    );
    let part = work.join("part.squashfs");
    std::fs::write(
        &part,
        Command::new("siftool")
            .args(["dump", "3", &sif])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let rootfs = work.join("rootfs");
    run(Command::new("unsquashfs").arg("-d").arg(&rootfs).arg(&part));

    // The trees sit at their host paths, minus the excludes.
    let prefix = s.prefix.strip_prefix("/").unwrap();
    let compat = rootfs.join(prefix).join("compat/linux/x86_64");
    assert!(compat.join("var/lib/keep.txt").is_file());
    assert!(
        !compat.join("var/cache/big.bin").exists(),
        "excluded var/cache was frozen"
    );
    assert!(
        !compat.join("var/log/emerge.log").exists(),
        "excluded *.log was frozen"
    );

    // Move the host tree away: the image must be self-contained.
    std::fs::rename(t.path().join("host"), t.path().join("gone")).unwrap();
    let out = run(Command::new("chroot").arg(&rootfs).args([
        "/bin/sh",
        "-c",
        "for s in /.singularity.d/env/*.sh; do . \"$s\"; done; exec /.singularity.d/runscript /bin/bash -c 'gmx; hello'",
    ]));
    assert!(
        out.contains("gmx from GROMACS/2020.4-foss-2020a built for x86_64/intel/haswell"),
        "{out}"
    );
    assert!(
        out.contains("hello from hello/1.0 built for x86_64/intel/haswell"),
        "{out}"
    );
}

/// A native freeze from `scratch` (no engine, no base archive): the disk it asks for is the plan's
/// figure for the trees, not kerblam's executable (a freeze image holds none; here a sparse 1 TiB
/// file stands in for it, which no disk could hold); the smoke test it cannot run is reported as
/// not run; and the image carries `runscript.help` and `test` as `apptainer build` would write them.
#[test]
fn a_native_freeze_counts_no_kerblam_and_says_its_smoke_test_did_not_run() {
    if common::require_tools(&["mksquashfs", "unsquashfs", "siftool"]).is_none() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let work = t.path().join("work");
    std::fs::create_dir_all(work.join("dist")).unwrap();
    let s = synthetic::create(&t.path().join("host"), false);
    let mut spec = spec_from_env(&s.env, "Jane Doe <jane@example.org>").unwrap();
    spec.destination = Some(work.join("dist").to_string_lossy().into());
    spec.base = "scratch".into();
    spec.test = Some("gmx".into());
    let source = SourceFile::new("freeze.toml", spec.to_toml());
    let (spec, _) = freeze::parse(source.clone(), CheckOptions::default()).unwrap();
    let plan = compile_freeze(
        &spec,
        &source,
        &FreezeOptions {
            epoch: 1_700_000_000,
            base_dir: t.path().to_path_buf(),
            temp_dir: work.join("tmp"),
            manifest: "freeze.toml".into(),
        },
    )
    .unwrap();
    let huge = work.join("kerblam");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    let req = common::request(Action::Package, plan, t.path(), &work.join("tmp"), &huge);
    let res = execute_with(&req, &Host::none(), &common::settings(None, 1000, &work))
        .unwrap_or_else(|e| panic!("refused: {e}"));
    assert!(
        res.notes
            .iter()
            .any(|n| n.contains("smoke test (") && n.contains("was NOT run")),
        "{:?}",
        res.notes
    );
    let sif = &res.artifacts[0].path;
    let part = work.join("part.squashfs");
    let dump = Command::new("siftool")
        .args(["dump", "3", sif])
        .output()
        .unwrap();
    std::fs::write(&part, dump.stdout).unwrap();
    let listing = run(Command::new("unsquashfs").arg("-l").arg(&part));
    for f in [".singularity.d/runscript.help", ".singularity.d/test"] {
        assert!(listing.contains(f), "no {f} in the image:\n{listing}");
    }
    let rootfs = work.join("rootfs");
    run(Command::new("unsquashfs").arg("-d").arg(&rootfs).arg(&part));
    let test = std::fs::read_to_string(rootfs.join(".singularity.d/test")).unwrap();
    assert!(
        test.starts_with("#!/bin/sh\n") && test.contains("-c gmx"),
        "{test}"
    );
    let help = std::fs::read_to_string(rootfs.join(".singularity.d/runscript.help")).unwrap();
    assert!(help.contains("module"), "{help}");
}
