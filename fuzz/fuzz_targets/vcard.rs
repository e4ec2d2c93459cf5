//! `cargo fuzz run vcard`: see fuzz/oracle/formats.rs for what each input must satisfy.
#![no_main]

#[path = "../oracle/formats.rs"]
#[allow(dead_code)]
mod oracle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| oracle::vcard(data));
