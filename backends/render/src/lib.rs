//! Pure renderings that every kerblam backend shares, so that an engine build, a build-context
//! archive written by the tarball backend and a replay archive say the same thing byte for byte.
//!
//! - [`containerfile::render`] turns a [`kerblam_plan::PackagePlan`] (plus the text of its base
//!   recipe) into a [`Rendered`] Containerfile: the user's recipe, one `COPY` per plan layer, then
//!   `WORKDIR`, `ENV`, a freeze's smoke test as a `RUN`, `LABEL`, `ENTRYPOINT` and `CMD []`; and
//!   the list of [`ContextEntry`]s the caller must add to the build context for those `COPY` lines
//!   (the kerblam executable, generated text, host trees), each with its path inside the context.
//! - [`plan_json`] is the exact bytes of `plan.json` inside a replay archive: the plan as pretty JSON
//!   with every object's keys sorted and a final newline (what `kerblam plan` prints).
//!
//! No I/O happens here: the caller reads the recipe and streams the entries.

pub mod containerfile;

pub use containerfile::{ContextEntry, EntrySource, RenderError, Rendered, render};

use kerblam_plan::PackagePlan;

/// The bytes of `plan.json` in a replay archive: pretty JSON, keys sorted, final newline.
pub fn plan_json(plan: &PackagePlan) -> Vec<u8> {
    let value = sorted(serde_json::to_value(plan).expect("plans serialize to JSON"));
    let mut s = serde_json::to_string_pretty(&value).expect("JSON values serialize");
    s.push('\n');
    s.into_bytes()
}

/// `value` with the keys of every object in sorted order, whatever map type `serde_json` was built
/// with (its `preserve_order` feature keeps insertion order otherwise).
pub fn sorted(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}
