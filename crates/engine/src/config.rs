//! The `tandem.toml` file: stores, pairs and their policies, read strictly
//! (unknown keys are errors naming file and line) and resolved against the
//! config file's folder. docs/config.md is the user's reference for it.

use crate::window::{ExpandKeys, TimeWindow, WindowKeys};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tandem_mapping::{MapEntry, MappingSpec, OnLeave, PairMapping};
use tandem_plan::{ConflictRule, Direction, MaxDelete, Policy};
use tandem_record::{Kind, Side, Value};

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
    /// Field maps, filters and duplicate matching, compiled once.
    pub mapping: Arc<PairMapping>,
    /// `window`: the spans around now that events and tasks must have an
    /// occurrence in to take part (also part of `mapping`'s scope).
    pub window: Option<TimeWindow>,
    /// `expand`: the side whose recurring series are shown as their
    /// occurrences inside this window (the pair flows one way from it).
    pub expand: Option<(Side, TimeWindow)>,
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
    fields: toml::Table,
    #[serde(default)]
    map: toml::Table,
    #[serde(default)]
    only_fields: Option<Vec<String>>,
    #[serde(default)]
    filter_a: Option<String>,
    #[serde(default)]
    filter_b: Option<String>,
    #[serde(default)]
    on_leave: Option<String>,
    #[serde(default, rename = "match")]
    match_keys: Option<Vec<String>>,
    #[serde(default)]
    default_region: Option<String>,
    #[serde(default)]
    window: Option<WindowKeys>,
    #[serde(default)]
    expand: Option<ExpandKeys>,
}

/// One `[pairs.fields]` entry: an owner, or `{ owner, direction }`.
#[derive(Default)]
struct FieldRule {
    owner: Option<Side>,
    direction: Option<Direction>,
}

/// Flattens `[pairs.fields]`: `org = "b"`, `org = { owner = "b",
/// direction = "a-to-b" }`, and dotted names written either quoted
/// (`"custom.owner" = "a"`) or as nested tables (`custom.owner = "a"`).
fn field_rules(
    table: &toml::Table,
    prefix: &str,
    out: &mut BTreeMap<String, FieldRule>,
) -> Result<(), String> {
    for (key, value) in table {
        let name = format!("{prefix}{key}");
        match value {
            toml::Value::String(owner) => {
                let owner = parse_side(owner).map_err(|e| format!("fields.{name}: {e}"))?;
                out.insert(
                    name,
                    FieldRule {
                        owner: Some(owner),
                        direction: None,
                    },
                );
            }
            toml::Value::Table(t)
                if key != "custom" && t.keys().all(|k| k == "owner" || k == "direction") =>
            {
                let mut rule = FieldRule::default();
                for (k, v) in t {
                    let text = v
                        .as_str()
                        .ok_or_else(|| format!("fields.{name}.{k} must be a string"))?;
                    match k.as_str() {
                        "owner" => {
                            rule.owner = Some(
                                parse_side(text)
                                    .map_err(|e| format!("fields.{name}.owner: {e}"))?,
                            )
                        }
                        _ => {
                            rule.direction = Some(
                                parse_direction(text)
                                    .map_err(|e| format!("fields.{name}.direction: {e}"))?,
                            )
                        }
                    }
                }
                out.insert(name, rule);
            }
            toml::Value::Table(t) => field_rules(t, &format!("{name}."), out)?,
            _ => {
                return Err(format!(
                    "fields.{name}: expected \"a\", \"b\" or {{ owner, direction }}"
                ))
            }
        }
    }
    Ok(())
}

/// The keys of a computed `[pairs.map.FIELD]` table.
const MAP_KEYS: [&str; 4] = ["to_b", "to_a", "to_b_const", "to_a_const"];

