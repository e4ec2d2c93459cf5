//! The `tandem.toml` file: stores, pairs and their policies, read strictly
//! (unknown keys are errors naming file and line) and resolved against the
//! config file's folder. docs/config.md is the user's reference for it.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tandem_plan::{ConflictRule, Direction, MaxDelete, Policy};
use tandem_record::{Kind, Side};

/// A config file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// `line` is 1-based; 0 when the position is unknown.
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: String,
        line: usize,
        message: String,
    },
}

/// The whole file.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    /// The state database.
    pub state: PathBuf,
    pub stores: BTreeMap<String, StoreConfig>,
    pub pairs: Vec<PairConfig>,
}

/// One `[stores.NAME]` table: its type and the type's own keys, kept as
/// TOML until the store is opened (each store type reads its own keys).
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub name: String,
    pub store_type: String,
    pub table: toml::Table,
    /// Where the table starts, for errors.
    pub line: usize,
}

/// One `[[pairs]]` entry.
#[derive(Debug, Clone)]
pub struct PairConfig {
    pub name: String,
    pub a: String,
    pub b: String,
    pub kind: Kind,
    pub policy: Policy,
    pub max_delete: MaxDelete,
    pub line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state: Option<PathBuf>,
    #[serde(default)]
    stores: BTreeMap<String, toml::Spanned<toml::Table>>,
    #[serde(default)]
    pairs: Vec<toml::Spanned<RawPair>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPair {
    name: String,
    a: String,
    b: String,
    kind: String,
    #[serde(default)]
    direction: Option<String>,
    #[serde(default)]
    conflict: Option<String>,
    #[serde(default)]
    create: Option<String>,
    #[serde(default)]
    max_delete: Option<toml::Value>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
}

fn line_of(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

pub(crate) fn parse_direction(s: &str) -> Result<Direction, String> {
    match s {
        "both" => Ok(Direction::Both),
        "a-to-b" => Ok(Direction::AToB),
        "b-to-a" => Ok(Direction::BToA),
        other => Err(format!(
            "unknown direction `{other}` (expected both, a-to-b or b-to-a)"
        )),
    }
}

fn parse_side(s: &str) -> Result<Side, String> {
    match s {
        "a" => Ok(Side::A),
        "b" => Ok(Side::B),
        other => Err(format!("unknown side `{other}` (expected a or b)")),
    }
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(path, &source)
    }

    /// Parses config text; `path` names the file in errors and anchors
    /// relative paths.
    pub fn parse(path: &Path, source: &str) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let invalid = |line: usize, message: String| ConfigError::Invalid {
            path: shown.clone(),
            line,
            message,
        };
        let raw: RawConfig = toml::from_str(source).map_err(|e| {
            let line = e.span().map(|s| line_of(source, s.start)).unwrap_or(0);
            invalid(line, e.message().to_string())
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                dir.join(p)
            }
        };

        let mut stores = BTreeMap::new();
        for (name, spanned) in raw.stores {
            let line = line_of(source, spanned.span().start);
            let mut table = spanned.into_inner();
            let store_type = match table.remove("type") {
                Some(toml::Value::String(t)) => t,
                Some(_) => {
                    return Err(invalid(
                        line,
                        format!("stores.{name}.type must be a string"),
                    ))
                }
                None => return Err(invalid(line, format!("stores.{name} has no `type`"))),
            };
            // Relative paths resolve against the config file's folder.
            if let Some(toml::Value::String(p)) = table.get("path") {
                let resolved = resolve(Path::new(p)).display().to_string();
                table.insert("path".into(), toml::Value::String(resolved));
            }
            stores.insert(
                name.clone(),
                StoreConfig {
                    name,
                    store_type,
                    table,
                    line,
                },
            );
        }

        let mut pairs: Vec<PairConfig> = Vec::new();
        for spanned in raw.pairs {
            let line = line_of(source, spanned.span().start);
            let p = spanned.into_inner();
            let at = |message: String| invalid(line, format!("pair `{}`: {message}", p.name));
            for side in [&p.a, &p.b] {
                if !stores.contains_key(side) {
                    return Err(at(format!("no store named `{side}`")));
                }
            }
            if p.a == p.b {
                return Err(at("a and b are the same store".into()));
            }
            if pairs.iter().any(|q| q.name == p.name) {
                return Err(at("a second pair with this name".into()));
            }
            let kind: Kind = p.kind.parse().map_err(at)?;
            let direction = p
                .direction
                .as_deref()
                .map(parse_direction)
                .transpose()
                .map_err(at)?;
            let conflict = match p.conflict.as_deref() {
                None | Some("newest") => ConflictRule::Newest,
                Some("a") => ConflictRule::A,
                Some("b") => ConflictRule::B,
                Some("manual") => ConflictRule::Manual,
                Some(other) => {
                    return Err(at(format!(
                        "unknown conflict rule `{other}` (expected a, b, newest or manual)"
                    )))
                }
            };
            let (create, no_create) = match p.create.as_deref() {
                None => (None, false),
                Some("none") => (None, true),
                Some(other) => (Some(parse_direction(other).map_err(at)?), false),
            };
            let max_delete = match &p.max_delete {
                None => MaxDelete::default(),
                Some(toml::Value::String(s)) => s.parse().map_err(at)?,
                Some(toml::Value::Integer(n)) if *n >= 0 => MaxDelete::Count(*n as u64),
                Some(other) => {
                    return Err(at(format!(
                        "max_delete: `{other}` is neither a count nor a percentage"
                    )))
                }
            };
            let mut owners = BTreeMap::new();
            for (field, owner) in &p.fields {
                owners.insert(
                    field.clone(),
                    parse_side(owner).map_err(|e| at(format!("fields.{field}: {e}")))?,
                );
            }
            pairs.push(PairConfig {
                name: p.name.clone(),
                a: p.a.clone(),
                b: p.b.clone(),
                kind,
                policy: Policy {
                    direction: direction.unwrap_or_default(),
                    conflict,
                    owners,
                    create,
                    no_create,
                },
                max_delete,
                line,
            });
        }

        Ok(Config {
            state: resolve(
                &raw.state
                    .unwrap_or_else(|| PathBuf::from(".tandem/state.db")),
            ),
            path: path.to_path_buf(),
            stores,
            pairs,
        })
    }

