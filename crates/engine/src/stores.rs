//! The store registry: turns a `[stores.NAME]` table into a live
//! [`Store`]. Adding a store type is one arm here plus its folder in
//! `tandem-stores`.

use crate::config::StoreConfig;
use tandem_formats::Format;
use tandem_record::Kind;
use tandem_store::Store;

/// Opens the store `config` describes, for records of `kind`.
pub fn open(config: &StoreConfig, kind: Kind) -> Result<Box<dyn Store>, String> {
    let keys = || config.table.clone();
    match config.store_type.as_str() {
        "vdir" => {
            let vdir: tandem_stores::vdir::VdirConfig = keys()
                .try_into()
                .map_err(|e: toml::de::Error| e.message().to_string())?;
            let store = tandem_stores::vdir::VdirStore::new(vdir, Format::for_kind(kind))
                .map_err(|e| e.to_string())?;
            Ok(Box::new(store))
        }
        "sql" => {
            let sql: tandem_stores::sql::SqlConfig = keys()
                .try_into()
                .map_err(|e: toml::de::Error| e.message().to_string())?;
            let store = tandem_stores::sql::SqlStore::new(sql, kind).map_err(|e| e.to_string())?;
            Ok(Box::new(store))
        }
        "csv" => {
            let csv: tandem_stores::csv::CsvConfig = keys()
                .try_into()
                .map_err(|e: toml::de::Error| e.message().to_string())?;
            let store = tandem_stores::csv::CsvStore::new(csv, kind).map_err(|e| e.to_string())?;
            Ok(Box::new(store))
        }
        "carddav" | "caldav" => {
            use tandem_stores::dav::{DavConfig, DavStore, Protocol};
            let dav: DavConfig = keys()
                .try_into()
                .map_err(|e: toml::de::Error| e.message().to_string())?;
            let protocol = if config.store_type == "carddav" {
                Protocol::CardDav
            } else {
                Protocol::CalDav
            };
            let store = DavStore::new(dav, protocol, kind).map_err(|e| e.to_string())?;
            Ok(Box::new(store))
        }
        other => Err(format!(
            "unknown store type `{other}` (known: vdir, sql, csv, carddav, caldav)"
        )),
    }
}
