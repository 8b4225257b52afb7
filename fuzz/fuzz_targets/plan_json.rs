//! The plan JSON reader (`plan.json` of a replay archive, of any schema version kerblam wrote; a
//! plan a backend receives), with the round trips that must hold for any plan that reads: compact
//! JSON, `kerblam plan`'s printer (which also writes `plan.json`) and TOML where the plan is representable
//! in TOML; then what the host and the engine backends do with a plan: the capability check, the
//! check of a backend's part, the context without the backend's files, and the Containerfile.
#![no_main]

use kerblam_backend_api::{Action, Capabilities, Describe, ExecuteOptions, missing_capabilities};
use kerblam_compiler::render::{Format, render};
use kerblam_plan::{Base, PackagePlan};
use libfuzzer_sys::fuzz_target;

/// The instructions kerblam adds after the user's recipe.
const ADDED: [&str; 6] = ["COPY ", "WORKDIR ", "ENV ", "LABEL ", "ENTRYPOINT ", "CMD "];

fuzz_target!(|data: &[u8]| {
    let Ok(plan) = kerblam_plan::upgrade::from_json(data) else {
        return;
    };
    let _ = plan.is_supported_schema();

    let compact = serde_json::to_vec(&plan).expect("a plan that was read serializes");
    let again: PackagePlan = serde_json::from_slice(&compact).expect("compact JSON reads back");
    assert_eq!(again, plan);

    let printed = render(&plan, Format::Json);
    let again: PackagePlan =
        serde_json::from_str(&printed).expect("`kerblam plan` JSON reads back");
    assert_eq!(again, plan);
    assert_eq!(
        render(&again, Format::Json),
        printed,
        "printing is deterministic"
    );

    let value = serde_json::to_value(&plan).expect("plans serialize");
    if let Ok(toml) = toml_edit::ser::to_string_pretty(&value) {
        let again: PackagePlan = toml_edit::de::from_str(&toml).expect("plan TOML reads back");
        assert_eq!(again, plan, "{toml}");
    }

    let describe = Describe {
        describe: "kerblam.describe/v1".into(),
        name: "fuzz".into(),
        version: "1".into(),
        description: None,
        abi: kerblam_backend_api::AbiVersion::CURRENT,
        plan_schema: kerblam_backend_api::SchemaRange { min: 2, max: 2 },
        sdk: None,
        capabilities: Capabilities::default(),
        engine: None,
    };
    for action in [Action::Package, Action::Run] {
        let _ = missing_capabilities(action, &plan, &ExecuteOptions::default(), &describe);
    }
    let paths = kerblam_backend_api::Paths {
        root: "/project".into(),
        kerblam: "/bin/kerblam".into(),
        output_dir: "/project".into(),
        temp_dir: "/tmp".into(),
    };
    let _ = kerblam_backend_api::host::contract::plan_problems(
        &plan.backend.name,
        &plan.neutral(),
        &plan.backend,
        &paths,
    );
    let _ = kerblam_backend_api::host::contract::host_clash(&plan.neutral(), &plan.backend, &paths);
    let mut without = plan.clone();
    without.exclude_backend_artifacts();
    assert!(without.context.files.len() <= plan.context.files.len());

    // The recipe text the engine backends would pass for a recipe or archive base.
    let recipe = match plan.base {
        Base::Recipe { .. } | Base::Archive { .. } => Some("FROM scratch\n"),
        Base::Image { .. } | Base::Scratch => None,
    };
    if let Ok(rendered) = kerblam_render::render(&plan, recipe) {
        // Whatever the plan holds, kerblam's part of the Containerfile is its own instructions:
        // each line starts one, or continues the one before (ENV and LABEL put one quoted pair per
        // continued line). No value can start a line of its own (a RUN, say).
        let text = &rendered.containerfile;
        let (_, added) = text
            .split_once("\n# --- added by kerblam ")
            .expect("the marker comment");
        let mut continued = false;
        for line in added.lines().skip(1) {
            if continued {
                assert!(
                    line.starts_with("      \""),
                    "line {line:?} does not continue a pair list:\n{text}"
                );
            } else {
                assert!(
                    ADDED.iter().any(|i| line.starts_with(i)),
                    "line {line:?} is not an instruction kerblam adds:\n{text}"
                );
            }
            continued = line.ends_with(" \\");
        }
    }
});
