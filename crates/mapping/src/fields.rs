//! Field maps: how each side's field names and values translate into the
//! pair's common record, which the planner compares and merges, and back.
//!
//! The common record uses A's names. A rename (`A's x ↔ B's y`) reads B's
//! `y` as `x` and writes `x` to B as `y`. A computed field is named by its
//! target's field: read natively on the target, and evaluated over the
//! source's native record when reading the source, so both sides show the
//! planner one comparable value. It flows one way only (from its source),
//! which the planner enforces through a per-field direction; a value it
//! wrote on the target therefore reads back equal to the source's, and an
//! edit on the target stays there without flowing back. Every other field
//! is carried under its own name, unless its name is taken by a rename or a
//! computed field on that side.

use crate::expr::{EvalError, Expr};
use std::collections::BTreeSet;
use tandem_record::{FieldChange, Record, Side, Value};

/// One entry of `[pairs.map]`, as read from config.
#[derive(Debug, Clone, PartialEq)]
pub enum MapEntry {
    /// A's field `a` is B's field `b`.
    Rename { a: String, b: String },
    /// `field` on side `to` is computed by `expr` over the other side's record.
    Compute {
        field: String,
        to: Side,
        expr: String,
    },
    /// `field` on side `to` is always `value`.
    Constant {
        field: String,
        to: Side,
        value: Value,
    },
}

/// Why a field map cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldMapError {
    #[error("map.{field}: {error}")]
    Expr {
        field: String,
        error: crate::expr::ExprError,
    },
    #[error("map.{field}: the field is mapped twice on side {side}")]
    Twice { field: String, side: Side },
    /// `only_fields` names one half of a recurring series but not the other.
    #[error("only_fields names `{named}` but not `{missing}`: a recurring series travels whole")]
    SplitSeries {
        named: &'static str,
        missing: &'static str,
    },
}

/// Fields that make up a recurring series beyond the master's own: the
/// rule and the overrides of single occurrences. They travel together, so
/// an override is never carried without the series it belongs to (nor a
/// series without its overrides, which would bring back occurrences moved
/// or cancelled on the other side).
pub const SERIES_FIELDS: [&str; 2] = ["recurrence", "overrides"];

/// A computed or constant field.
#[derive(Debug, Clone)]
struct Computed {
    /// The target's field name, which is also its common name.
    field: String,
    /// The side it is written to; it is computed from the other side.
    to: Side,
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    Expr(Expr),
    Constant(Value),
}

/// A pair's compiled field map.
#[derive(Debug, Clone, Default)]
pub struct FieldMap {
    /// `(A name, B name)`.
    renames: Vec<(String, String)>,
    computed: Vec<Computed>,
    /// Common names kept (`only_fields`); `None` keeps all.
    only: Option<BTreeSet<String>>,
    /// Native names never carried as they are, per side.
    blocked: [BTreeSet<String>; 2],
}

/// A computed field's evaluation failed for one record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {field}: {error}")]
pub struct FieldError {
    pub field: String,
    pub error: EvalError,
}

