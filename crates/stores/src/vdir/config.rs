//! The user's settings for one vdir store, as read from the pair's config.

use serde::Deserialize;
use std::path::PathBuf;

/// A vdir: a folder of item files, one contact, event or task per file, as
/// kept by vdirsyncer, khard and khal.
///
/// ```toml
/// path = "~/.local/share/contacts/personal"
/// extension = "vcf"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VdirConfig {
    /// The folder holding the item files. Its files are the root collection;
    /// each subfolder is a further collection named by the folder's name.
    pub path: PathBuf,
    /// The extension of item files, without the dot. Files with another
    /// extension are ignored. Defaults to `vcf` for contacts and `ics` for
    /// events and tasks.
    #[serde(default)]
    pub extension: Option<String>,
}
