//! The committed JSON Schemas of the plugin messages under `schemas/` match the types, carry an
//! `$id`, and describe every field. Run with `KERBLAM_UPDATE_SCHEMAS=1` to rewrite them.

use std::path::Path;

use serde_json::Value;

fn undescribed(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                for (name, p) in props {
                    if p.get("description").is_none() {
                        out.push(format!("{at}/properties/{name}"));
                    }
                }
            }
            for (k, child) in map {
                undescribed(child, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                undescribed(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn committed_message_schemas_are_up_to_date_and_complete() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let update = std::env::var_os("KERBLAM_UPDATE_SCHEMAS").is_some_and(|v| v == "1");
    let schemas = kerblam_backend_api::schemas();
    assert_eq!(schemas.len(), 5);
    let mut stale = Vec::new();
    for (file, schema) in schemas {
        assert_eq!(
            schema["$id"],
            format!("https://kerblam.dev/schemas/{file}"),
            "{file}"
        );
        assert!(schema["title"].is_string(), "{file} has no title");
        let mut missing = Vec::new();
        undescribed(&schema, String::new(), &mut missing);
        assert!(
            missing.is_empty(),
            "{file}: fields without a description: {missing:?}"
        );
        let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        let path = dir.join(file);
        if update {
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale schemas (rerun with KERBLAM_UPDATE_SCHEMAS=1): {stale:?}"
    );
}

#[test]
fn schemas_accept_real_messages() {
    let describe = kerblam_backend_api::sdk::describe("x", "1", Default::default());
    let v = serde_json::to_value(&describe).unwrap();
    let (_, schema) = kerblam_backend_api::schemas()
        .into_iter()
        .find(|(f, _)| *f == "backend-describe.json")
        .unwrap();
    // The schema names every field a describe has.
    for key in v.as_object().unwrap().keys() {
        assert!(
            schema["properties"].get(key).is_some(),
            "describe field {key} is not in the schema"
        );
    }
    assert_eq!(
        schema["properties"]["capabilities"]["description"],
        "What the backend can do."
    );
}
