//! Checks shared by the fuzz targets in `fuzz_targets/`.

use kerblam_compiler::diag::render_plain;
use kerblam_compiler::{Finding, Level};

/// Every finding must be renderable by miette and point at text that exists: a span inside the
/// file and on character boundaries (what `kerblam validate` underlines). Also exercises the
/// `file:line:col` location and the `--json` form.
pub fn check_findings(findings: &[Finding]) {
    for f in findings {
        let text = &f.source.text;
        if let Some(span) = &f.span {
            assert!(
                span.start <= span.end && span.end <= text.len(),
                "{}: span {span:?} is outside the file of {} bytes: {}",
                f.code,
                text.len(),
                f.message
            );
            assert!(
                text.is_char_boundary(span.start) && text.is_char_boundary(span.end),
                "{}: span {span:?} splits a character: {}",
                f.code,
                f.message
            );
        }
        let rendered = render_plain(f);
        assert!(
            rendered.contains(f.code),
            "{}: the rendered report does not name the code:\n{rendered}",
            f.code
        );
        let _ = f.location();
        let _ = f.to_json();
    }
}

/// True when some finding is an error.
pub fn has_error(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.level == Level::Error)
}

/// True when some finding is about an unknown key (then the target also tries `--allow-unknown`).
pub fn has_unknown_key(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.code == "kerblam::unknown-key")
}

pub mod craft;