/// Flattens `[pairs.map]`: `A_FIELD = "B_FIELD"` renames; a table with one
/// of `to_b`, `to_a` (CEL) or `to_b_const`, `to_a_const` computes FIELD on
/// that side. Dotted names may be quoted or nested.
fn map_entries(table: &toml::Table, prefix: &str, out: &mut Vec<MapEntry>) -> Result<(), String> {
    for (key, value) in table {
        let field = format!("{prefix}{key}");
        match value {
            toml::Value::String(b) => out.push(MapEntry::Rename { a: field, b: b.clone() }),
            toml::Value::Table(t) if t.keys().any(|k| MAP_KEYS.contains(&k.as_str())) => {
                if t.len() != 1 {
                    return Err(format!(
                        "map.{field}: give exactly one of to_b, to_a, to_b_const, to_a_const"
                    ));
                }
                for (k, v) in t {
                    let to = if k.starts_with("to_b") { Side::B } else { Side::A };
                    let entry = if k.ends_with("_const") {
                        MapEntry::Constant { field: field.clone(), to, value: toml_value(v).map_err(|e| format!("map.{field}.{k}: {e}"))? }
                    } else {
                        let expr = v.as_str().ok_or_else(|| format!("map.{field}.{k} must be a CEL expression in a string"))?;
                        MapEntry::Compute { field: field.clone(), to, expr: expr.to_string() }
                    };
                    out.push(entry);
                }
            }
            toml::Value::Table(t) => map_entries(t, &format!("{field}."), out)?,
            _ => return Err(format!("map.{field}: expected B's field name or a table with to_b, to_a, to_b_const or to_a_const")),
        }
    }
    Ok(())
}

