//! What every `tandem.toml` text must satisfy, shared by the `config_toml`
//! fuzz target and any replay test that includes this file.
//!
//! Any text may be refused, with an error naming a line of the text, but
//! never with a panic. A config that is accepted must open its file-backed
//! stores' settings without a panic, and each pair's compiled mapping
//! (field maps, computed fields, filters, duplicate matching) must run over
//! sample records without one.

use std::path::Path;
use tandem_engine::{Config, ConfigError};
use tandem_record::{Kind, Record, Side, Value};

pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match Config::parse(Path::new("/fuzz/tandem.toml"), text) {
        Ok(config) => config,
        Err(ConfigError::Invalid { line, .. }) => {
            let lines = text.lines().count().max(1);
            assert!(
                line <= lines + 1,
                "error on line {line} of a {lines}-line text"
            );
            return;
        }
        Err(err) => panic!("parsing text gave a read error: {err}"),
    };
    for store in config.stores.values() {
        open(&store.store_type, &store.table);
    }
    for pair in &config.pairs {
        let samples = samples(pair.kind);
        let refs: Vec<&Record> = samples.iter().collect();
        let mapping = &pair.mapping;
        for side in [Side::A, Side::B] {
            for record in &samples {
                let _ = mapping.admits(side, record);
                if let Ok(common) = mapping.fields.to_common(side, record, &record.uid) {
                    let native = mapping.fields.to_native(side.other(), &common);
                    let _ = mapping
                        .fields
                        .changes_to_native(side.other(), &common.diff(&native));
                }
            }
        }
        let _ = mapping.matcher.pair_up(&refs, &refs[1..]);
    }
}

/// Reads a store table into its type's settings and builds the stores
/// that open without touching the network or the disk.
fn open(store_type: &str, table: &toml::Table) {
    let table = || table.clone();
    match store_type {
        "vdir" => {
            if let Ok(vdir) = table().try_into::<tandem_stores::vdir::VdirConfig>() {
                let _ = tandem_stores::vdir::VdirStore::new(vdir, tandem_formats::Format::VCard);
            }
        }
        "csv" => {
            if let Ok(csv) = table().try_into::<tandem_stores::csv::CsvConfig>() {
                let _ = tandem_stores::csv::CsvStore::new(csv, Kind::Contact);
            }
        }
        "sql" => {
            let _ = table().try_into::<tandem_stores::sql::SqlConfig>();
        }
        "carddav" | "caldav" => {
            // Opening reads password and CA files and loads the system's
            // certificates, so only the settings are read here.
            let _ = table().try_into::<tandem_stores::dav::DavConfig>();
        }
        _ => {}
    }
}

fn samples(kind: Kind) -> Vec<Record> {
    let typed = |value: &str, kind: &str| {
        Value::map([("value", Value::text(value)), ("type", Value::text(kind))])
    };
    let contact = |uid: &str, name: &str, email: &str| {
        Record::new(kind, uid)
            .with("full_name", Value::text(name))
            .with(
                "given_name",
                Value::text(name.split(' ').next().unwrap_or(name)),
            )
            .with(
                "family_name",
                Value::text(name.rsplit(' ').next().unwrap_or(name)),
            )
            .with("emails", Value::List(vec![typed(email, "work")]))
            .with(
                "phones",
                Value::List(vec![typed("+44 20 7946 0000", "cell")]),
            )
            .with("birthday", Value::Date("1815-12-10".into()))
            .with("org", Value::text("Analytical Engines"))
            .with("categories", Value::List(vec![Value::text("vip")]))
            .with("priority", Value::Integer(1))
            .with("all_day", Value::Bool(true))
            .with(
                "start",
                Value::DateTime {
                    local: "2026-03-29T09:00:00".into(),
                    tz: Some("Europe/Berlin".into()),
                },
            )
            .with("summary", Value::text(name))
            .with("custom.owner", Value::text("sales"))
    };
    vec![
        contact("ada", "Ada Lovelace", "ada@example.org"),
        contact("ada-2", "ADA LOVELACE", "Ada@Example.org"),
        Record::new(kind, "empty"),
    ]
}
