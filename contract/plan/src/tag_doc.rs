//! Descriptions for the tag property of internally tagged enums in the generated schemas.
//!
//! schemars gives each variant's tag property (e.g. `"kind": {"const": "recipe"}`) no description;
//! this transform adds one, so every property of the published schemas is documented.

use schemars::Schema;
use serde_json::Value;

/// Describe every undocumented `const` property of each `oneOf`/`anyOf` variant of `schema`.
pub(crate) fn describe_tag(schema: &mut Schema) {
    for key in ["oneOf", "anyOf"] {
        let Some(Value::Array(variants)) = schema.get_mut(key) else {
            continue;
        };
        for variant in variants {
            let Some(props) = variant.get_mut("properties").and_then(Value::as_object_mut) else {
                continue;
            };
            for (name, prop) in props.iter_mut() {
                let Some(obj) = prop.as_object_mut() else {
                    continue;
                };
                if obj.contains_key("description") {
                    continue;
                }
                if let Some(Value::String(c)) = obj.get("const") {
                    // The same words as the backend message schemas use for their own tags.
                    let text = format!("The `{name}` tag: always `{c}` for this variant.");
                    obj.insert("description".into(), Value::String(text));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tag_properties_are_described() {
        let plan = schemars::schema_for!(crate::PackagePlan).to_value();
        let schema = &plan["$defs"]["Base"];
        let variants = schema["oneOf"].as_array().expect("Base is a oneOf");
        for v in variants {
            let kind = &v["properties"]["kind"];
            assert!(kind["description"].is_string(), "{v}");
        }
    }
}
