use std::path::PathBuf;

use serde::Serialize;

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "kebab-case")]
pub enum Outcome {
    /// It held.
    Pass,
    /// It did not; why.
    Fail(String),
    /// It did not apply; why.
    Skip(String),
}

/// One check of the kit.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The check's name, e.g. `invalid-input` or `golden/minimal`.
    pub name: String,
    /// What happened.
    pub outcome: Outcome,
    /// What was observed, when there is something worth saying on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The kit's findings for one plugin.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The library checked.
    pub path: PathBuf,
    /// The backend name, when it loaded.
    pub backend: Option<String>,
    /// The backend version, when it loaded.
    pub version: Option<String>,
    /// The checks in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// True when no check failed.
    pub fn passed(&self) -> bool {
        !self
            .checks
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Fail(_)))
    }

    /// The failed checks.
    pub fn failures(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
            .collect()
    }

    /// The check named `name`.
    pub fn get(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    pub(crate) fn push(
        &mut self,
        name: impl Into<String>,
        outcome: Outcome,
        detail: Option<String>,
    ) {
        self.checks.push(Check {
            name: name.into(),
            outcome,
            detail,
        });
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.backend, &self.version) {
            (Some(n), Some(v)) => writeln!(f, "{} {} ({})", n, v, self.path.display())?,
            _ => writeln!(f, "{}", self.path.display())?,
        }
        for c in &self.checks {
            let (tag, why) = match &c.outcome {
                Outcome::Pass => ("pass", c.detail.clone()),
                Outcome::Fail(r) => ("FAIL", Some(r.clone())),
                Outcome::Skip(r) => ("skip", Some(r.clone())),
            };
            match why {
                Some(w) => writeln!(f, "  {tag:4}  {}: {w}", c.name)?,
                None => writeln!(f, "  {tag:4}  {}", c.name)?,
            }
        }
        let failed = self.failures().len();
        if failed == 0 {
            write!(f, "conformance: passed")
        } else {
            write!(f, "conformance: {failed} check(s) failed")
        }
    }
}
