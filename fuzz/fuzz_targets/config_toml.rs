//! `cargo fuzz run config_toml`: see fuzz/oracle/config_toml.rs for what each input must satisfy.
#![no_main]

#[path = "../oracle/config_toml.rs"]
mod oracle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| oracle::config_toml(data));
