//! The committed JSON Schemas of the plugin messages under `schemas/` match the types, carry an
//! `$id`, and describe every field. Run with `KERBLAM_UPDATE_SCHEMAS=1` to rewrite them. The C
//! header `include/kerblam_backend.h` matches the Rust ABI the same way, and its struct layouts
//! match Rust's when a C compiler checks them.

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
    assert_eq!(schemas.len(), 7);
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

#[test]
fn the_committed_c_header_is_generated_from_the_rust_abi() {
    use kerblam_backend_api::c_header;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(c_header::PATH);
    let text = c_header::text();
    if std::env::var_os("KERBLAM_UPDATE_SCHEMAS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{} is stale; regenerate it with KERBLAM_UPDATE_SCHEMAS=1 cargo test -p kerblam-backend-api --test schemas",
        path.display()
    );
}

/// Compiles a C file against the header that asserts, at compile time, every size and offset of
/// `KerblamBuf` and `KerblamHostV1` as Rust lays them out, and every constant's value; then runs
/// it, so the function declarations are also checked against a definition.
#[test]
fn the_c_header_agrees_with_rust_on_layouts_and_values() {
    use kerblam_backend_api::{ABI_VERSION, Buf, HostV1, Status};
    use std::mem::{offset_of, size_of};
    let t = tempfile::tempdir().unwrap();
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let mut c = String::from("#include <kerblam_backend.h>\n#include <stdio.h>\n");
    let mut check = |expr: String, value: usize| {
        c.push_str(&format!(
            "_Static_assert(({expr}) == {value}, \"{expr}\");\n"
        ));
    };
    check("sizeof(KerblamBuf)".into(), size_of::<Buf>());
    check("offsetof(KerblamBuf, len)".into(), offset_of!(Buf, len));
    check("offsetof(KerblamBuf, cap)".into(), offset_of!(Buf, cap));
    check("sizeof(KerblamHostV1)".into(), size_of::<HostV1>());
    for (field, off) in [
        ("ctx", offset_of!(HostV1, ctx)),
        ("log", offset_of!(HostV1, log)),
        ("progress", offset_of!(HostV1, progress)),
        ("is_cancelled", offset_of!(HostV1, is_cancelled)),
    ] {
        check(format!("offsetof(KerblamHostV1, {field})"), off);
    }
    check("KERBLAM_BACKEND_ABI_VERSION".into(), ABI_VERSION as usize);
    for (name, s) in [
        ("OK", Status::Ok),
        ("BACKEND_ERROR", Status::BackendError),
        ("INVALID_INPUT", Status::InvalidInput),
        ("CANCELLED", Status::Cancelled),
        ("PANIC", Status::Panic),
        ("UNSUPPORTED", Status::Unsupported),
    ] {
        check(format!("KERBLAM_STATUS_{name}"), s.code() as usize);
    }
    // Definitions with the declared signatures: a mismatch is a compile error.
    c.push_str(
        "uint32_t kerblam_backend_abi_version(void) { return KERBLAM_BACKEND_ABI_VERSION; }\n\
         int32_t kerblam_backend_describe(const uint8_t *h, size_t n, KerblamBuf *o) { (void)h; (void)n; (void)o; return 0; }\n\
         int32_t kerblam_backend_plan(const uint8_t *r, size_t n, KerblamBuf *o) { (void)r; (void)n; (void)o; return 0; }\n\
         int32_t kerblam_backend_execute(const uint8_t *r, size_t n, const KerblamHostV1 *h, KerblamBuf *o) { (void)r; (void)n; (void)o; return KERBLAM_HOST_HAS(h, is_cancelled); }\n\
         void kerblam_backend_free(KerblamBuf b) { (void)b; }\n\
         int main(void) { KerblamHostV1 h = {sizeof h, NULL, NULL, NULL, NULL}; printf(\"%d\\n\", kerblam_backend_execute(NULL, 0, &h, NULL)); return 0; }\n",
    );
    let src = t.path().join("layout.c");
    std::fs::write(&src, &c).unwrap();
    let exe = t.path().join("layout");
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let o = std::process::Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Werror", "-I"])
        .arg(&include)
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("a C compiler (cc, or $CC) is needed");
    assert!(
        o.status.success(),
        "the header does not agree with Rust:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let run = std::process::Command::new(&exe).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "0\n");
}
