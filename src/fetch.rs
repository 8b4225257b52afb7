//! The downloader behind `kerblam data fetch`.
//!
//! Each remote file is fetched into a hidden temporary name in its target's directory
//! (`.NAME.kerblam-part-PID`) and renamed to the target only once complete and synced, so a failed or
//! interrupted download never leaves a truncated file under the final name. The temporary file is
//! registered as a [`signals::Cleanup`]: removed on failure, and by the signal thread on Ctrl-C (the
//! download runs in an [`signals::exit_on_signal`] scope, since a read may block for long). A body
//! shorter than its `Content-Length` is a failure, even if the connection closed cleanly.
//!
//! Supported URLs: `http://`, `https://` (rustls with the Mozilla roots) and `file://`.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::signals::{self, Cleanup};

/// One remote file to fetch.
#[derive(Debug, Clone)]
pub struct Download {
    /// The URL, as written in kerblam.toml.
    pub url: String,
    /// The absolute target path.
    pub target: PathBuf,
    /// The target as shown to the user (relative to the project root).
    pub shown: String,
}

/// What happened to a download that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Downloaded, this many bytes.
    Fetched(u64),
    /// The target already existed; nothing was done.
    Present,
}

/// Why a download failed (the message names the URL and the target).
#[derive(Debug)]
pub struct FetchError {
    /// The download.
    pub url: String,
    /// The target as shown.
    pub shown: String,
    /// What went wrong.
    pub reason: String,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot fetch {} into {}: {}",
            self.url, self.shown, self.reason
        )
    }
}

/// An HTTP agent with kerblam's settings: status codes are handled by the caller, connecting and
/// waiting for a response head time out, a stalled body times out after 5 minutes without data.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .timeout_per_read(Some(Duration::from_secs(300)))
        .user_agent(format!("kerblam/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// The body of `url` (`http://`, `https://` or `file://`) as UTF-8 text, for small files such as
/// the gitignore templates of `kerblam ignore`. The error says why, naming nothing but the reason.
pub fn text(agent: &ureq::Agent, url: &str) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let bytes = match parsed.scheme() {
        "file" => {
            let path = parsed
                .to_file_path()
                .map_err(|_| "not a local file path".to_string())?;
            std::fs::read(&path).map_err(|e| e.to_string())?
        }
        "http" | "https" => {
            let resp = agent
                .get(url)
                .call()
                .map_err(|e| describe_http_error(&parsed, e))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(format!("the server answered HTTP {}", status.as_u16()));
            }
            let mut body = Vec::new();
            resp.into_body()
                .into_reader()
                .take(16 << 20)
                .read_to_end(&mut body)
                .map_err(|e| e.to_string())?;
            body
        }
        other => return Err(format!("{other}:// URLs are not supported")),
    };
    String::from_utf8(bytes).map_err(|_| "the answer is not UTF-8 text".to_string())
}

/// Fetch `d` unless its target exists, drawing a progress bar when `progress` is true.
pub fn fetch(agent: &ureq::Agent, d: &Download, progress: bool) -> Result<Outcome, FetchError> {
    let fail = |reason: String| FetchError {
        url: d.url.clone(),
        shown: d.shown.clone(),
        reason,
    };
    if std::fs::symlink_metadata(&d.target).is_ok() {
        return Ok(Outcome::Present);
    }
    let url = url::Url::parse(&d.url).map_err(|e| fail(format!("not a URL: {e}")))?;
    let (mut reader, size) = open(agent, d, &url).map_err(fail)?;

    let dir = d.target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    let name = d
        .target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".into());
    let tmp = dir.join(format!(".{name}.kerblam-part-{}", std::process::id()));
    let tmp_for_cleanup = tmp.clone();
    let cleanup = Cleanup::new(move || {
        let _ = std::fs::remove_file(&tmp_for_cleanup);
    });
    let mut file = std::fs::File::create(&tmp)
        .map_err(|e| fail(format!("cannot create {}: {e}", tmp.display())))?;

    let bar = progress.then(|| new_bar(size, &d.shown));
    let copied = copy(&mut reader, &mut file, bar.as_ref(), size, &tmp);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let written = copied.map_err(fail)?;
    drop(file);
    std::fs::rename(&tmp, &d.target).map_err(|e| {
        fail(format!(
            "cannot rename {} to {}: {e}",
            tmp.display(),
            d.shown
        ))
    })?;
    cleanup.disarm();
    Ok(Outcome::Fetched(written))
}

/// The body of `d`'s URL (`file://`, `http://` or `https://`) and its size when known; the error
/// says why not.
fn open(
    agent: &ureq::Agent,
    d: &Download,
    url: &url::Url,
) -> Result<(Box<dyn Read>, Option<u64>), String> {
    Ok(match url.scheme() {
        "file" => {
            let path = url
                .to_file_path()
                .map_err(|_| String::from("not a local file path"))?;
            let file = std::fs::File::open(&path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            let size = file
                .metadata()
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len());
            (Box::new(file), size)
        }
        "http" | "https" => {
            let resp = agent
                .get(d.url.as_str())
                .call()
                .map_err(|e| describe_http_error(url, e))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(format!(
                    "the server answered HTTP {}{}",
                    status.as_u16(),
                    status
                        .canonical_reason()
                        .map(|r| format!(" {r}"))
                        .unwrap_or_default()
                ));
            }
            let body = resp.into_body();
            let size = body.content_length();
            (Box::new(body.into_reader()), size)
        }
        other => {
            return Err(format!(
                "{other}:// URLs are not supported; download the file by hand to {}",
                d.shown
            ));
        }
    })
}

/// Copy the body into the temporary file, checking for signals and for a short body.
fn copy(
    reader: &mut dyn Read,
    file: &mut std::fs::File,
    bar: Option<&ProgressBar>,
    size: Option<u64>,
    tmp: &Path,
) -> Result<u64, String> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut written: u64 = 0;
    let of = size.map(|s| format!(" of {s}")).unwrap_or_default();
    loop {
        if let Some(sig) = signals::interrupted() {
            return Err(format!("interrupted by {}", signals::signal_name(sig)));
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("the transfer broke after {written}{of} bytes: {e}")),
        };
        file.write_all(&buf[..n])
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        written += n as u64;
        if let Some(b) = bar {
            b.set_position(written);
        }
    }
    if let Some(expected) = size {
        if written != expected {
            return Err(format!(
                "the transfer ended after {written} of {expected} bytes"
            ));
        }
    }
    file.sync_all()
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    Ok(written)
}

fn new_bar(size: Option<u64>, shown: &str) -> ProgressBar {
    let bar = match size {
        Some(s) => ProgressBar::new(s).with_style(
            ProgressStyle::with_template(
                "{msg} {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{msg} {spinner} {binary_bytes} {binary_bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_message(format!("fetching {shown}"));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A readable reason for a ureq error, naming the host for connection problems.
fn describe_http_error(url: &url::Url, e: ureq::Error) -> String {
    let host = match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => url.to_string(),
    };
    match e {
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                format!("cannot connect to {host}: connection refused")
            }
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof => {
                format!("{host} closed the connection before answering ({io})")
            }
            _ => format!("cannot reach {host}: {io}"),
        },
        ureq::Error::HostNotFound => format!("cannot resolve the host name in {host}"),
        ureq::Error::Timeout(t) => format!("{host} did not answer in time ({t})"),
        ureq::Error::ConnectionFailed => format!("cannot connect to {host}"),
        other => format!("request to {host} failed: {other}"),
    }
}
