//! `--push` without an engine: the OCI image archive, pushed through the registry API blob by
//! blob from its temporary file before it is committed (a failed push leaves no file), with the
//! credentials the user keeps for `docker login` / `podman login`.

use kerblam_backend_api::{ErrorMessage, ExecuteRequest, Host};
use kerblam_registry::{Client, Reference};

use crate::pending::Pending;

/// Pushes the finished OCI archive `oci` to `options.push`, when asked: the digest-pinned
/// reference the registry gave it.
pub fn push(
    req: &ExecuteRequest,
    oci: Option<&mut Pending>,
    host: &Host<'_>,
) -> Result<Option<String>, ErrorMessage> {
    let Some(target) = &req.options.push else {
        return Ok(None);
    };
    let target =
        Reference::parse(target).map_err(|e| ErrorMessage::invalid_input(e.with_help()))?;
    let Some(oci) = oci else {
        return Err(ErrorMessage::invalid_input(
            "--push needs the OCI image archive, and this plan writes none",
        ));
    };
    host.check_cancelled()?;
    host.info(&format!(
        "pushing {} to {target}",
        oci.final_path().display()
    ));
    let registry = |e: kerblam_registry::Error| {
        let m = if e.is_user_error() {
            ErrorMessage::invalid_input(e.to_string())
        } else {
            ErrorMessage::backend(e.to_string())
        };
        use miette::Diagnostic;
        match e.help() {
            Some(h) => m.with_help(h.to_string()),
            None => m,
        }
    };
    let client = Client::new(&target).map_err(registry)?;
    let pushed =
        kerblam_registry::push_oci_archive(&client, oci.reader()?, oci.final_path(), &target)
            .map_err(registry)?;
    Ok(Some(pushed.reference.to_string()))
}
