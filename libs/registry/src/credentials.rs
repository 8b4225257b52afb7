//! Registry credentials, from where docker and podman users already keep them. kerblam never
//! takes a password on its command line, never logs one, and never writes one anywhere.
//!
//! Looked up in this order, the first file that has an entry for the registry wins:
//!
//! 1. `REGISTRY_AUTH_FILE` (podman's and skopeo's variable);
//! 2. `$XDG_RUNTIME_DIR/containers/auth.json` (where `podman login` writes);
//! 3. `$HOME/.config/containers/auth.json`;
//! 4. `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json` (where `docker login`
//!    writes), including its credential helpers (`credHelpers`, `credsStore`).

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, Result};

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or identity token.
    pub password: String,
    /// Where they were found (a file or a credential helper), for messages.
    pub source: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

#[derive(Debug, Default, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl Credentials {
    /// The credentials for `registry` (`host[:port]`), or `None` to go anonymous.
    pub fn for_registry(registry: &str) -> Result<Option<Credentials>> {
        for file in files() {
            if let Some(c) = from_file(&file, registry)? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// `Basic` authorization header value.
    pub fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The files to look in, in order (those that do not exist are skipped when read).
fn files() -> Vec<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let mut files = Vec::new();
    files.extend(env("REGISTRY_AUTH_FILE"));
    if let Some(run) = env("XDG_RUNTIME_DIR") {
        files.push(run.join("containers/auth.json"));
    }
    let home = env("HOME");
    if let Some(h) = &home {
        files.push(h.join(".config/containers/auth.json"));
    }
    match env("DOCKER_CONFIG") {
        Some(d) => files.push(d.join("config.json")),
        None => files.extend(home.map(|h| h.join(".docker/config.json"))),
    }
    files
}

fn from_file(path: &Path, registry: &str) -> Result<Option<Credentials>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Credentials {
                source_name: path.display().to_string(),
                why: e.to_string(),
            });
        }
    };
    let bad = |why: String| Error::Credentials {
        source_name: path.display().to_string(),
        why,
    };
    let file: AuthFile = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let keys = keys_for(registry);
    if let Some(helper) = keys.iter().find_map(|k| file.cred_helpers.get(k)) {
        return helper_credentials(helper, registry);
    }
    let entry = file
        .auths
        .iter()
        .find(|(k, _)| keys.contains(&normalize(k)))
        .map(|(_, v)| v);
    match entry {
        Some(e) => entry_credentials(e, path).map_err(bad),
        None => match &file.creds_store {
            Some(store) => helper_credentials(store, registry),
            None => Ok(None),
        },
    }
}

fn entry_credentials(
    e: &AuthEntry,
    path: &Path,
) -> std::result::Result<Option<Credentials>, String> {
    let source = path.display().to_string();
    if let Some(auth) = e.auth.as_deref().filter(|a| !a.is_empty()) {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| "an \"auth\" entry is not base64".to_string())?;
        let raw =
            String::from_utf8(raw).map_err(|_| "an \"auth\" entry is not UTF-8".to_string())?;
        let (user, pass) = raw
            .split_once(':')
            .ok_or_else(|| "an \"auth\" entry is not user:password".to_string())?;
        return Ok(Some(Credentials {
            username: user.to_string(),
            password: pass.to_string(),
            source,
        }));
    }
    if let Some(token) = &e.identitytoken {
        return Ok(Some(Credentials {
            username: "<token>".into(),
            password: token.clone(),
            source,
        }));
    }
    match (&e.username, &e.password) {
        (Some(u), Some(p)) => Ok(Some(Credentials {
            username: u.clone(),
            password: p.clone(),
            source,
        })),
        _ => Ok(None),
    }
}

/// The keys an auth file may use for `registry`: the host itself, and Docker Hub's old names.
fn keys_for(registry: &str) -> Vec<String> {
    let mut keys = vec![registry.to_string()];
    if matches!(
        registry,
        "docker.io" | "registry-1.docker.io" | "index.docker.io"
    ) {
        keys.extend(["docker.io", "index.docker.io", "registry-1.docker.io"].map(String::from));
    }
    keys
}

/// `https://host:port/v1/` → `host:port`.
fn normalize(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k).to_string()
}

/// Asks `docker-credential-HELPER get` (the docker credential helper protocol).
fn helper_credentials(helper: &str, registry: &str) -> Result<Option<Credentials>> {
    let program = format!("docker-credential-{helper}");
    let bad = |why: String| Error::Credentials {
        source_name: program.clone(),
        why,
    };
    let mut child = match Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Err(bad(format!("cannot run it: {e}"))),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| bad(e.to_string()))?;
    if !out.status.success() {
        // "credentials not found in native keychain": go anonymous.
        return Ok(None);
    }
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let a: Answer = serde_json::from_slice(&out.stdout)
        .map_err(|e| bad(format!("its answer is not the helper protocol's JSON: {e}")))?;
    Ok(Some(Credentials {
        username: a.username,
        password: a.secret,
        source: program,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_and_podman_auth_entries() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        // "alice:s3cret"
        std::fs::write(
            &file,
            r#"{"auths":{"https://127.0.0.1:5001/v1/":{"auth":"YWxpY2U6czNjcmV0"},"quay.io":{"username":"bob","password":"pw"}}}"#,
        )
        .unwrap();
        let c = from_file(&file, "127.0.0.1:5001").unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "s3cret")
        );
        assert_eq!(c.basic(), "Basic YWxpY2U6czNjcmV0");
        assert!(!format!("{c:?}").contains("s3cret"));
        let q = from_file(&file, "quay.io").unwrap().unwrap();
        assert_eq!(q.username, "bob");
        assert!(from_file(&file, "ghcr.io").unwrap().is_none());
    }

    #[test]
    fn a_broken_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.json");
        std::fs::write(&file, r#"{"auths":{"ghcr.io":{"auth":"%%%"}}}"#).unwrap();
        let e = from_file(&file, "ghcr.io").unwrap_err().to_string();
        assert!(e.contains("auth.json") && e.contains("base64"), "{e}");
    }
}
