//! `kerblam validate` on a freeze spec, and the round trip of a valid spec through
//! `FreezeSpec::to_toml` (what `kerblam freeze --write-spec` writes must validate to the same spec).
#![no_main]

use kerblam_compiler::{CheckOptions, SourceFile, freeze};
use kerblam_fuzz::{check_findings, has_error, has_unknown_key};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let source = match SourceFile::from_bytes("freeze.toml", data.to_vec()) {
        Ok(s) => s,
        Err(not_utf8) => return check_findings(&[not_utf8]),
    };
    let mut allow_unknown = false;
    loop {
        let opts = CheckOptions { allow_unknown };
        let (spec, findings) = freeze::check(source.clone(), opts);
        check_findings(&findings);
        assert_eq!(spec.is_some(), !has_error(&findings), "{findings:#?}");
        if let Some(spec) = spec {
            let written = spec.to_toml();
            let (again, again_findings) =
                freeze::check(SourceFile::new("written.toml", written.clone()), opts);
            assert_eq!(
                again.as_ref(),
                Some(&spec),
                "{written}\n{again_findings:#?}"
            );
        }
        if allow_unknown || !has_unknown_key(&findings) {
            break;
        }
        allow_unknown = true;
    }
});
