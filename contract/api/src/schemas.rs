use serde_json::Value;

use crate::{Describe, ErrorMessage, ExecuteRequest, ExecuteResult, Hello, PlanRequest};

/// Give enum tag properties (`{"const": "recipe"}` under `kind`/`check`), which schemars leaves
/// bare, a description, so that every field of every schema is described.
fn describe_tags(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get_mut("properties") {
                for (name, p) in props.iter_mut() {
                    if let Value::Object(p) = p
                        && !p.contains_key("description")
                        && let Some(Value::String(c)) = p.get("const").cloned()
                    {
                        p.insert(
                            "description".into(),
                            Value::String(format!(
                                "The `{name}` tag: always `{c}` for this variant."
                            )),
                        );
                    }
                }
            }
            map.values_mut().for_each(describe_tags);
        }
        Value::Array(items) => items.iter_mut().for_each(describe_tags),
        _ => {}
    }
}

fn schema<T: schemars::JsonSchema>() -> Value {
    let mut v = schemars::schema_for!(T).to_value();
    describe_tags(&mut v);
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
        ("backend-plan-request.json", schema::<PlanRequest>()),
        ("backend-plan.json", plan_reply_schema()),
        ("backend-execute-request.json", schema::<ExecuteRequest>()),
        ("backend-execute-result.json", schema::<ExecuteResult>()),
        ("backend-error.json", schema::<ErrorMessage>()),
    ]
}

/// The schema of `kerblam_backend_plan`'s reply: the plan's `backend` part, with its own `$id`.
fn plan_reply_schema() -> Value {
    let mut v = schema::<kerblam_plan::BackendPlan>();
    if let Value::Object(map) = &mut v {
        let mut sorted = serde_json::Map::new();
        if let Some(s) = map.remove("$schema") {
            sorted.insert("$schema".into(), s);
        }
        sorted.insert(
            "$id".into(),
            Value::String("https://kerblam.dev/schemas/backend-plan.json".into()),
        );
        sorted.insert("title".into(), Value::String("kerblam backend plan".into()));
        map.remove("title");
        sorted.append(map);
        return Value::Object(sorted);
    }
    v
}
