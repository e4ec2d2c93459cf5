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
pub use fields::{FieldError, FieldMap, FieldMapError, MapEntry};
pub use matching::{fold_name, Ambiguity, Duplicate, Match, MatchKey, Matcher, Matches};

use tandem_record::{Record, Side};

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
        })
    }

    /// True when the pair filters `side`.
    pub fn filters(&self, side: Side) -> bool {
        self.filters[side_ix(side)].is_some()
    }

    /// Whether `side`'s native record passes its filter (no filter: yes).
    pub fn admits(&self, side: Side, record: &Record) -> Result<bool, EvalError> {
        match &self.filters[side_ix(side)] {
            None => Ok(true),
            Some(expr) => expr.test(record),
        }
    }
}

fn side_ix(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}
