//! The app connectors: one folder per [`Store`](tandem_store::Store)
//! implementation, each switched on by one cargo feature of the same name.
//!
//! Every store here passes the shared conformance suite in
//! [`tandem_store::conformance`]; a store's own `tests.rs` only adds what is
//! particular to it (file naming, native text kept as is, and so on).
//!
//! | feature | store | what it reads |
//! | --- | --- | --- |
//! | `vdir` (default) | [`vdir::VdirStore`] | folders of `.vcf` / `.ics` files, one item per file |

#[cfg(feature = "vdir")]
pub mod vdir;
