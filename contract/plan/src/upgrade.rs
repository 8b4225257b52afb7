//! Reading plans written by older versions of kerblam.
//!
//! A replay archive made years ago carries the plan of its day, so `kerblam replay` must read every
//! schema version kerblam ever wrote. [`from_json`] takes any of them and returns today's
//! [`PackagePlan`]:
//!
//! - `kerblam.plan/v2` (today's) as it is;
//! - `kerblam.plan/v1`, which named its backend as a string and listed every artifact and check in
//!   one list: the replay archive stays kerblam's, every other artifact becomes the backend's,
//!   the checks stay the plan's, files are named after the plan in the project root, and a freeze's
//!   entry count is taken from its file count.

use serde_json::{Map, Value, json};

use crate::{PLAN_SCHEMA, PackagePlan};

/// The identifier of the first plan schema.
pub const PLAN_SCHEMA_V1: &str = "kerblam.plan/v1";

/// Parse a plan of any schema version kerblam has written. The error says what is wrong: not
/// JSON, an unknown schema, or not a plan of the schema it names.
pub fn from_json(bytes: &[u8]) -> Result<PackagePlan, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    from_value(value)
}

/// [`from_json`] of a parsed value.
pub fn from_value(mut value: Value) -> Result<PackagePlan, String> {
    let schema = value
        .get("schema")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match schema.as_str() {
        PLAN_SCHEMA => {}
        PLAN_SCHEMA_V1 => {
            let obj = value
                .as_object_mut()
                .ok_or("a plan must be a JSON object")?;
            v1_to_v2(obj)?;
        }
        "" => return Err("it has no `schema` field; it is not a kerblam plan".into()),
        other => {
            return Err(format!(
                "its schema {other:?} is neither {PLAN_SCHEMA} nor {PLAN_SCHEMA_V1}; a newer kerblam wrote it"
            ));
        }
    }
    serde_json::from_value(value).map_err(|e| format!("not a valid {schema} plan: {e}"))
}

fn v1_to_v2(plan: &mut Map<String, Value>) -> Result<(), String> {
    let backend = match plan.remove("backend") {
        Some(Value::String(name)) => name,
        _ => {
            return Err(format!(
                "a {PLAN_SCHEMA_V1} plan names its backend as a string"
            ));
        }
    };
    let artifacts = match plan.remove("artifacts") {
        Some(Value::Array(a)) => a,
        None => Vec::new(),
        Some(_) => return Err("`artifacts` is not a list".into()),
    };
    let (host, own): (Vec<Value>, Vec<Value>) = artifacts
        .into_iter()
        .partition(|a| a.get("kind").and_then(Value::as_str) == Some("replay-archive"));
    let name = plan.get("name").cloned().unwrap_or(Value::Null);
    plan.insert("schema".into(), Value::String(PLAN_SCHEMA.into()));
    plan.insert("artifacts".into(), Value::Array(host));
    plan.insert("output".into(), json!({"dir": ".", "stem": name}));
    plan.insert(
        "backend".into(),
        json!({"name": backend, "artifacts": own, "preflight": [], "rendered": [], "usage": []}),
    );
    if let Some(Value::Object(freeze)) = plan.get_mut("freeze")
        && !freeze.contains_key("entries")
    {
        let files = freeze.get("total_files").cloned().unwrap_or(json!(0));
        freeze.insert("entries".into(), files);
    }
    Ok(())
}
