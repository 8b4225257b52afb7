//! A small synthetic EESSI tree, for tests of the compiler and of the backends that carry out
//! freeze plans. Test-only: behind the feature `synthetic`, which only dev-dependencies enable.
//!
//! The tree has a prefix with `compat/linux/x86_64`, `init/bash` (a tiny stand-in for EESSI's
//! init: it picks the software subdir, honouring `EESSI_SOFTWARE_SUBDIR_OVERRIDE`, and defines a
//! `module` function with `use`, `load` and `list`; `load` takes the absolute paths of the module
//! files, as EasyBuild's do, so a tree that is not at its prefix does not work), an Lmod config, and
//! `software/linux/x86_64/{intel/haswell,generic}` with module files and software roots holding
//! a small executable each that prints its module and subdir. Files the default excludes must
//! drop (`var/cache`, `var/db`, `var/tmp`, `*.log`, `.cvmfscatalog`) are planted too.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The CPU-specific subdir of the synthetic tree.
pub const SUBDIR: &str = "x86_64/intel/haswell";
/// The generic subdir of the synthetic tree.
pub const GENERIC: &str = "x86_64/generic";

/// A synthetic EESSI tree and the environment `source init/bash && module load ...` would give.
#[derive(Debug, Clone)]
pub struct SyntheticEessi {
    /// The EESSI prefix (`<base>/cvmfs/pilot.eessi-hpc.org/versions/2021.12`).
    pub prefix: PathBuf,
    /// The modules loaded by [`SyntheticEessi::env`], in order.
    pub loaded: Vec<String>,
    /// A fake live environment: `EESSI_*`, `LMOD_RC`, `LOADEDMODULES`, `EBROOT*`, `MODULEPATH`,
    /// plus variables that must not be captured (`HOME`, `GITHUB_TOKEN`, and `EESSI_ACCESS_TOKEN`,
    /// which matches the default include `EESSI_*` but also the default exclude `*TOKEN*`).
    pub env: BTreeMap<String, String>,
}

