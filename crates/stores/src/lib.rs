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
//! | `sql` (default) | [`sql::SqlStore`] | a table per kind in SQLite, PostgreSQL or MySQL/MariaDB |
//! | `csv` (default) | [`csv::CsvStore`] | a CSV file with a header row, one record per row |
//! | `dav` (default) | [`dav::DavStore`] | CardDAV address books and CalDAV calendars on a server |

#[cfg(feature = "vdir")]
pub mod vdir;

#[cfg(feature = "dav")]
pub mod dav;

#[cfg(any(feature = "vdir", feature = "dav"))]
mod native;

#[cfg(any(feature = "vdir", feature = "csv"))]
mod blocking;

#[cfg(feature = "sql")]
pub mod sql;

#[cfg(feature = "csv")]
pub mod csv;
