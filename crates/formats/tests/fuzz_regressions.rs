//! Replays the fuzzers' inputs for the vCard and iCalendar paths on stable
//! Rust, through the same checks the fuzz targets run
//! (fuzz/oracle/formats.rs, included here): a clean error or a value that
//! passes them, never a panic. See fuzz/README.md.

#[path = "../../../fuzz/oracle/formats.rs"]
mod oracle;
#[path = "../../../fuzz/oracle/replay.rs"]
mod replay;

use replay::replay;

#[test]
fn vcard_inputs_pass() {
    replay("vcard", oracle::vcard);
}

#[test]
fn icalendar_inputs_pass() {
    replay("icalendar", oracle::icalendar);
}
