//! `cargo fuzz run multistatus`: see fuzz/oracle/multistatus.rs for what each input must satisfy.
#![no_main]

#[path = "../oracle/multistatus.rs"]
mod oracle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| oracle::multistatus(data));
