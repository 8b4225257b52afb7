//! Printing plans deterministically, and comparing a checked-in plan with a fresh one.

use kerblam_plan::PackagePlan;

/// Output formats of `kerblam plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Pretty JSON with sorted keys and a final newline.
    #[default]
    Json,
    /// TOML.
    Toml,
}

/// Render a plan. Keys are sorted, so two runs on the same tree print the same bytes.
pub fn render(plan: &PackagePlan, format: Format) -> String {
    // `serde_json::Value` keeps object keys in a BTreeMap: converting sorts every key.
    let value = serde_json::to_value(plan).expect("plans serialize");
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&value).expect("values serialize");
            s.push('\n');
            s
        }
        Format::Toml => {
            toml_edit::ser::to_string_pretty(&value).expect("plans are TOML-representable")
        }
    }
}

/// A unified diff from `old` (named `old_name`) to `new`, or `None` when they are equal.
pub fn diff(old: &str, new: &str, old_name: &str) -> Option<String> {
    if old == new {
        return None;
    }
    let diff = similar::TextDiff::from_lines(old, new);
    Some(
        diff.unified_diff()
            .context_radius(3)
            .header(old_name, "(generated)")
            .to_string(),
    )
}
