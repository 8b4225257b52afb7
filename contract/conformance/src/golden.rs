//! The golden plans: plans as kerblam's compiler makes them (the backend's part empty but for its
//! name), each with the options it is carried out with.

use kerblam_backend_api::ExecuteOptions;
use kerblam_plan::PackagePlan;

/// One golden plan and its options.
#[derive(Debug, Clone)]
pub struct Golden {
    /// The plan, for backend `any` (the kit puts the plugin's name in).
    pub plan: PackagePlan,
    /// The options of the plan request and the execute.
    pub options: ExecuteOptions,
}

/// The golden plans' names, in the order the kit runs them.
pub const NAMES: [&str; 3] = ["minimal", "oci-image", "preflight-fails"];

/// The committed JSON of each golden plan file, by name.
pub const TEXTS: &[(&str, &str)] = &[
    ("minimal", include_str!("../golden/minimal.json")),
    (
        "preflight-fails",
        include_str!("../golden/preflight-fails.json"),
    ),
];

fn parse(name: &str) -> PackagePlan {
    let text = TEXTS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no golden plan file {name}"))
        .1;
    serde_json::from_str(text).unwrap_or_else(|e| panic!("golden plan {name}: {e}"))
}

/// The golden plan `name`:
///
/// - `minimal`: a pipe packaged on `scratch` with one generated file, and kerblam's replay archive
///   (which the backend must neither write nor report);
/// - `oci-image`: the same, with `--image-format oci` (for backends that write OCI archives);
/// - `preflight-fails`: a `file-exists` check that never holds, so a backend must refuse it before
///   doing anything.
pub fn golden(name: &str) -> Golden {
    match name {
        "oci-image" => Golden {
            plan: parse("minimal"),
            options: ExecuteOptions {
                format: Some("oci".into()),
                ..ExecuteOptions::default()
            },
        },
        _ => Golden {
            plan: parse(name),
            options: ExecuteOptions::default(),
        },
    }
}
