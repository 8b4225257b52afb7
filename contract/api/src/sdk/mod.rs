//! The Rust SDK for backend authors: implement [`Backend`], then call [`export_backend!`](crate::export_backend)
//! once. The macro emits the five C symbols and wraps each in `catch_unwind`, so a panic becomes
//! status [`Status::Panic`](crate::Status::Panic) with an error message instead of unwinding into the host.
//!
//! ```no_run
//! use kerblam_backend_api::{Backend, Describe, ExecuteRequest, ExecuteResult, ErrorMessage, Host};
//!
//! struct Mine;
//! impl Backend for Mine {
//!     fn describe(&self) -> Describe { kerblam_backend_api::sdk::describe("mine", env!("CARGO_PKG_VERSION"), Default::default()) }
//!     fn execute(&self, req: &ExecuteRequest, host: &Host<'_>) -> Result<ExecuteResult, ErrorMessage> { todo!() }
//! }
//! kerblam_backend_api::export_backend!(Mine);
//! ```

mod host;
pub mod progress;
#[doc(hidden)]
pub mod rt;

pub use host::Host;
pub use progress::Reporter;

use kerblam_plan::BackendPlan;

use crate::{
    AbiVersion, Action, Capabilities, DESCRIBE_TAG, Describe, ErrorMessage, ExecuteRequest,
    ExecuteResult, PlanRequest, SchemaRange,
};

/// The SDK's identification, put into [`Describe::sdk`].
pub const SDK_ID: &str = concat!("kerblam-backend-api ", env!("CARGO_PKG_VERSION"));

/// The environment variable that enables the conformance kit's panic hook
/// ([`crate::ExecuteOptions::conformance_panic`]); it must be `1`.
pub const CONFORMANCE_ENV: &str = "KERBLAM_CONFORMANCE";

/// A backend, as its author writes it.
///
/// The SDK calls [`Backend::describe`] for `kerblam_backend_describe`, [`Backend::plan`] for
/// `kerblam_backend_plan` and, for `kerblam_backend_execute`, parses and checks the request (tag, plan schema range, cancellation,
/// and every capability the request needs, see [`crate::missing_capabilities`]: a backend never
/// sees a request its describe does not claim), runs [`Backend::preflight`], then calls
/// [`Backend::execute`]. Methods may be called from any thread; `execute` concurrently only when
/// `capabilities.reentrant` is true.
pub trait Backend: Send + Sync + 'static {
    /// Describe the backend. The SDK fills in the `describe` tag, `abi` and `sdk` fields.
    fn describe(&self) -> Describe;

    /// The backend's part of the plan in `request` (whose own `backend` part holds only the
    /// name): the artifacts `execute` will write, where, and of which kind; the checks it needs
    /// beyond the plan's; the files it renders; how to use the result. The SDK fills in the name.
    /// Must be deterministic and write nothing. The default is a backend that writes nothing of
    /// its own (a `run`-only backend, say).
    fn plan(&self, _request: &PlanRequest) -> Result<BackendPlan, ErrorMessage> {
        Ok(BackendPlan::default())
    }

    /// Check the plan's preflights before any work. The default runs them all with
    /// [`crate::preflight::check_all`] before `package`, and none before `run`: a package plan's
    /// checks (its recipe exists, room for the replay archive) are about packaging, and a replay
    /// runs where the project's files are not.
    fn preflight(&self, request: &ExecuteRequest, _host: &Host<'_>) -> Result<(), ErrorMessage> {
        match request.action {
            Action::Package => crate::preflight::check_all(&request.plan, &request.paths),
            Action::Run => Ok(()),
        }
    }

    /// Carry out the request. Poll [`Host::is_cancelled`] during long work and return
    /// [`ErrorMessage::cancelled`] when it says so.
    fn execute(
        &self,
        request: &ExecuteRequest,
        host: &Host<'_>,
    ) -> Result<ExecuteResult, ErrorMessage>;
}

