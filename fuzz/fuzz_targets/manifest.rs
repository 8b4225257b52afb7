//! `kerblam validate` on a kerblam.toml: UTF-8 check, TOML syntax, schema, the compiler's rules, and
//! the miette rendering of every located finding.
#![no_main]

use kerblam_compiler::{CheckOptions, SourceFile, manifest};
use kerblam_fuzz::{check_findings, has_error, has_unknown_key};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let source = match SourceFile::from_bytes("kerblam.toml", data.to_vec()) {
        Ok(s) => s,
        Err(not_utf8) => return check_findings(&[not_utf8]),
    };
    let mut allow_unknown = false;
    loop {
        let (m, findings) = manifest::check(source.clone(), CheckOptions { allow_unknown });
        check_findings(&findings);
        assert_eq!(m.is_some(), !has_error(&findings), "{findings:#?}");
        if allow_unknown || !has_unknown_key(&findings) {
            break;
        }
        allow_unknown = true;
    }
});
