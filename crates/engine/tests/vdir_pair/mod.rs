//! What the vdir ↔ vdir engine tests share: a contact vdir store over a
//! folder, and a pair `p` of two such stores (`a` and `b`) from a config
//! written into the test's folder.

use std::path::Path;
use tandem_engine::{Config, PairConfig};
use tandem_formats::Format;
use tandem_record::Kind;
use tandem_stores::vdir::{VdirConfig, VdirStore};

pub fn vdir(path: &Path) -> VdirStore {
    let config = VdirConfig {
        path: path.to_path_buf(),
        extension: None,
    };
    VdirStore::new(config, Format::for_kind(Kind::Contact)).unwrap()
}

pub fn pair(dir: &Path) -> PairConfig {
    let text =
        "[stores.a]\ntype = \"vdir\"\npath = \"a\"\n[stores.b]\ntype = \"vdir\"\npath = \"b\"\n\
                [[pairs]]\nname = \"p\"\na = \"a\"\nb = \"b\"\nkind = \"contact\"\n";
    let path = dir.join("tandem.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap().pairs.remove(0)
}
