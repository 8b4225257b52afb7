//! `--push` without an engine: the OCI image archive, pushed through the registry API blob by
//! blob from its temporary file before it is committed (a failed push leaves no file), with the
//! credentials the user keeps for `docker login` / `podman login`.

use kerblam_backend_api::{ErrorMessage, ExecuteRequest, Host};
use kerblam_registry::plugin::error_message;
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
    let target = Reference::parse(target).map_err(error_message)?;
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
    let client = Client::new(&target).map_err(error_message)?;
    let pushed =
        kerblam_registry::push_oci_archive(&client, oci.reader()?, oci.final_path(), &target)
            .map_err(error_message)?;
    Ok(Some(pushed.reference.to_string()))
}
