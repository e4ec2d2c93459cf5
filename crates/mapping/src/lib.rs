//! Per-pair mapping: the step between reading a store's records and
//! planning (`store → record → mapping → plan`). Compiled once per pair
//! from config, it owns
//!
//! - the [`FieldMap`]: renames, computed fields (CEL), constants and
//!   `only_fields`, translating each side's records into the pair's common
//!   record for the planner and the planner's writes back into each side's
//!   names;
//! - the filters (`filter_a`, `filter_b`): which records of a side take part;
//! - the [`Matcher`]: the duplicate-matching ladder for records never linked.
//!
//! ```
//! use tandem_mapping::{MapEntry, PairMapping, MappingSpec};
//! use tandem_record::{Kind, Record, Side, Value};
//!
//! let spec = MappingSpec {
//!     map: vec![MapEntry::Rename { a: "custom.owner".into(), b: "custom.account_owner".into() }],
//!     filter_b: Some("'active-candidate' in categories".into()),
//!     ..MappingSpec::default()
//! };
//! let mapping = PairMapping::compile(&spec).unwrap();
//! let on_b = Record::new(Kind::Contact, "u1")
//!     .with("custom.account_owner", Value::text("maria"))
//!     .with("categories", Value::List(vec![Value::text("active-candidate")]));
//! assert_eq!(mapping.admits(Side::B, &on_b), Ok(true));
//! let common = mapping.fields.to_common(Side::B, &on_b, "u1").unwrap();
//! assert_eq!(common.get("custom.owner"), Some(&Value::text("maria")));
//! ```

mod expr;
mod fields;
mod matching;

pub use expr::{EvalError, Expr, ExprError, MAX_DEPTH, MAX_LEN};
pub use fields::{FieldError, FieldMap, FieldMapError, MapEntry, SERIES_FIELDS};
pub use matching::{fold_name, Ambiguity, Duplicate, Match, MatchKey, Matcher, Matches};

use std::sync::Arc;
use tandem_record::{Record, Side};

/// A condition beyond the CEL filters that records of both sides must meet
/// to take part, judged by the engine (a pair's time window, which needs
/// recurrence expansion). It works like a filter on each side's native
/// record: a new record outside it is left alone, a linked record that
/// leaves it follows `on_leave`. Its `Debug` form names its settings (the
/// pair's config fingerprint includes it).
pub trait Scope: std::fmt::Debug + Send + Sync {
    /// Whether `record` is in scope; `Err` says why it cannot be judged.
    fn admits(&self, record: &Record) -> Result<bool, String>;
}

/// What happens when a linked record leaves its side's filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnLeave {
    /// Unlink it; both copies stay as they are.
    #[default]
    Keep,
    /// Delete its twin on the other side.
    Delete,
}

/// A pair's mapping keys, as read from config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MappingSpec {
    pub map: Vec<MapEntry>,
    pub only_fields: Option<Vec<String>>,
    pub filter_a: Option<String>,
    pub filter_b: Option<String>,
    pub on_leave: OnLeave,
    pub match_keys: Vec<MatchKey>,
    pub default_region: Option<String>,
}

/// Why a pair's mapping cannot be built; each names the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error(transparent)]
    Map(#[from] FieldMapError),
    #[error("filter_{side}: {error}")]
    Filter { side: Side, error: ExprError },
    #[error("{0}")]
    Match(String),
}

/// Everything compiled for one pair.
#[derive(Debug, Clone, Default)]
pub struct PairMapping {
    pub fields: FieldMap,
    filters: [Option<Expr>; 2],
    pub on_leave: OnLeave,
    pub matcher: Matcher,
    scope: Option<Arc<dyn Scope>>,
}

impl PairMapping {
    pub fn compile(spec: &MappingSpec) -> Result<PairMapping, MappingError> {
        let filter = |side: Side, source: &Option<String>| {
            source
                .as_deref()
                .map(Expr::compile)
                .transpose()
                .map_err(|error| MappingError::Filter { side, error })
        };
        Ok(PairMapping {
            fields: FieldMap::compile(&spec.map, spec.only_fields.as_deref())?,
            filters: [
                filter(Side::A, &spec.filter_a)?,
                filter(Side::B, &spec.filter_b)?,
            ],
            on_leave: spec.on_leave,
            matcher: Matcher::new(spec.match_keys.clone(), spec.default_region.as_deref())
                .map_err(MappingError::Match)?,
            scope: None,
        })
    }

    /// The mapping with `scope` judging both sides' records besides the
    /// filters.
    pub fn with_scope(mut self, scope: Arc<dyn Scope>) -> PairMapping {
        self.scope = Some(scope);
        self
    }

    /// True when the pair filters `side` (by `filter_a`/`filter_b` or a scope).
    pub fn filters(&self, side: Side) -> bool {
        self.filters[side_ix(side)].is_some() || self.scope.is_some()
    }

