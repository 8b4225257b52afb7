//! The distribution API calls kerblam makes, each checked against the digest it names.

use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};
use ureq::Body;
use ureq::http::Response;

use crate::auth::Challenge;
use crate::credentials::Credentials;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::{hex, media};

/// The most a manifest may weigh (the distribution spec lets registries refuse more than 4 MiB).
const MANIFEST_LIMIT: u64 = 4 << 20;

/// A manifest as the registry holds it: its bytes are what its digest is of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The bytes, exactly as served.
    pub bytes: Vec<u8>,
    /// The `Content-Type` (or the manifest's own `mediaType`).
    pub media_type: String,
    /// `sha256:` of the bytes.
    pub digest: String,
}

/// A connection to one repository of one registry.
pub struct Client {
    registry: String,
    repository: String,
    base: String,
    agent: ureq::Agent,
    credentials: Option<Credentials>,
    authorization: Mutex<Option<String>>,
}

/// Whether a request reads or writes (the token scope it needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Pull,
    Push,
}

impl Client {
    /// A client for `reference`'s repository, with the credentials the user keeps for its
    /// registry (anonymous when there are none).
    pub fn new(reference: &Reference) -> Result<Client> {
        let credentials = Credentials::for_registry(&reference.registry)?;
        Ok(Client::with_credentials(reference, credentials))
    }

    /// A client with the given credentials.
    pub fn with_credentials(reference: &Reference, credentials: Option<Credentials>) -> Client {
        let scheme = if reference.is_loopback() {
            "http"
        } else {
            "https"
        };
        let host = match reference.registry.as_str() {
            "docker.io" | "index.docker.io" => "registry-1.docker.io",
            other => other,
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(300)))
            .timeout_per_read(Some(Duration::from_secs(300)))
            .user_agent(format!("kerblam/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client {
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
            base: format!("{scheme}://{host}"),
            agent,
            credentials,
            authorization: Mutex::new(None),
        }
    }

