//! `signature.json`, as Kerblam! 1.x writes it.
//!
//! Kerblam! 1.x's `package --sign` writes `{"name": <git user.name>, "email": <git user.email>,
//! "on": <UTC time>}` (compact JSON, in that key order), where `on` is chrono's `Utc::now()`
//! display form, e.g. `2024-05-01 10:00:00.123456789 UTC`. It is an authorship note, not a
//! cryptographic signature. kerblam writes the same object, with `on` derived from
//! `SOURCE_DATE_EPOCH` when set so that signed archives stay reproducible.

use std::process::Command;

use crate::error::{Error, Result};

/// The content of `signature.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The packager's name (`git config user.name`).
    pub name: String,
    /// The packager's email (`git config user.email`).
    pub email: String,
    /// When the package was made, `YYYY-MM-DD HH:MM:SS UTC`.
    pub on: String,
}

impl Signature {
    /// A signature from git's `user.name` and `user.email`, dated `unix_secs`.
    pub fn from_git(unix_secs: u64) -> Result<Signature> {
        Ok(Signature {
            name: git_config("user.name")?,
            email: git_config("user.email")?,
            on: utc_string(unix_secs),
        })
    }

    /// The JSON bytes, byte-compatible with Kerblam! 1.x.
    pub fn to_json(&self) -> Vec<u8> {
        format!(
            "{{\"name\":{},\"email\":{},\"on\":{}}}",
            json_str(&self.name),
            json_str(&self.email),
            json_str(&self.on)
        )
        .into_bytes()
    }
}

fn git_config(key: &str) -> Result<String> {
    let out = Command::new("git")
        .args(["config", key])
        .output()
        .map_err(|e| {
            Error::input(format!(
                "--sign needs git to read {key}, but git could not be run: {e}"
            ))
        })?;
    let value = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || value.is_empty() {
        return Err(Error::input(format!(
            "--sign needs `git config {key}`, which is not set (set it with `git config --global {key} ...`)"
        )));
    }
    Ok(value)
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `YYYY-MM-DD HH:MM:SS UTC` for seconds since the epoch (chrono's display form without fraction).
pub fn utc_string(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_kerblam_1() {
        assert_eq!(utc_string(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_string(1_700_000_000), "2023-11-14 22:13:20 UTC");
        let s = Signature {
            name: "A \"B\"".into(),
            email: "a@b".into(),
            on: utc_string(0),
        };
        assert_eq!(
            String::from_utf8(s.to_json()).unwrap(),
            r#"{"name":"A \"B\"","email":"a@b","on":"1970-01-01 00:00:00 UTC"}"#
        );
    }
}
