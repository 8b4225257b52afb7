//! The plugin message decoder: the bytes a plugin returns, decoded as the host decodes them — a
//! describe reply at load time (status 0, or a failure with an error message) and an execute reply
//! (status 0: an execute result; another known status: an error message; an unknown status).
//! Every outcome must be a value or a clear error, and the errors must print.
#![no_main]

use std::path::Path;

use kerblam_backend_api::host::{RawReply, decode_describe, interpret_reply};
use kerblam_backend_api::{ABI_MAJOR, ABI_MINOR, Status};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let abi = (ABI_MAJOR << 16) | ABI_MINOR;
    let reply = |code: i32| RawReply {
        code,
        bytes: data.to_vec(),
        null: data.is_empty(),
    };
    for code in [Status::Ok.code(), Status::BackendError.code()] {
        match decode_describe(&reply(code), abi) {
            Ok((describe, json)) => {
                assert_eq!(code, Status::Ok.code());
                assert!(describe.problems().is_empty());
                assert!(json.is_object());
            }
            Err(why) => assert!(!why.is_empty()),
        }
    }
    for code in [0, 1, 2, 3, 4, 5, -1, 99] {
        match interpret_reply("fuzz", Path::new("/fuzz.so"), &reply(code)) {
            Ok(result) => {
                assert_eq!(code, Status::Ok.code());
                let _ = serde_json::to_string(&result).expect("results serialize");
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                let _ = e.status();
            }
        }
    }
});
