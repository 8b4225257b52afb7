//! The `SHA256SUMS` member: `sha256sum`-format lines for every member and every data entry.

use crate::deterministic_tar::hex;
use crate::error::{Error, Result};

/// The separator between a member name and an entry path inside it: `data.tar.zst:data/in/x.csv`.
pub const INNER_SEP: char = ':';

/// Parsed `SHA256SUMS` lines, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sums {
    /// `(name, sha256)` pairs; `name` is a member name or `member:entry`.
    pub lines: Vec<(String, [u8; 32])>,
}

impl Sums {
    /// Adds a line.
    pub fn push(&mut self, name: impl Into<String>, sha: [u8; 32]) {
        self.lines.push((name.into(), sha));
    }

    /// The text, one `<hex>  <name>\n` line each.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (name, sha) in &self.lines {
            s.push_str(&hex(sha));
            s.push_str("  ");
            s.push_str(name);
            s.push('\n');
        }
        s
    }

    /// Parses `SHA256SUMS` text. Each line must be 64 lowercase hex digits, two spaces (or space and
    /// `*`), and a name; no name may appear twice. Errors give the line number.
    pub fn parse(text: &[u8]) -> Result<Sums> {
        let text = std::str::from_utf8(text)
            .map_err(|_| Error::invalid("SHA256SUMS is not valid UTF-8"))?;
        let mut sums = Sums::default();
        let mut seen = std::collections::HashSet::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            if line.is_empty() {
                continue;
            }
            let bad = || Error::invalid(format!("SHA256SUMS:{n}: malformed line {line:?}"));
            if line.len() < 67 || !line.is_char_boundary(64) {
                return Err(bad());
            }
            let (h, rest) = line.split_at(64);
            let name = rest
                .strip_prefix("  ")
                .or_else(|| rest.strip_prefix(" *"))
                .ok_or_else(bad)?;
            let sha = parse_hex(h).ok_or_else(bad)?;
            if name.is_empty() {
                return Err(bad());
            }
            if !seen.insert(name.to_string()) {
                return Err(Error::invalid(format!(
                    "SHA256SUMS:{n}: {name:?} is listed twice"
                )));
            }
            sums.lines.push((name.to_string(), sha));
        }
        Ok(sums)
    }

    /// The digest listed for `name`.
    pub fn get(&self, name: &str) -> Option<&[u8; 32]> {
        self.lines.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }
}

fn parse_hex(h: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let b = h.as_bytes();
    for (i, o) in out.iter_mut().enumerate() {
        let hi = (b[2 * i] as char).to_digit(16)?;
        let lo = (b[2 * i + 1] as char).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let mut s = Sums::default();
        s.push("name", [1; 32]);
        s.push("data.tar.zst:data/in/a b.txt", [0xab; 32]);
        let text = s.render();
        assert_eq!(Sums::parse(text.as_bytes()).unwrap(), s);
        let dup = format!("{text}{}", text.lines().next().unwrap());
        assert!(
            Sums::parse(dup.as_bytes())
                .unwrap_err()
                .message()
                .contains("SHA256SUMS:3")
        );
        assert!(
            Sums::parse(b"xyz  name\n")
                .unwrap_err()
                .message()
                .contains("SHA256SUMS:1")
        );
    }
}
