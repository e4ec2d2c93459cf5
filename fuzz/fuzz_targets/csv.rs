//! `cargo fuzz run csv`: see fuzz/oracle/csv.rs for what each input must satisfy.
#![no_main]

#[path = "../oracle/csv.rs"]
mod oracle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| oracle::csv(data));