fn toml_value(v: &toml::Value) -> Result<Value, String> {
    Ok(match v {
        toml::Value::String(s) => Value::Text(s.clone()),
        toml::Value::Integer(i) => Value::Integer(*i),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Float(f) => Value::Decimal(f.to_string()),
        toml::Value::Array(items) => {
            Value::List(items.iter().map(toml_value).collect::<Result<_, _>>()?)
        }
        other => return Err(format!("`{other}` is not a constant Tandem can store")),
    })
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
            for key in ["path", "password_file", "ca_file"] {
                if let Some(toml::Value::String(p)) = table.get(key) {
                    let resolved = resolve(Path::new(p)).display().to_string();
                    table.insert(key.into(), toml::Value::String(resolved));
                }
            }
            // So do SQLite files named by a `sqlite:` URL.
            if let Some(toml::Value::String(url)) = table.get("url") {
                if let Some(file) = url.strip_prefix("sqlite:") {
                    let file = file.trim_start_matches("//");
                    if !file.is_empty() && !file.starts_with(':') && Path::new(file).is_relative() {
                        let resolved = format!("sqlite:{}", resolve(Path::new(file)).display());
                        table.insert("url".into(), toml::Value::String(resolved));
                    }
                }
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
            let mut rules = BTreeMap::new();
            field_rules(&p.fields, "", &mut rules).map_err(at)?;
            let mut owners = BTreeMap::new();
            let mut field_directions = BTreeMap::new();
            for (field, rule) in rules {
                if let Some(owner) = rule.owner {
                    owners.insert(field.clone(), owner);
                }
                if let Some(direction) = rule.direction {
                    field_directions.insert(field, direction);
                }
            }
            let mut map = Vec::new();
            map_entries(&p.map, "", &mut map).map_err(at)?;
            let on_leave = match p.on_leave.as_deref() {
                None | Some("keep") => OnLeave::Keep,
                Some("delete") => OnLeave::Delete,
                Some(other) => {
                    return Err(at(format!(
                        "unknown on_leave `{other}` (expected keep or delete)"
                    )))
                }
            };
            let match_keys = p
                .match_keys
                .iter()
                .flatten()
                .map(|k| k.parse())
                .collect::<Result<Vec<_>, String>>()
                .map_err(at)?;
            let spec = MappingSpec {
                map,
                only_fields: p.only_fields.clone(),
                filter_a: p.filter_a.clone(),
                filter_b: p.filter_b.clone(),
                on_leave,
                match_keys,
                default_region: p.default_region.clone(),
            };
            let mut mapping = PairMapping::compile(&spec).map_err(|e| at(e.to_string()))?;
            if (p.window.is_some() || p.expand.is_some()) && kind == Kind::Contact {
                return Err(at(
                    "`window` and `expand` apply to events and tasks, not contacts".into(),
                ));
            }
            let window = p
                .window
                .as_ref()
                .map(WindowKeys::read)
                .transpose()
                .map_err(at)?;
            if let Some(window) = window {
                mapping = mapping.with_scope(Arc::new(window));
            }
            let (expand, direction) = match &p.expand {
                None => (None, direction),
                Some(keys) => {
                    let (side, window, from) = keys.read(direction).map_err(at)?;
                    (Some((side, window)), Some(from))
                }
            };
            // Computed fields flow from their source only.
            for (field, source) in mapping.fields.one_way() {
                let direction = match source {
                    Side::A => Direction::AToB,
                    Side::B => Direction::BToA,
                };
                field_directions.insert(field.to_string(), direction);
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
                    field_directions,
                    mirror: expand.is_some(),
                },
                max_delete,
                mapping: Arc::new(mapping),
                window,
                expand,
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

#[cfg(test)]
mod mapping_tests {
    use super::*;

    const CRM: &str = r#"
[stores.crm]
type = "vdir"
path = "crm"

[stores.phone]
type = "vdir"
path = "phone"

[[pairs]]
name = "crm"
a = "crm"
b = "phone"
kind = "contact"
only_fields = ["given_name", "family_name", "full_name", "emails", "custom.owner", "custom.source", "org"]
filter_a = "'active-candidate' in categories"
on_leave = "delete"
match = ["email", "phone", "name"]
default_region = "US"

[pairs.fields]
"custom.owner" = "a"
org = { owner = "b", direction = "b-to-a" }

[pairs.map]
"custom.owner" = "custom.account_owner"

[pairs.map.full_name]
to_b = "given_name + ' ' + family_name"

[pairs.map."custom.source"]
to_b_const = "tandem"
"#;

    #[test]
    fn reads_mapping_keys() {
        let c = Config::parse(Path::new("t.toml"), CRM).expect("valid");
        let p = &c.pairs[0];
        assert_eq!(p.policy.owners["custom.owner"], Side::A);
        assert_eq!(p.policy.owners["org"], Side::B);
        assert_eq!(p.policy.field_directions["org"], Direction::BToA);
        assert_eq!(p.policy.field_directions["full_name"], Direction::AToB);
        assert_eq!(p.policy.field_directions["custom.source"], Direction::AToB);
        assert_eq!(p.mapping.on_leave, OnLeave::Delete);
        assert!(p.mapping.filters(Side::A) && !p.mapping.filters(Side::B));
        assert!(!p.mapping.matcher.is_empty());
        // Nested spelling of a dotted name means the same.
        let nested = CRM.replace("\"custom.owner\" = \"a\"", "custom.owner = \"a\"");
        let c = Config::parse(Path::new("t.toml"), &nested).expect("valid");
        assert_eq!(c.pairs[0].policy.owners["custom.owner"], Side::A);
    }

    #[test]
    fn bad_mapping_keys_are_errors_with_lines() {
        for (from, to, needle) in [
            ("on_leave = \"delete\"", "on_leave = \"vanish\"", "vanish"),
            (
                "match = [\"email\", \"phone\", \"name\"]",
                "match = [\"shoe\"]",
                "shoe",
            ),
            (
                "default_region = \"US\"",
                "default_region = \"Atlantis\"",
                "Atlantis",
            ),
            (
                "filter_a = \"'active-candidate' in categories\"",
                "filter_a = \"'x' in\"",
                "filter_a",
            ),
            (
                "to_b = \"given_name + ' ' + family_name\"",
                "to_b = \"given_name +\"",
                "full_name",
            ),
            (
                "to_b_const = \"tandem\"",
                "to_b_const = \"tandem\"\nto_a = \"1\"",
                "exactly one",
            ),
            (
                "org = { owner = \"b\", direction = \"b-to-a\" }",
                "org = { owner = \"b\", direction = \"up\" }",
                "up",
            ),
            ("only_fields", "only_feilds", "only_feilds"),
        ] {
            let bad = CRM.replace(from, to);
            let err = Config::parse(Path::new("t.toml"), &bad)
                .expect_err(needle)
                .to_string();
            assert!(err.contains(needle) && err.starts_with("t.toml:"), "{err}");
        }
    }
}