/// A [`Describe`] for this SDK: the given name, version and capabilities; the plan schema this
/// crate writes (`v2..v2`).
pub fn describe(name: &str, version: &str, capabilities: Capabilities) -> Describe {
    Describe {
        describe: DESCRIBE_TAG.to_string(),
        name: name.to_string(),
        version: version.to_string(),
        description: None,
        abi: AbiVersion::CURRENT,
        plan_schema: SchemaRange {
            min: kerblam_plan::PLAN_SCHEMA_MAJOR,
            max: kerblam_plan::PLAN_SCHEMA_MAJOR,
        },
        sdk: Some(SDK_ID.to_string()),
        capabilities,
        engine: None,
    }
}

/// Export a [`Backend`] as the five C symbols of the ABI. Call it once, at the crate root of a
/// `cdylib`, with an expression that builds the backend (evaluated once, on first use).
#[macro_export]
macro_rules! export_backend {
    ($ctor:expr) => {
        #[doc(hidden)]
        fn __kerblam_backend_instance() -> &'static dyn $crate::Backend {
            static INSTANCE: ::std::sync::OnceLock<::std::boxed::Box<dyn $crate::Backend>> =
                ::std::sync::OnceLock::new();
            &**INSTANCE.get_or_init(|| ::std::boxed::Box::new($ctor))
        }

        /// The ABI version this plugin was built for.
        #[unsafe(no_mangle)]
        pub extern "C" fn kerblam_backend_abi_version() -> u32 {
            $crate::ABI_VERSION
        }

        /// Describe the backend (JSON in `out`).
        ///
        /// # Safety
        /// See the kerblam backend ABI specification.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn kerblam_backend_describe(
            hello: *const u8,
            hello_len: usize,
            out: *mut $crate::Buf,
        ) -> i32 {
            unsafe { $crate::sdk::rt::describe(__kerblam_backend_instance, hello, hello_len, out) }
        }

        /// Execute a request (JSON in `out`).
        ///
        /// # Safety
        /// See the kerblam backend ABI specification.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn kerblam_backend_execute(
            request: *const u8,
            request_len: usize,
            host: *const $crate::HostV1,
            out: *mut $crate::Buf,
        ) -> i32 {
            unsafe {
                $crate::sdk::rt::execute(
                    __kerblam_backend_instance,
                    request,
                    request_len,
                    host,
                    out,
                )
            }
        }

        /// The backend's part of a plan (JSON in `out`).
        ///
        /// # Safety
        /// See the kerblam backend ABI specification.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn kerblam_backend_plan(
            request: *const u8,
            request_len: usize,
            out: *mut $crate::Buf,
        ) -> i32 {
            unsafe { $crate::sdk::rt::plan(__kerblam_backend_instance, request, request_len, out) }
        }

        /// Free a buffer this plugin returned.
        ///
        /// # Safety
        /// `buf` must be a buffer this plugin returned, freed once.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn kerblam_backend_free(buf: $crate::Buf) {
            unsafe { $crate::sdk::rt::free(buf) }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExecuteRequest, Paths};
    use kerblam_plan::{PackagePlan, Preflight};

    struct Defaults;

    impl Backend for Defaults {
        fn describe(&self) -> Describe {
            describe("defaults", "0", Capabilities::default())
        }
        fn execute(&self, _: &ExecuteRequest, _: &Host<'_>) -> Result<ExecuteResult, ErrorMessage> {
            unreachable!("only the default preflight is tested")
        }
    }

    /// A request for `action` of a plan whose one check never holds.
    fn request(action: Action) -> ExecuteRequest {
        let mut plan: PackagePlan =
            serde_json::from_str(include_str!("../../../conformance/golden/minimal.json")).unwrap();
        plan.preflight = vec![Preflight::FileExists {
            path: "src/dockerfiles/missing.dockerfile".into(),
        }];
        let paths = Paths {
            root: "/nonexistent/project".into(),
            kerblam: "/bin/true".into(),
            output_dir: "/nonexistent/project".into(),
            temp_dir: "/tmp".into(),
        };
        ExecuteRequest::new(action, plan, paths)
    }

    #[test]
    fn the_default_preflight_checks_a_package_and_not_a_run() {
        let e = Defaults
            .preflight(&request(Action::Package), &Host::none())
            .unwrap_err();
        assert!(e.message.starts_with("preflight failed"), "{e:?}");
        assert!(e.message.contains("missing.dockerfile"), "{e:?}");
        assert_eq!(
            Defaults.preflight(&request(Action::Run), &Host::none()),
            Ok(())
        );
    }
}