fn ix(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

impl FieldMap {
    /// Compiles the map; `only` restricts the synced fields (common names).
    pub fn compile(
        entries: &[MapEntry],
        only: Option<&[String]>,
    ) -> Result<FieldMap, FieldMapError> {
        if let Some(only) = only {
            let named = |f: &str| only.iter().any(|o| o == f);
            let [rule, overrides] = SERIES_FIELDS;
            for (named_one, missing) in [(rule, overrides), (overrides, rule)] {
                if named(named_one) && !named(missing) {
                    return Err(FieldMapError::SplitSeries {
                        named: named_one,
                        missing,
                    });
                }
            }
        }
        let mut map = FieldMap {
            only: only.map(|o| o.iter().cloned().collect()),
            ..FieldMap::default()
        };
        // Each side's native name may be claimed once.
        let mut claimed: [BTreeSet<String>; 2] = Default::default();
        let mut claim = |side: Side, field: &str| {
            if claimed[ix(side)].insert(field.to_string()) {
                Ok(())
            } else {
                Err(FieldMapError::Twice {
                    field: field.to_string(),
                    side,
                })
            }
        };
        for entry in entries {
            match entry {
                MapEntry::Rename { a, b } => {
                    claim(Side::A, a)?;
                    claim(Side::B, b)?;
                    if a != b {
                        // B's own `a` and A's own `b` would collide with it.
                        map.blocked[ix(Side::B)].insert(a.clone());
                        map.blocked[ix(Side::A)].insert(b.clone());
                    }
                    map.renames.push((a.clone(), b.clone()));
                }
                MapEntry::Compute { field, to, expr } => {
                    claim(*to, field)?;
                    let expr = Expr::compile(expr).map_err(|error| FieldMapError::Expr {
                        field: field.clone(),
                        error,
                    })?;
                    map.blocked[ix(to.other())].insert(field.clone());
                    map.computed.push(Computed {
                        field: field.clone(),
                        to: *to,
                        source: Source::Expr(expr),
                    });
                }
                MapEntry::Constant { field, to, value } => {
                    claim(*to, field)?;
                    map.blocked[ix(to.other())].insert(field.clone());
                    map.computed.push(Computed {
                        field: field.clone(),
                        to: *to,
                        source: Source::Constant(value.clone()),
                    });
                }
            }
        }
        Ok(map)
    }

    /// True when the map changes nothing (records pass as they are).
    pub fn is_identity(&self) -> bool {
        self.renames.iter().all(|(a, b)| a == b) && self.computed.is_empty() && self.only.is_none()
    }

    /// Fields that flow one way, by common name, with their source side.
    pub fn one_way(&self) -> impl Iterator<Item = (&str, Side)> {
        self.computed
            .iter()
            .map(|c| (c.field.as_str(), c.to.other()))
    }

    /// True when some field is computed from `side`'s record.
    pub fn computes_from(&self, side: Side) -> bool {
        self.computed.iter().any(|c| c.to.other() == side)
    }

    /// The fields computed from `side`, by common name.
    pub fn computed_from(&self, side: Side) -> impl Iterator<Item = &str> {
        self.computed
            .iter()
            .filter(move |c| c.to.other() == side)
            .map(|c| c.field.as_str())
    }

    /// `record` itself, its fields shared rather than copied, when the map
    /// would copy every field unchanged: nothing renamed, computed or left
    /// out, and no empty value (which a copy drops).
    fn passed_as_is(&self, record: &Record) -> Option<Record> {
        (self.is_identity() && record.fields.values().all(|v| !v.is_empty()))
            .then(|| record.clone())
    }

    fn common_name<'n>(&'n self, side: Side, native: &'n str) -> Option<&'n str> {
        if let Some((a, _)) = self.renames.iter().find(|(a, b)| match side {
            Side::A => a == native,
            Side::B => b == native,
        }) {
            return Some(a);
        }
        if self.blocked[ix(side)].contains(native) {
            return None;
        }
        Some(native)
    }

    fn native_name<'n>(&'n self, side: Side, common: &'n str) -> Option<&'n str> {
        if let Some((a, b)) = self.renames.iter().find(|(a, _)| a == common) {
            return Some(match side {
                Side::A => a,
                Side::B => b,
            });
        }
        if self.blocked[ix(side)].contains(common) {
            return None;
        }
        Some(common)
    }

    fn kept(&self, common: &str) -> bool {
        self.only.as_ref().is_none_or(|o| o.contains(common))
    }

    /// `side`'s native record in the pair's common names, with `uid` as
    /// its UID (the link's key).
    pub fn to_common(&self, side: Side, native: &Record, uid: &str) -> Result<Record, FieldError> {
        if let Some(mut out) = self.passed_as_is(native) {
            out.uid = uid.to_string();
            return Ok(out);
        }
        let mut out = Record::new(native.kind, uid);
        out.modified = native.modified;
        for (name, value) in native.fields.iter() {
            if let Some(common) = self.common_name(side, name) {
                if self.kept(common) {
                    out.set(common.to_string(), value.clone());
                }
            }
        }
        for c in self
            .computed
            .iter()
            .filter(|c| c.to != side && self.kept(&c.field))
        {
            let value = match &c.source {
                Source::Constant(v) => Some(v.clone()),
                Source::Expr(expr) => expr.eval(native).map_err(|error| FieldError {
                    field: c.field.clone(),
                    error,
                })?,
            };
            match value {
                Some(v) => out.set(c.field.clone(), v),
                None => {
                    out.remove(&c.field);
                }
            }
        }
        Ok(out)
    }

    /// A common record as `side` stores it (for a create).
    pub fn to_native(&self, side: Side, common: &Record) -> Record {
        if let Some(out) = self.passed_as_is(common) {
            return out;
        }
        let mut out = Record::new(common.kind, common.uid.clone());
        out.modified = common.modified;
        for (name, value) in common.fields.iter() {
            if self.is_computed_from(side, name) {
                continue;
            }
            if let Some(native) = self.native_name(side, name) {
                out.set(native.to_string(), value.clone());
            }
        }
        out
    }

    /// Common-name changes as `side` stores them (for an update).
    pub fn changes_to_native(&self, side: Side, changes: &[FieldChange]) -> Vec<FieldChange> {
        changes
            .iter()
            .filter(|c| !self.is_computed_from(side, &c.field))
            .filter_map(|c| {
                self.native_name(side, &c.field).map(|native| FieldChange {
                    field: native.to_string(),
                    value: c.value.clone(),
                })
            })
            .collect()
    }

    fn is_computed_from(&self, side: Side, common: &str) -> bool {
        self.computed
            .iter()
            .any(|c| c.to != side && c.field == common)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_record::Kind;

    fn crm_map() -> FieldMap {
        FieldMap::compile(
            &[
                MapEntry::Rename {
                    a: "custom.owner".into(),
                    b: "custom.account_owner".into(),
                },
                MapEntry::Compute {
                    field: "full_name".into(),
                    to: Side::B,
                    expr: "given_name + ' ' + family_name".into(),
                },
                MapEntry::Constant {
                    field: "custom.source".into(),
                    to: Side::B,
                    value: Value::text("tandem"),
                },
            ],
            None,
        )
        .expect("valid map")
    }

    fn crm_row() -> Record {
        Record::new(Kind::Contact, "crm-7")
            .with("given_name", Value::text("Ada"))
            .with("family_name", Value::text("Lovelace"))
            .with("full_name", Value::text("LOVELACE, Ada"))
            .with("custom.owner", Value::text("maria"))
    }

    #[test]
    fn reads_both_sides_into_one_common_record() {
        let m = crm_map();
        let from_a = m.to_common(Side::A, &crm_row(), "crm-7").expect("maps");
        // A's own full_name is not carried: B's full_name is computed.
        assert_eq!(from_a.get("full_name"), Some(&Value::text("Ada Lovelace")));
        assert_eq!(from_a.get("custom.owner"), Some(&Value::text("maria")));
        assert_eq!(from_a.get("custom.source"), Some(&Value::text("tandem")));

        // What Tandem writes to B reads back as the same common record.
        let on_b = m.to_native(Side::B, &from_a);
        assert_eq!(
            on_b.get("custom.account_owner"),
            Some(&Value::text("maria"))
        );
        assert_eq!(on_b.get("custom.owner"), None);
        assert_eq!(on_b.get("full_name"), Some(&Value::text("Ada Lovelace")));
        let back = m.to_common(Side::B, &on_b, "crm-7").expect("maps");
        assert!(back.same_content(&from_a), "{back:?} vs {from_a:?}");

        // Written to A, computed fields are left out; renames go back.
        let on_a = m.to_native(Side::A, &back);
        assert_eq!(on_a.get("full_name"), None);
        assert_eq!(on_a.get("custom.source"), None);
        assert_eq!(on_a.get("custom.owner"), Some(&Value::text("maria")));
        assert_eq!(
            m.one_way().collect::<Vec<_>>(),
            vec![("full_name", Side::A), ("custom.source", Side::A)]
        );
    }

    #[test]
    fn an_identity_map_shares_the_fields() {
        let m = FieldMap::compile(&[], None).expect("ok");
        let row = crm_row();
        let common = m.to_common(Side::A, &row, "link-7").expect("maps");
        assert_eq!(common.uid, "link-7");
        assert!(std::sync::Arc::ptr_eq(&common.fields, &row.fields));
        assert!(std::sync::Arc::ptr_eq(
            &m.to_native(Side::B, &common).fields,
            &row.fields
        ));
        // An empty value is dropped, as a field-by-field copy drops it.
        let mut with_empty = crm_row();
        with_empty
            .fields_mut()
            .insert("note".into(), Value::text(""));
        let common = m.to_common(Side::A, &with_empty, "link-7").expect("maps");
        assert_eq!(common.get("note"), None);
        assert!(common.same_content(&Record {
            uid: "link-7".into(),
            ..crm_row()
        }));
    }

    #[test]
    fn changes_translate_per_side() {
        let m = crm_map();
        let changes = vec![
            FieldChange {
                field: "custom.owner".into(),
                value: Some(Value::text("li")),
            },
            FieldChange {
                field: "full_name".into(),
                value: Some(Value::text("Ada King")),
            },
            FieldChange {
                field: "title".into(),
                value: None,
            },
        ];
        let names = |side| -> Vec<String> {
            m.changes_to_native(side, &changes)
                .into_iter()
                .map(|c| c.field)
                .collect()
        };
        assert_eq!(
            names(Side::B),
            vec!["custom.account_owner", "full_name", "title"]
        );
        assert_eq!(names(Side::A), vec!["custom.owner", "title"]);
    }

    #[test]
    fn only_fields_and_conflicting_entries() {
        let m =
            FieldMap::compile(&[], Some(&["emails".to_string(), "org".to_string()])).expect("ok");
        let r = crm_row().with("org", Value::text("Acme"));
        let common = m.to_common(Side::A, &r, "crm-7").expect("maps");
        assert_eq!(common.fields.keys().collect::<Vec<_>>(), vec!["org"]);
        assert!(!m.is_identity());
        assert!(FieldMap::compile(&[], None).expect("ok").is_identity());

        let twice = FieldMap::compile(
            &[
                MapEntry::Rename {
                    a: "org".into(),
                    b: "company".into(),
                },
                MapEntry::Constant {
                    field: "company".into(),
                    to: Side::B,
                    value: Value::text("x"),
                },
            ],
            None,
        );
        assert!(matches!(
            twice,
            Err(FieldMapError::Twice { side: Side::B, .. })
        ));
        let bad = FieldMap::compile(
            &[MapEntry::Compute {
                field: "x".into(),
                to: Side::A,
                expr: "1 +".into(),
            }],
            None,
        );
        assert!(matches!(bad, Err(FieldMapError::Expr { .. })));
    }

    #[test]
    fn evaluation_errors_name_the_field() {
        let m = FieldMap::compile(
            &[MapEntry::Compute {
                field: "note".into(),
                to: Side::B,
                expr: "given_name + 1".into(),
            }],
            None,
        )
        .expect("compiles");
        let err = m
            .to_common(Side::A, &crm_row(), "u")
            .expect_err("type error");
        assert_eq!(err.field, "note");
    }
}
