//! Pure renderings that every kerblam backend shares, so that an engine build, a build-context
//! archive written by the tarball backend and a replay archive say the same thing byte for byte.
//!
//! - [`containerfile::render`] turns a [`kerblam_plan::PackagePlan`] (plus the text of its base
//!   recipe) into a [`Rendered`] Containerfile: the user's recipe, one `COPY` per plan layer, then
//!   `WORKDIR`, `ENV`, a freeze's smoke test as a `RUN`, `LABEL`, `ENTRYPOINT` and `CMD []`; and
//!   the list of [`ContextEntry`]s the caller must add to the build context for those `COPY` lines
//!   (the kerblam executable, generated text, host trees), each with its path inside the context.
//! - [`sorted`] orders the keys of every JSON object, for documents that must be byte-stable (a
//!   plan's JSON is rendered by `kerblam-compiler`, the one plan renderer).
//!
//! No I/O happens here: the caller reads the recipe and streams the entries.

pub mod containerfile;

pub use containerfile::{ContextEntry, EntrySource, RenderError, Rendered, render};

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