/// A module of the synthetic tree: name, executable, and whether it has a generic build.
pub const MODULES: [(&str, &str, bool); 3] = [
    ("hello/1.0", "hello", true),
    ("GROMACS/2020.4-foss-2020a", "gmx", true),
    ("OnlyHaswell/2.0", "onlyhaswell", false),
];

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create dir");
    std::fs::write(path, text).expect("write file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The init script of the synthetic tree.
pub fn init_bash() -> String {
    "# Synthetic EESSI init (kerblam tests).\n\
     export EESSI_PREFIX=\"${EESSI_PREFIX:-$(cd \"$(dirname \"${BASH_SOURCE[0]}\")/..\" && pwd -P)}\"\n\
     export EESSI_OS_TYPE=linux EESSI_CPU_FAMILY=x86_64\n\
     export EESSI_SOFTWARE_SUBDIR=\"${EESSI_SOFTWARE_SUBDIR_OVERRIDE:-x86_64/intel/haswell}\"\n\
     export MODULEPATH=\"$EESSI_PREFIX/software/linux/$EESSI_SOFTWARE_SUBDIR/modules/all\"\n\
     module() {\n\
     \x20 local cmd=$1; shift\n\
     \x20 case $cmd in\n\
     \x20   use) export MODULEPATH=\"$1:$MODULEPATH\" ;;\n\
     \x20   load) local m d f rel\n\
     \x20     for m in \"$@\"; do\n\
     \x20       f=\n\
     \x20       for d in ${MODULEPATH//:/ }; do\n\
     \x20         if [ -f \"$d/$m.lua\" ]; then f=$d/$m.lua; break; fi\n\
     \x20       done\n\
     \x20       if [ -z \"$f\" ]; then echo \"module: $m not found in $MODULEPATH\" >&2; return 1; fi\n\
     \x20       bin=$(sed -n 's/^prepend_path(\"PATH\", \"\\(.*\\)\")$/\\1/p' \"$f\")\n\
     \x20       export PATH=\"$bin:$PATH\"\n\
     \x20       export LOADEDMODULES=\"${LOADEDMODULES:+$LOADEDMODULES:}$m\"\n\
     \x20     done ;;\n\
     \x20   list) echo \"$LOADEDMODULES\" ;;\n\
     \x20   *) echo \"module: unknown command $cmd\" >&2; return 1 ;;\n\
     \x20 esac\n\
     }\n"
        .to_string()
}

/// Create the synthetic tree under `base`; the environment loads `hello/1.0` and
/// `GROMACS/2020.4-foss-2020a` (and `OnlyHaswell/2.0`, which has no generic build, when
/// `with_haswell_only` is true).
pub fn create(base: &Path, with_haswell_only: bool) -> SyntheticEessi {
    let prefix = base.join("cvmfs/pilot.eessi-hpc.org/versions/2021.12");
    write_compat_and_init(&prefix);
    for subdir in [SUBDIR, GENERIC] {
        write_software(&prefix, subdir);
    }
    let loaded: Vec<String> = MODULES
        .iter()
        .filter(|(_, _, generic)| *generic || with_haswell_only)
        .map(|(n, _, _)| n.to_string())
        .collect();
    let env = loaded_env(&prefix, &loaded);
    SyntheticEessi {
        prefix,
        loaded,
        env,
    }
}

/// The compat layer (with the usual excludable `var/` directories) and the init scripts.
fn write_compat_and_init(prefix: &Path) {
    let compat = prefix.join("compat/linux/x86_64");
    write(
        &compat.join("bin/compat-tool"),
        "#!/bin/sh\necho compat\n",
        0o755,
    );
    write(&compat.join("etc/os-release"), "NAME=synthetic\n", 0o644);
    write(&compat.join("var/lib/keep.txt"), "kept\n", 0o644);
    write(&compat.join("var/cache/big.bin"), &"x".repeat(4096), 0o644);
    write(&compat.join("var/db/pkg.db"), "db\n", 0o644);
    write(&compat.join("var/tmp/scratch"), "tmp\n", 0o644);
    write(&compat.join("var/log/emerge.log"), "log\n", 0o644);
    write(&compat.join(".cvmfscatalog"), "", 0o644);
    write(&prefix.join("init/bash"), &init_bash(), 0o644);
    write(&prefix.join("init/lmodrc.lua"), "propT = {}\n", 0o644);
    write(&prefix.join("init/.cvmfscatalog"), "", 0o644);
}

/// The software and module files of the modules built for `subdir` (the generic subdir lacks the
/// modules without a generic build).
fn write_software(prefix: &Path, subdir: &str) {
    let sw = prefix.join("software/linux").join(subdir);
    write(&sw.join(".cvmfscatalog"), "", 0o644);
    for (name, exe, generic) in MODULES {
        if subdir == GENERIC && !generic {
            continue;
        }
        let rel = format!("software/linux/{subdir}/software/{name}");
        let root = prefix.join(&rel);
        write(
            &root.join("bin").join(exe),
            &format!("#!/bin/sh\necho \"{exe} from {name} built for {subdir}\"\n"),
            0o755,
        );
        write(&root.join("easybuild/build.log"), "built\n", 0o644);
        write(&root.join(".cvmfscatalog"), "", 0o644);
        write(
            &sw.join("modules/all").join(format!("{name}.lua")),
            &format!(
                "-- synthetic module file\n-- root: {rel}\nprepend_path(\"PATH\", \"{}/bin\")\n",
                root.display()
            ),
            0o644,
        );
    }
}

/// The environment of a shell with EESSI initialised and `loaded` loaded, plus variables a freeze
/// must not capture.
fn loaded_env(prefix: &Path, loaded: &[String]) -> BTreeMap<String, String> {
    let p = prefix.display().to_string();
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_string(), v);
    };
    set("EESSI_PREFIX", p.clone());
    set("EESSI_OS_TYPE", "linux".into());
    set("EESSI_CPU_FAMILY", "x86_64".into());
    set("EESSI_SOFTWARE_SUBDIR", SUBDIR.into());
    set(
        "EESSI_MODULEPATH",
        format!("{p}/software/linux/{SUBDIR}/modules/all"),
    );
    set(
        "MODULEPATH",
        format!("{p}/software/linux/{SUBDIR}/modules/all"),
    );
    set("LMOD_RC", format!("{p}/init/lmodrc.lua"));
    set("LOADEDMODULES", loaded.join(":"));
    for name in loaded {
        let software = name.split('/').next().unwrap_or(name);
        set(
            &super::ebroot_var(software),
            format!("{p}/software/linux/{SUBDIR}/software/{name}"),
        );
    }
    set("HOME", "/home/someone".into());
    set("GITHUB_TOKEN", "do-not-capture".into());
    set("EESSI_ACCESS_TOKEN", "do-not-capture".into());
    env
}

impl SyntheticEessi {
    /// The freeze plan of this tree's loaded modules for `backend`, writing to `destination`, as
    /// `kerblam freeze --from-env` compiles it on 2023-11-14 (the backend's part still empty).
    pub fn plan(&self, backend: &str, destination: &Path) -> kerblam_plan::PackagePlan {
        let mut spec = crate::freeze::spec_from_env(&self.env, "Jane Doe <jane@example.org>")
            .expect("the synthetic environment has EESSI loaded");
        spec.backend = backend.to_string();
        spec.destination = Some(destination.to_string_lossy().into_owned());
        let source = crate::SourceFile::new("freeze.toml", spec.to_toml());
        let opts = crate::freeze::FreezeOptions {
            epoch: 1_700_000_000,
            base_dir: destination.to_path_buf(),
            temp_dir: std::env::temp_dir(),
            manifest: "freeze.toml".into(),
        };
        crate::freeze::compile_freeze(&spec, &source, &opts).expect("the synthetic spec compiles")
    }
}