    /// Whether `side`'s native record passes its filter and the scope (none
    /// set: yes).
    pub fn admits(&self, side: Side, record: &Record) -> Result<bool, EvalError> {
        if let Some(expr) = &self.filters[side_ix(side)] {
            if !expr.test(record)? {
                return Ok(false);
            }
        }
        match &self.scope {
            None => Ok(true),
            Some(scope) => scope.admits(record).map_err(EvalError::Failed),
        }
    }
}

fn side_ix(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_record::{Kind, Value};

    fn at(local: &str) -> Value {
        Value::DateTime {
            local: local.into(),
            tz: Some("Europe/Berlin".into()),
        }
    }

    /// A weekly series with one moved occurrence.
    fn series() -> Record {
        Record::new(Kind::Event, "s")
            .with("summary", Value::text("Standup"))
            .with("start", at("2026-12-01T09:00:00"))
            .with(
                "recurrence",
                Value::map([("rrule", Value::text("FREQ=WEEKLY;COUNT=10"))]),
            )
            .with(
                "overrides",
                Value::List(vec![Value::map([
                    ("recurrence_id", at("2026-12-15T09:00:00")),
                    ("start", at("2026-12-16T09:00:00")),
                    ("summary", Value::text("Moved standup")),
                ])]),
            )
    }

    /// A filter judges the series as one record, overrides included, and
    /// the mapping carries master and overrides together both ways.
    #[test]
    fn a_series_is_never_split() {
        let spec = MappingSpec {
            map: vec![MapEntry::Rename {
                a: "summary".into(),
                b: "custom.title".into(),
            }],
            filter_a: Some("overrides.exists(o, o.summary == 'Moved standup')".into()),
            filter_b: Some("custom.title == 'Standup'".into()),
            ..MappingSpec::default()
        };
        let mapping = PairMapping::compile(&spec).expect("valid");
        assert_eq!(mapping.admits(Side::A, &series()), Ok(true));
        let mut plain = series();
        plain.remove("overrides");
        assert_eq!(mapping.admits(Side::A, &plain), Ok(false));

        let common = mapping
            .fields
            .to_common(Side::A, &series(), "s")
            .expect("maps");
        assert!(common.same_content(&series()));
        let on_b = mapping.fields.to_native(Side::B, &common);
        assert_eq!(on_b.get("overrides"), series().get("overrides"));
        assert_eq!(on_b.get("recurrence"), series().get("recurrence"));
        assert_eq!(mapping.admits(Side::B, &on_b), Ok(true));
        let back = mapping.fields.to_common(Side::B, &on_b, "s").expect("maps");
        assert!(back.same_content(&series()));
    }

    /// A scope judges both sides after their filters.
    #[test]
    fn a_scope_filters_both_sides() {
        #[derive(Debug)]
        struct Summer;
        impl Scope for Summer {
            fn admits(&self, record: &Record) -> Result<bool, String> {
                match record.get("summary").and_then(Value::as_text) {
                    Some(s) => Ok(s.contains("summer")),
                    None => Err("no summary".into()),
                }
            }
        }
        let spec = MappingSpec {
            filter_a: Some("summary != 'summer party (cancelled)'".into()),
            ..MappingSpec::default()
        };
        let mapping = PairMapping::compile(&spec).expect("valid");
        assert!(!mapping.filters(Side::B));
        let mapping = mapping.with_scope(Arc::new(Summer));
        assert!(mapping.filters(Side::A) && mapping.filters(Side::B));
        let event = |s: &str| Record::new(Kind::Event, "e").with("summary", Value::text(s));
        for side in Side::BOTH {
            assert_eq!(mapping.admits(side, &event("summer party")), Ok(true));
            assert_eq!(mapping.admits(side, &event("winter party")), Ok(false));
            assert!(mapping
                .admits(side, &Record::new(Kind::Event, "e"))
                .is_err());
        }
        assert_eq!(
            mapping.admits(Side::A, &event("summer party (cancelled)")),
            Ok(false)
        );
        assert_eq!(
            mapping.admits(Side::B, &event("summer party (cancelled)")),
            Ok(true)
        );
    }

    #[test]
    fn only_fields_keeps_a_series_whole() {
        let only = |fields: &[&str]| MappingSpec {
            only_fields: Some(fields.iter().map(|f| f.to_string()).collect()),
            ..MappingSpec::default()
        };
        let err = PairMapping::compile(&only(&["summary", "start", "recurrence"]))
            .expect_err("overrides left out");
        assert!(err.to_string().contains("`overrides`"), "{err}");
        assert!(PairMapping::compile(&only(&["summary", "overrides"])).is_err());
        let whole = PairMapping::compile(&only(&["summary", "start", "recurrence", "overrides"]))
            .expect("valid");
        let common = whole
            .fields
            .to_common(Side::A, &series(), "s")
            .expect("maps");
        assert!(common.same_content(&series()));
        // A pair that syncs no series fields at all is fine.
        assert!(PairMapping::compile(&only(&["summary", "start"])).is_ok());
    }
}
