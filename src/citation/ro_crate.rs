//! `ro-crate-metadata.json`: an RO-Crate 1.1 description of a [`Work`], written as a new crate or
//! merged into one kerblam wrote before, and read back by `kerblam verify`.
//!
//! Everything kerblam says about one work lives under its own local identifiers (`#package/<pipe>`,
//! `#package/<pipe>/input/<path>`, ...), beside the data entities of the files it made. Writing the
//! same work again replaces exactly those; other works described in the same directory stay.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::work::{Digested, Work, file_name};

/// The metadata file's name (RO-Crate 1.1 requires it).
pub const FILE_NAME: &str = "ro-crate-metadata.json";
/// The JSON-LD context of RO-Crate 1.1.
pub const CONTEXT: &str = "https://w3id.org/ro/crate/1.1/context";
/// The specification the crate conforms to.
pub const CONFORMS_TO: &str = "https://w3id.org/ro/crate/1.1";
/// kerblam's own entity; the descriptor's `sdPublisher` names it in every crate kerblam wrote.
const KERBLAM: &str = "#kerblam";

/// The crate for `work`, with the files under `dir` as its data entities (`None`: the paths are
/// relative to the crate root already, as inside a replay archive), merged into `existing` (a
/// crate kerblam wrote, see [`is_kerblams`]) when given. Entities are sorted by `@id` after the
/// descriptor and the root, and keys are sorted: the same work gives the same bytes.
pub fn describe(work: &Work, dir: Option<&Path>, existing: Option<&Value>) -> Value {
    let mut graph: BTreeMap<String, Value> = BTreeMap::new();
    let mut parts: Vec<String> = Vec::new();
    let mut root = Map::new();
    if let Some(old) = existing {
        for e in entities(old) {
            let Some(id) = e.get("@id").and_then(Value::as_str) else {
                continue;
            };
            graph.insert(id.to_string(), e.clone());
        }
        if let Some(Value::Object(r)) = graph.remove("./") {
            root = r;
        }
        parts = ids(root.get("hasPart"));
        let ours = owned(work, dir);
        graph.retain(|id, _| !ours.matches(id));
        parts.retain(|id| !ours.matches(id));
    }
    let (ours, our_parts) = our_entities(work, dir);
    for e in ours {
        let id = e["@id"].as_str().unwrap_or_default().to_string();
        graph.insert(id, e);
    }
    parts.extend(our_parts);
    parts.sort();
    parts.dedup();

    root.insert("@id".into(), json!("./"));
    root.insert("@type".into(), json!("Dataset"));
    root.entry("name").or_insert_with(|| json!(work.title));
    root.entry("description")
        .or_insert_with(|| json!(work.description));
    root.insert("datePublished".into(), json!(work.date));
    root.insert(
        "hasPart".into(),
        Value::Array(parts.iter().map(|p| json!({ "@id": p })).collect()),
    );
    if let (Some(_), None) = (&work.author, root.get("author")) {
        root.insert("author".into(), json!({ "@id": author_id(work) }));
    }
    let descriptor = json!({
        "@id": FILE_NAME,
        "@type": "CreativeWork",
        "about": { "@id": "./" },
        "conformsTo": { "@id": CONFORMS_TO },
        "sdPublisher": { "@id": KERBLAM },
    });
    graph.remove(FILE_NAME);
    let mut all = vec![descriptor, Value::Object(root)];
    all.extend(graph.into_values());
    json!({ "@context": CONTEXT, "@graph": all })
}

/// Whether `doc` is a crate kerblam wrote (its descriptor's `sdPublisher` is kerblam): only those
/// are merged into; anyone else's is left alone.
pub fn is_kerblams(doc: &Value) -> bool {
    entities(doc).any(|e| {
        e.get("@id").and_then(Value::as_str) == Some(FILE_NAME)
            && e.get("sdPublisher")
                .and_then(|p| p.get("@id"))
                .and_then(Value::as_str)
                == Some(KERBLAM)
    })
}

