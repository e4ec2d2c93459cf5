//! Replays a fuzz target's inputs in a stable `cargo test`: every file under
//! fuzz/regressions/<target>/ (inputs that once failed, minimised) and
//! fuzz/corpus/<target>/ (the seeds) goes through the target's oracle.

use std::path::Path;

/// Runs `check` over every input of `target`; fails naming the first
/// input whose checks fail.
pub fn replay(target: &str, check: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut files = Vec::new();
    for folder in ["regressions", "corpus"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(folder).join(target)) else {
            continue;
        };
        files.extend(entries.map(|e| e.expect("a readable folder entry").path()));
    }
    files.sort();
    assert!(
        !files.is_empty(),
        "no inputs for `{target}` under {}",
        fuzz.display()
    );
    for path in files {
        let data = std::fs::read(&path).expect("a readable input");
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} fails its checks", path.display());
    }
}
