//! Regular expressions the JSON Schemas carry, so that editors flag what they can without kerblam.
//!
//! Each one rejects only what kerblam's own rules reject too (a schema that refused a manifest
//! kerblam accepts would mark good files as wrong): it is a first line, and the located checks of
//! `manifest::rules` and `freeze::rules` remain the judge. They are written without look-around,
//! which some editors' regex engines (taplo's among them) do not have.
//!
//! kerblam itself leaves what these say to its rules, whose messages say why and what to write
//! instead: the schema check skips their failures ([`left_to_rules`]).

/// A relative path that is not empty and does not start by leaving its directory: not absolute
/// (`/x`, `\x`) and not starting with a `..` component (`..`, `../x`). A deeper climb
/// (`a/../../x`) needs counting, which kerblam does.
pub const RELATIVE_PATH: &str = r"^([^/\\.]|\.$|\.[^.]|\.\.[^/\\])";

/// A relative path, or `_` (a profile's "absent under this profile").
pub const RELATIVE_PATH_OR_ABSENT: &str = r"^(_$|[^/\\.]|\.$|\.[^.]|\.\.[^/\\])";

/// A remote file's URL: `http`, `https`, `ftp` or `file` (in any case, after the spaces a URL
/// parser trims), or `_` for a file that cannot be fetched.
pub const REMOTE_URL: &str =
    r"^(_$|[\x00-\x20]*([hH][tT][tT][pP][sS]?|[fF][tT][pP]|[fF][iI][lL][eE]):)";

/// A `..` component anywhere in a `/`-separated path.
pub const DOT_DOT_COMPONENT: &str = r"(^|/)\.\.(/|$)";

/// Something other than white space.
pub const NOT_BLANK: &str = r"\S";

/// A freeze's image name: letters, digits, `.`, `_`, `+` and `-`.
pub const FREEZE_NAME: &str = r"^[A-Za-z0-9._+-]+$";

/// A freeze's version suffix: letters, digits, `.`, `_` and `-`.
pub const FREEZE_VERSION: &str = r"^[A-Za-z0-9._-]+$";

/// Label keys kerblam sets itself: `dev.kerblam.*`.
pub const KERBLAM_LABEL: &str = r"^dev\.kerblam\.";

/// The patterns above, whose failures the schema check leaves to the rules.
const LEFT_TO_RULES: [&str; 8] = [
    RELATIVE_PATH,
    RELATIVE_PATH_OR_ABSENT,
    REMOTE_URL,
    DOT_DOT_COMPONENT,
    NOT_BLANK,
    FREEZE_NAME,
    FREEZE_VERSION,
    KERBLAM_LABEL,
];

/// Whether a failure of the schema keyword `kind` (with `pattern`, for `pattern`) is one that only
/// editors need, kerblam's rules judging the same value with a better message: the patterns above,
/// and the `minLength`, `propertyNames` and `not` keywords, which the schemas use only with them.
pub fn left_to_rules(kind: &str, pattern: Option<&str>) -> bool {
    match kind {
        "minLength" | "propertyNames" | "not" => true,
        "pattern" => pattern.is_some_and(|p| LEFT_TO_RULES.contains(&p)),
        _ => false,
    }
}