fn entities(doc: &Value) -> impl Iterator<Item = &Value> {
    doc.get("@graph")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn ids(v: Option<&Value>) -> Vec<String> {
    let one = |v: &Value| v.get("@id").and_then(Value::as_str).map(str::to_string);
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(one).collect(),
        Some(v) => one(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// What kerblam owns in a crate for `work`: its local identifiers and its artifacts' entities.
struct Owned {
    prefix: String,
    artifacts: Vec<String>,
}

impl Owned {
    fn matches(&self, id: &str) -> bool {
        id == self.prefix
            || id.starts_with(&format!("{}/", self.prefix))
            || self.artifacts.iter().any(|a| a == id)
    }
}

fn owned(work: &Work, dir: Option<&Path>) -> Owned {
    Owned {
        prefix: format!("#{}", work.id),
        artifacts: work
            .artifacts
            .iter()
            .map(|a| artifact_id(work, a, dir).0)
            .collect(),
    }
}

fn author_id(work: &Work) -> String {
    format!("#{}/author", work.id)
}

/// The `@id` of an artifact, and whether it is a data entity of the crate: a file inside `dir` is
/// named by its relative path; one elsewhere is a contextual entity of the work.
pub fn artifact_id(work: &Work, a: &Digested, dir: Option<&Path>) -> (String, bool) {
    let p = Path::new(&a.path);
    let inside = match dir {
        None if p.is_relative() => Some(a.path.clone()),
        None => None,
        Some(d) => p
            .strip_prefix(d)
            .ok()
            .filter(|r| !r.as_os_str().is_empty())
            .map(|r| r.to_string_lossy().into_owned()),
    };
    match inside {
        Some(rel) => (encode(&rel), true),
        None => (
            format!("#{}/file/{}", work.id, encode(file_name(&a.path))),
            false,
        ),
    }
}

/// The `@id` of an input: a contextual entity of the work (the inputs of a package are inside the
/// replay archive's data, not beside it).
pub fn input_id(work: &Work, path: &str) -> String {
    format!("#{}/input/{}", work.id, encode(path))
}

fn our_entities(work: &Work, dir: Option<&Path>) -> (Vec<Value>, Vec<String>) {
    let mut out = Vec::new();
    let author = work.author.as_ref().map(|p| {
        let mut e = json!({ "@id": author_id(work), "@type": "Person", "name": p.name });
        if let Some(email) = &p.email {
            e["email"] = json!(email);
        }
        e
    });
    let author_ref = author.as_ref().map(|_| json!({ "@id": author_id(work) }));
    out.extend(author);
    let objects = input_entities(work, &mut out);
    let (mut results, parts) = artifact_entities(work, dir, author_ref.as_ref(), &mut out);
    results.extend(image_entities(work, &mut out));
    let mut action = json!({
        "@id": format!("#{}", work.id),
        "@type": "CreateAction",
        "name": format!("kerblam {} {}", work.action, work.title),
        "description": work.description,
        "instrument": { "@id": KERBLAM },
        "object": objects,
        "result": results,
        "endTime": work.date,
    });
    if let Some(r) = author_ref {
        action["agent"] = r;
    }
    out.push(action);
    out.push(json!({
        "@id": KERBLAM,
        "@type": "SoftwareApplication",
        "name": "kerblam",
        "version": work.kerblam_version,
    }));
    (out, parts)
}

/// The inputs (files with their checksums) and a freeze's modules, added to `out`; the
/// references the action's `object` lists.
fn input_entities(work: &Work, out: &mut Vec<Value>) -> Vec<Value> {
    let mut objects = Vec::new();
    for i in &work.inputs {
        let id = input_id(work, &i.path);
        let mut e = json!({
            "@id": id,
            "@type": "File",
            "name": i.path,
            "sha256": hex(&i.sha256),
        });
        if let Some(n) = i.bytes {
            e["contentSize"] = json!(n.to_string());
        }
        out.push(e);
        objects.push(json!({ "@id": id }));
    }
    for m in &work.modules {
        let id = format!("#{}/module/{}", work.id, encode(m));
        let (name, version) = m.split_once('/').unwrap_or((m, ""));
        let mut e = json!({
            "@id": id,
            "@type": "SoftwareApplication",
            "name": name,
            "identifier": m,
        });
        if !version.is_empty() {
            e["version"] = json!(version);
        }
        out.push(e);
        objects.push(json!({ "@id": id }));
    }
    objects
}

/// The files made, added to `out`; the references the action's `result` lists, and the ids that
/// are parts of the crate's root dataset.
fn artifact_entities(
    work: &Work,
    dir: Option<&Path>,
    author_ref: Option<&Value>,
    out: &mut Vec<Value>,
) -> (Vec<Value>, Vec<String>) {
    let mut results = Vec::new();
    let mut parts = Vec::new();
    for a in &work.artifacts {
        let (id, part) = artifact_id(work, a, dir);
        let mut e = json!({
            "@id": id,
            "@type": "File",
            "name": file_name(&a.path),
            "sha256": hex(&a.sha256),
            "identifier": a.sha256,
            "dateCreated": work.date,
        });
        if let Some(n) = a.bytes {
            e["contentSize"] = json!(n.to_string());
        }
        if let Some(t) = a.media_type {
            e["encodingFormat"] = json!(t);
        }
        if let Some(v) = &work.version {
            e["version"] = json!(v);
        }
        if let Some(r) = author_ref {
            e["author"] = r.clone();
        }
        out.push(e);
        results.push(json!({ "@id": id }));
        if part {
            parts.push(id);
        }
    }
    (results, parts)
}

/// The engine image by its image ID, and what was published to a registry by digest, added to
/// `out`; the references the action's `result` lists.
fn image_entities(work: &Work, out: &mut Vec<Value>) -> Vec<Value> {
    let mut results = Vec::new();
    if let Some(img) = &work.image {
        let id = format!("#{}/image", work.id);
        out.push(json!({
            "@id": id,
            "@type": "SoftwareApplication",
            "name": img.tag,
            "identifier": img.id,
            "description": format!(
                "A container image. Its identifier is the image ID its engine reports: `docker image inspect --format '{{{{.Id}}}}' {}` (or podman).",
                img.tag
            ),
        }));
        results.push(json!({ "@id": id }));
    }
    for (n, (reference, what)) in work.published.iter().enumerate() {
        let id = format!("#{}/published/{n}", work.id);
        out.push(json!({
            "@id": id,
            "@type": "CreativeWork",
            "name": what,
            "identifier": reference,
            "description": format!("In an OCI registry, pinned by its digest: `skopeo inspect docker://{reference}` shows it, `oras pull {reference}` fetches it."),
        }));
        results.push(json!({ "@id": id }));
    }
    results
}

/// The hex digits of `sha256:<hex>`.
fn hex(sha: &str) -> &str {
    sha.strip_prefix("sha256:").unwrap_or(sha)
}

/// Percent-encodes what may not stand in a relative IRI (spaces, `%`, `#`, `?`, non-ASCII, ...).
fn encode(path: &str) -> String {
    let mut s = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/+=,;:@!$&'()*".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// A crate read back: its entities by `@id` and its root's parts.
pub struct Crate {
    entities: BTreeMap<String, Value>,
    parts: Vec<String>,
}

impl Crate {
    /// Checks `text` as an RO-Crate metadata document: JSON, the RO-Crate context, a descriptor
    /// (`ro-crate-metadata.json`, conforming to an RO-Crate version) about a `Dataset` root with a
    /// `datePublished`, and every `@id` unique. The error says what is missing.
    pub fn parse(text: &[u8]) -> Result<Crate, String> {
        let doc: Value =
            serde_json::from_slice(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let context = doc.get("@context");
        let ok_context = match context {
            Some(Value::String(c)) => c.starts_with("https://w3id.org/ro/crate/"),
            Some(Value::Array(a)) => a.iter().any(|c| {
                c.as_str()
                    .is_some_and(|c| c.starts_with("https://w3id.org/ro/crate/"))
            }),
            _ => false,
        };
        if !ok_context {
            return Err(
                "its @context is not an RO-Crate context (https://w3id.org/ro/crate/...)".into(),
            );
        }
        let Some(graph) = doc.get("@graph").and_then(Value::as_array) else {
            return Err("it has no @graph array".into());
        };
        let mut entities = BTreeMap::new();
        for e in graph {
            let Some(id) = e.get("@id").and_then(Value::as_str) else {
                return Err(format!("an entity has no @id: {e}"));
            };
            if entities.insert(id.to_string(), e.clone()).is_some() {
                return Err(format!("the @id {id:?} is used twice"));
            }
        }
        let descriptor = entities.get(FILE_NAME).ok_or(
            "it has no metadata descriptor (an entity with @id \"ro-crate-metadata.json\")",
        )?;
        let conforms = ids(descriptor.get("conformsTo"));
        if !conforms
            .iter()
            .any(|c| c.starts_with("https://w3id.org/ro/crate/"))
        {
            return Err("its descriptor does not conform to an RO-Crate version".into());
        }
        let root_id = ids(descriptor.get("about"))
            .pop()
            .ok_or("its descriptor is about nothing (no \"about\")")?;
        let root = entities
            .get(&root_id)
            .ok_or_else(|| format!("its root {root_id:?} is not in the @graph"))?;
        let is_dataset = match root.get("@type") {
            Some(Value::String(t)) => t == "Dataset",
            Some(Value::Array(a)) => a.iter().any(|t| t == "Dataset"),
            _ => false,
        };
        if !is_dataset {
            return Err(format!("its root {root_id:?} is not a Dataset"));
        }
        if root.get("datePublished").and_then(Value::as_str).is_none() {
            return Err(format!("its root {root_id:?} has no datePublished"));
        }
        let parts = ids(root.get("hasPart"));
        Ok(Crate { entities, parts })
    }

    /// The entity with `@id` `id`.
    pub fn entity(&self, id: &str) -> Option<&Value> {
        self.entities.get(id)
    }

    /// Whether the root lists `id` in its `hasPart`.
    pub fn has_part(&self, id: &str) -> bool {
        self.parts.iter().any(|p| p == id)
    }

    /// The data entity of the file `name` (relative to the crate root), with its recorded
    /// `sha256:<hex>`.
    pub fn file_digest(&self, name: &str) -> Option<String> {
        self.entity(&encode(name))
            .and_then(|e| e.get("sha256"))
            .and_then(Value::as_str)
            .map(|h| format!("sha256:{h}"))
    }

    /// Every entity whose `@id` starts with `prefix`, by `@id`.
    pub fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> {
        self.entities
            .range(prefix.to_string()..)
            .take_while(move |(id, _)| id.starts_with(prefix))
            .map(|(id, e)| (id.as_str(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::citation::person::Person;

    fn work(id: &str, file: &str) -> Work {
        Work {
            id: id.into(),
            action: "freeze",
            title: "EESSI_GROMACS".into(),
            version: Some("2026.12.07".into()),
            description: "A frozen environment.".into(),
            date: "2026-12-07".into(),
            author: Person::parse("Jane Doe <jane@example.org>"),
            modules: vec!["GROMACS/2024.1-foss-2023b".into()],
            inputs: vec![Digested {
                path: "freeze.toml".into(),
                bytes: Some(10),
                sha256: format!("sha256:{}", "a".repeat(64)),
                media_type: None,
            }],
            artifacts: vec![Digested {
                path: format!("/out/{file}"),
                bytes: Some(123),
                sha256: format!("sha256:{}", "b".repeat(64)),
                media_type: Some("application/zstd"),
            }],
            image: None,
            published: Vec::new(),
            kerblam_version: "1.0.0".into(),
        }
    }

    #[test]
    fn a_new_crate_reads_back_with_its_artifact_and_inputs() {
        let w = work("freeze/x-2026.12.07", "x-2026.12.07.tar.zst");
        let doc = describe(&w, Some(Path::new("/out")), None);
        assert!(is_kerblams(&doc));
        let c = Crate::parse(&serde_json::to_vec(&doc).unwrap()).unwrap();
        assert!(c.has_part("x-2026.12.07.tar.zst"));
        assert_eq!(
            c.file_digest("x-2026.12.07.tar.zst").as_deref(),
            Some(format!("sha256:{}", "b".repeat(64)).as_str())
        );
        let inputs: Vec<_> = c.under("#freeze/x-2026.12.07/input/").collect();
        assert_eq!(inputs.len(), 1);
        assert_eq!(inputs[0].1["sha256"], "a".repeat(64));
        let module = c
            .entity("#freeze/x-2026.12.07/module/GROMACS/2024.1-foss-2023b")
            .unwrap();
        assert_eq!(
            (&module["name"], &module["version"]),
            (&json!("GROMACS"), &json!("2024.1-foss-2023b"))
        );
        let root = c.entity("./").unwrap();
        assert_eq!(root["author"]["@id"], "#freeze/x-2026.12.07/author");
    }

    #[test]
    fn merging_keeps_other_works_and_replaces_the_same_one() {
        let a = work("freeze/a", "a.tar.zst");
        let b = work("freeze/b", "b.tar.zst");
        let first = describe(&a, Some(Path::new("/out")), None);
        let both = describe(&b, Some(Path::new("/out")), Some(&first));
        let mut a2 = a.clone();
        a2.artifacts[0].sha256 = format!("sha256:{}", "c".repeat(64));
        let again = describe(&a2, Some(Path::new("/out")), Some(&both));
        let c = Crate::parse(&serde_json::to_vec(&again).unwrap()).unwrap();
        assert!(c.has_part("a.tar.zst") && c.has_part("b.tar.zst"));
        assert_eq!(
            c.file_digest("a.tar.zst").unwrap(),
            format!("sha256:{}", "c".repeat(64))
        );
        assert!(c.entity("#freeze/b").is_some());
        // Describing the same work again changes nothing.
        assert_eq!(describe(&a2, Some(Path::new("/out")), Some(&again)), again);
    }

    #[test]
    fn files_outside_the_crate_are_contextual_and_odd_names_are_encoded() {
        let w = work("package/p", "p.context.tar");
        let a = Digested {
            path: "/elsewhere/my file#1.tar".into(),
            ..w.artifacts[0].clone()
        };
        assert_eq!(
            artifact_id(&w, &a, Some(Path::new("/out"))),
            ("#package/p/file/my%20file%231.tar".to_string(), false)
        );
        let inside = Digested {
            path: "/out/sub/p.tar".into(),
            ..a
        };
        assert_eq!(
            artifact_id(&w, &inside, Some(Path::new("/out"))),
            ("sub/p.tar".to_string(), true)
        );
    }

    #[test]
    fn parse_names_what_is_missing() {
        let bad = |s: &str| Crate::parse(s.as_bytes()).err().unwrap();
        assert!(bad("{").contains("not valid JSON"));
        assert!(bad(r#"{"@context":"x","@graph":[]}"#).contains("@context"));
        assert!(
            bad(r#"{"@context":"https://w3id.org/ro/crate/1.1/context","@graph":[]}"#)
                .contains("descriptor")
        );
        let no_date = r#"{"@context":"https://w3id.org/ro/crate/1.1/context","@graph":[
            {"@id":"ro-crate-metadata.json","conformsTo":{"@id":"https://w3id.org/ro/crate/1.1"},"about":{"@id":"./"}},
            {"@id":"./","@type":"Dataset"}]}"#;
        assert!(bad(no_date).contains("datePublished"));
    }
}