    /// The manifest `reference` (a tag or a digest) names. Asked by digest, its bytes must hash
    /// to it.
    pub fn manifest(&self, reference: &str) -> Result<Manifest> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.repository);
        let what = format!("manifest {}/{}:{reference}", self.registry, self.repository);
        let resp = self.call(&what, Access::Pull, |auth| {
            let mut r = self.agent.get(&url).header("Accept", media::ACCEPT);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.call()
        })?;
        let resp = self.check(resp, &what)?;
        let header_type = header(&resp, "content-type");
        let bytes = resp
            .into_body()
            .with_config()
            .limit(MANIFEST_LIMIT)
            .read_to_vec()
            .map_err(|e| self.unreachable(e))?;
        let digest = crate::digest_of(&bytes);
        if crate::reference::is_digest(reference) && digest != reference {
            return Err(Error::DigestMismatch {
                registry: self.registry.clone(),
                what,
                expected: reference.to_string(),
                actual: digest,
            });
        }
        let own_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("mediaType")?.as_str().map(String::from));
        let media_type = own_type
            .or(header_type.filter(|t| !t.is_empty()))
            .unwrap_or_else(|| media::OCI_MANIFEST.to_string());
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Stores `bytes` as a manifest of `media_type` under `reference` (a tag, or its own digest).
    /// Returns its digest, and whether the registry said it indexed the manifest's `subject`
    /// (`OCI-Subject`, OCI 1.1 registries with the referrers API).
    pub fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(String, bool)> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.repository);
        let what = format!(
            "the manifest {}/{}:{reference}",
            self.registry, self.repository
        );
        let resp = self.call(&what, Access::Push, |auth| {
            let mut r = self.agent.put(&url).header("Content-Type", media_type);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.send(bytes)
        })?;
        let resp = self.check(resp, &what)?;
        let digest = crate::digest_of(bytes);
        if let Some(said) = header(&resp, "docker-content-digest") {
            if said != digest {
                return Err(Error::DigestMismatch {
                    registry: self.registry.clone(),
                    what,
                    expected: digest,
                    actual: said,
                });
            }
        }
        Ok((digest, header(&resp, "oci-subject").is_some()))
    }

    /// Whether the repository holds the blob `digest`.
    pub fn has_blob(&self, digest: &str) -> Result<bool> {
        let url = format!("{}/v2/{}/blobs/{digest}", self.base, self.repository);
        let what = format!("blob {digest}");
        let resp = self.call(&what, Access::Pull, |auth| {
            let mut r = self.agent.head(&url);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.call()
        })?;
        match resp.status().as_u16() {
            404 => Ok(false),
            _ => self.check(resp, &what).map(|_| true),
        }
    }

    /// Uploads `size` bytes from `data` as the blob `digest` (one monolithic upload, streamed),
    /// unless the repository has it already. The bytes are hashed on the way: a reader that does
    /// not give what `digest` says fails, and the registry checks it too.
    pub fn put_blob(&self, digest: &str, size: u64, data: &mut dyn Read) -> Result<()> {
        if self.has_blob(digest)? {
            return Ok(());
        }
        let what = format!("the upload of blob {digest}");
        let start = format!("{}/v2/{}/blobs/uploads/", self.base, self.repository);
        let resp = self.call(&what, Access::Push, |auth| {
            let mut r = self.agent.post(&start);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.send_empty()
        })?;
        let resp = self.check(resp, &what)?;
        let location = header(&resp, "location").ok_or_else(|| Error::Protocol {
            registry: self.registry.clone(),
            what: "started an upload without saying where to send it (no Location)".into(),
        })?;
        let location = if location.starts_with("http://") || location.starts_with("https://") {
            location
        } else {
            format!("{}{location}", self.base)
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", digest.replace(':', "%3A"));
        let mut hashing = HashingReader::new(data);
        let mut r = self
            .agent
            .put(&url)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", size.to_string());
        if let Some(a) = self
            .authorization
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            r = r.header("Authorization", a);
        }
        let resp = r
            .send(ureq::SendBody::from_reader(&mut hashing))
            .map_err(|e| self.unreachable(e))?;
        let actual = hashing.digest();
        if actual != digest {
            return Err(Error::DigestMismatch {
                registry: self.registry.clone(),
                what: "a blob kerblam uploaded".into(),
                expected: digest.to_string(),
                actual,
            });
        }
        self.check(resp, &what).map(|_| ())
    }

    /// Streams the blob `digest` into `out` and checks it: on a mismatch the caller must discard
    /// what was written (it is returned as an error only at the end). Returns the size.
    pub fn blob_to(&self, digest: &str, out: &mut dyn Write) -> Result<u64> {
        let url = format!("{}/v2/{}/blobs/{digest}", self.base, self.repository);
        let what = format!("blob {digest} of {}", self.repository);
        let resp = self.call(&what, Access::Pull, |auth| {
            let mut r = self.agent.get(&url);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.call()
        })?;
        let resp = self.check(resp, &what)?;
        let mut reader = HashingReader::new(resp.into_body().into_reader());
        let size = std::io::copy(&mut reader, out).map_err(|e| Error::Unreachable {
            registry: self.registry.clone(),
            why: format!("reading {what}: {e}"),
        })?;
        let actual = reader.digest();
        if actual != digest {
            return Err(Error::DigestMismatch {
                registry: self.registry.clone(),
                what,
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(size)
    }

    /// Makes a request; on 401, answers the challenge once and makes it again.
    fn call(
        &self,
        what: &str,
        access: Access,
        make: impl Fn(Option<&str>) -> std::result::Result<Response<Body>, ureq::Error>,
    ) -> Result<Response<Body>> {
        let current = self
            .authorization
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let resp = make(current.as_deref()).map_err(|e| self.unreachable(e))?;
        if resp.status().as_u16() != 401 {
            return Ok(resp);
        }
        let challenge = header(&resp, "www-authenticate").and_then(|h| Challenge::parse(&h));
        let Some(challenge) = challenge else {
            return Ok(resp);
        };
        let authorization = self.answer(&challenge, access, what)?;
        *self.authorization.lock().unwrap_or_else(|p| p.into_inner()) = Some(authorization.clone());
        make(Some(&authorization)).map_err(|e| self.unreachable(e))
    }

    /// The `Authorization` value that answers `challenge`.
    fn answer(&self, challenge: &Challenge, access: Access, what: &str) -> Result<String> {
        let refused = |why: &str| Error::Unauthorized {
            registry: self.registry.clone(),
            what: what.to_string(),
            why: why.to_string(),
        };
        match challenge {
            Challenge::Basic => match &self.credentials {
                Some(c) => Ok(c.basic()),
                None => Err(refused("it needs credentials, and none are stored for it")),
            },
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let wanted = match access {
                    Access::Pull => "pull",
                    Access::Push => "pull,push",
                };
                let scope = scope
                    .clone()
                    .unwrap_or_else(|| format!("repository:{}:{wanted}", self.repository));
                let mut url = format!("{realm}?scope={}", encode(&scope));
                if let Some(s) = service {
                    url.push_str(&format!("&service={}", encode(s)));
                }
                let mut r = self.agent.get(&url);
                if let Some(c) = &self.credentials {
                    r = r.header("Authorization", c.basic());
                }
                let resp = r.call().map_err(|e| self.unreachable(e))?;
                let status = resp.status().as_u16();
                if status == 401 || status == 403 {
                    return Err(refused("the token service refused the credentials"));
                }
                let body = resp
                    .into_body()
                    .with_config()
                    .limit(1 << 20)
                    .read_to_vec()
                    .map_err(|e| self.unreachable(e))?;
                let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let token = json
                    .get("token")
                    .or_else(|| json.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| {
                        refused(&format!(
                            "the token service answered HTTP {status} without a token"
                        ))
                    })?;
                Ok(format!("Bearer {token}"))
            }
        }
    }

    /// A 2xx answer, or the error its status means.
    fn check(&self, resp: Response<Body>, what: &str) -> Result<Response<Body>> {
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(resp);
        }
        let message = registry_message(resp);
        match status {
            401 | 403 => Err(Error::Unauthorized {
                registry: self.registry.clone(),
                what: what.to_string(),
                why: if self.credentials.is_some() {
                    format!(
                        "HTTP {status}, with the credentials from {}{message}",
                        self.credentials
                            .as_ref()
                            .map(|c| c.source.as_str())
                            .unwrap_or("")
                    )
                } else {
                    format!("HTTP {status}, and no credentials are stored for it{message}")
                },
            }),
            404 => Err(Error::NotFound {
                registry: self.registry.clone(),
                what: what.to_string(),
            }),
            _ => Err(Error::Protocol {
                registry: self.registry.clone(),
                what: format!("answered HTTP {status} to {what}{message}"),
            }),
        }
    }

    fn unreachable(&self, e: ureq::Error) -> Error {
        let why = match e {
            ureq::Error::ConnectionFailed => "the connection was refused".to_string(),
            ureq::Error::HostNotFound => "its host name does not resolve".to_string(),
            ureq::Error::Timeout(t) => format!("it did not answer in time ({t})"),
            ureq::Error::Io(io) => io.to_string(),
            other => other.to_string(),
        };
        Error::Unreachable {
            registry: self.registry.clone(),
            why,
        }
    }
}

fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

/// `: <the registry's first error message>` from a distribution error body, when there is one.
fn registry_message(resp: Response<Body>) -> String {
    let body = resp
        .into_body()
        .with_config()
        .limit(64 << 10)
        .read_to_vec()
        .unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    json.get("errors")
        .and_then(|e| e.get(0))
        .and_then(|e| e.get("message"))
        .and_then(|m| m.as_str())
        .map(|m| format!(" ({m})"))
        .unwrap_or_default()
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A reader that hashes what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
        }
    }

    fn digest(self) -> String {
        format!("sha256:{}", hex(&self.hasher.finalize()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_scopes() {
        assert_eq!(
            super::encode("repository:lab/p:pull,push"),
            "repository%3Alab%2Fp%3Apull%2Cpush"
        );
    }
}
