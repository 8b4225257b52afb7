use serde_json::Value;

use crate::{Describe, ErrorMessage, ExecuteRequest, ExecuteResult, Hello};

fn schema<T: schemars::JsonSchema>() -> Value {
    let mut v = schemars::schema_for!(T).to_value();
    if let Value::Object(map) = &mut v {
        // Put `$id` and `title` first for readers; schemars already set them from the attributes.
        let mut sorted = serde_json::Map::new();
        for key in ["$schema", "$id", "title"] {
            if let Some(x) = map.remove(key) {
                sorted.insert(key.to_string(), x);
            }
        }
        sorted.append(map);
        return Value::Object(sorted);
    }
    v
}

/// The JSON Schemas of the plugin messages, as `(file name, schema)` pairs. The files are committed
/// under `schemas/`; each schema's `$id` is `https://kerblam.dev/schemas/<file name>`.
pub fn schemas() -> Vec<(&'static str, Value)> {
    vec![
        ("backend-hello.json", schema::<Hello>()),
        ("backend-describe.json", schema::<Describe>()),
        ("backend-execute-request.json", schema::<ExecuteRequest>()),
        ("backend-execute-result.json", schema::<ExecuteResult>()),
        ("backend-error.json", schema::<ErrorMessage>()),
    ]
}