    /// The pairs named, or all of them; an unknown name is an error.
    pub fn select(&self, names: &[String]) -> Result<Vec<&PairConfig>, String> {
        if names.is_empty() {
            return Ok(self.pairs.iter().collect());
        }
        names
            .iter()
            .map(|n| {
                self.pairs
                    .iter()
                    .find(|p| &p.name == n)
                    .ok_or_else(|| format!("no pair named `{n}`"))
            })
            .collect()
    }

    pub fn pair(&self, name: &str) -> Option<&PairConfig> {
        self.pairs.iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[stores.laptop]
type = "vdir"
path = "contacts/laptop"

[stores.server]
type = "vdir"
path = "/srv/contacts"

[[pairs]]
name = "contacts"
a = "laptop"
b = "server"
kind = "contact"
direction = "a-to-b"
conflict = "manual"
max_delete = 10

[pairs.fields]
org = "b"
"#;

    #[test]
    fn reads_and_resolves() {
        let c = Config::parse(Path::new("/etc/t/tandem.toml"), GOOD).expect("valid");
        assert_eq!(c.state, PathBuf::from("/etc/t/.tandem/state.db"));
        assert_eq!(
            c.stores["laptop"].table["path"].as_str(),
            Some("/etc/t/contacts/laptop")
        );
        assert_eq!(
            c.stores["server"].table["path"].as_str(),
            Some("/srv/contacts")
        );
        let p = &c.pairs[0];
        assert_eq!(p.policy.direction, Direction::AToB);
        assert_eq!(p.policy.conflict, ConflictRule::Manual);
        assert_eq!(p.max_delete, MaxDelete::Count(10));
        assert_eq!(p.policy.owners["org"], Side::B);
    }

    #[test]
    fn unknown_keys_name_file_and_line() {
        let bad = GOOD.replace("direction = \"a-to-b\"", "directoin = \"a-to-b\"");
        let err = Config::parse(Path::new("t.toml"), &bad).expect_err("unknown key");
        let shown = err.to_string();
        assert!(shown.starts_with("t.toml:15:"), "{shown}");
        assert!(shown.contains("directoin"), "{shown}");
    }

    #[test]
    fn bad_values_are_errors_with_lines() {
        for (from, to, needle) in [
            ("conflict = \"manual\"", "conflict = \"loudest\"", "loudest"),
            ("kind = \"contact\"", "kind = \"invoice\"", "invoice"),
            ("b = \"server\"", "b = \"nowhere\"", "nowhere"),
            ("max_delete = 10", "max_delete = \"lots\"", "lots"),
            ("org = \"b\"", "org = \"c\"", "org"),
        ] {
            let bad = GOOD.replace(from, to);
            let err = Config::parse(Path::new("t.toml"), &bad)
                .expect_err(needle)
                .to_string();
            assert!(err.contains(needle) && err.starts_with("t.toml:1"), "{err}");
        }
    }
}
