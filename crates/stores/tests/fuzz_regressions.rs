//! Replays the fuzzers' inputs for the CSV store and the DAV response
//! parsers on stable Rust, through the same checks the fuzz targets run
//! (fuzz/oracle/csv.rs and multistatus.rs, included here): a clean error or
//! a value that passes them, never a panic. See fuzz/README.md.

#[path = "../../../fuzz/oracle/csv.rs"]
mod csv_oracle;
#[path = "../../../fuzz/oracle/multistatus.rs"]
mod multistatus_oracle;
#[path = "../../../fuzz/oracle/replay.rs"]
mod replay;

use replay::replay;

#[test]
fn csv_inputs_pass() {
    replay("csv", csv_oracle::csv);
}

#[test]
fn multistatus_inputs_pass() {
    replay("multistatus", multistatus_oracle::multistatus);
}
