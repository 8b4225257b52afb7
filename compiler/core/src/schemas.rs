//! The JSON Schemas kerblam publishes under `schemas/`.

use serde_json::Value;

use crate::manifest::Manifest;
use crate::schema_check::schema_value;

/// One published schema.
#[derive(Debug, Clone)]
pub struct NamedSchema {
    /// The short name used by `kerblam schema NAME`.
    pub name: &'static str,
    /// The file under `schemas/`.
    pub file: &'static str,
    /// The schema.
    pub schema: Value,
}

/// The compiler's schemas: the manifest, the plan and the freeze spec.
pub fn compiler_schemas() -> Vec<NamedSchema> {
    vec![
        NamedSchema {
            name: "kerblam.toml",
            file: "kerblam.toml.json",
            schema: schema_value::<Manifest>(),
        },
        NamedSchema {
            name: "plan",
            file: "plan.json",
            schema: schema_value::<kerblam_plan::PackagePlan>(),
        },
        NamedSchema {
            name: "freeze-spec",
            file: "freeze.json",
            schema: schema_value::<crate::freeze::FreezeSpec>(),
        },
    ]
}

/// A schema as committed: pretty JSON, sorted keys, final newline.
pub fn to_file_text(schema: &Value) -> String {
    let mut s = serde_json::to_string_pretty(schema).expect("schemas serialize");
    s.push('\n');
    s
}
