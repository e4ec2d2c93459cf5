//! Safety brakes: checks on a whole pair, made before anything is written,
//! that stop a run which would delete too much.

use std::fmt;
use std::str::FromStr;
use tandem_record::Side;

/// The most deletions a run may make on one side before it stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxDelete {
    /// A share of the items the side held at the last sync (0–100).
    Percent(f64),
    /// An absolute count.
    Count(u64),
}

impl Default for MaxDelete {
    fn default() -> Self {
        MaxDelete::Percent(50.0)
    }
}

impl FromStr for MaxDelete {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("`{s}` is not a percentage like \"50%\""))?;
            if !(0.0..=100.0).contains(&p) {
                return Err(format!("`{s}`: a percentage must be between 0% and 100%"));
            }
            Ok(MaxDelete::Percent(p))
        } else {
            s.parse().map(MaxDelete::Count).map_err(|_| {
                format!("`{s}` is neither a count like \"100\" nor a percentage like \"50%\"")
            })
        }
    }
}

impl fmt::Display for MaxDelete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxDelete::Percent(p) => write!(f, "{p}%"),
            MaxDelete::Count(n) => write!(f, "{n}"),
        }
    }
}

/// What the planner knows about one side before writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SideCounts {
    /// Items linked at the last sync.
    pub linked: u64,
    /// Items listed now.
    pub listed: u64,
    /// Deletions the plan would make on this side.
    pub deletes: u64,
}

/// Why a run stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum Brake {
    /// A side that held linked items now lists none.
    SideEmptied { side: Side, linked: u64 },
    /// More deletions than `max_delete` allows.
    TooManyDeletes {
        side: Side,
        deletes: u64,
        linked: u64,
        max: MaxDelete,
    },
}

impl fmt::Display for Brake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Brake::SideEmptied { side, linked } => write!(
                f,
                "side {side} held {linked} synced items and is now empty; nothing was written (use --force if this is intended)"
            ),
            Brake::TooManyDeletes {
                side,
                deletes,
                linked,
                max,
            } => write!(
                f,
                "{deletes} of {linked} items would be deleted on side {side}, above max_delete = {max}; nothing was written (use --force if this is intended)"
            ),
        }
    }
}

/// The first brake that applies, if any.
pub fn check_brakes(a: SideCounts, b: SideCounts, max: MaxDelete) -> Option<Brake> {
    for (side, counts, other) in [(Side::A, a, b), (Side::B, b, a)] {
        if counts.linked > 0 && counts.listed == 0 && other.listed > 0 {
            return Some(Brake::SideEmptied {
                side,
                linked: counts.linked,
            });
        }
    }
    for (side, counts) in [(Side::A, a), (Side::B, b)] {
        let over = match max {
            MaxDelete::Count(n) => counts.deletes > n,
            MaxDelete::Percent(p) => {
                counts.deletes > 0 && (counts.deletes as f64) > (counts.linked as f64) * p / 100.0
            }
        };
        if over {
            return Some(Brake::TooManyDeletes {
                side,
                deletes: counts.deletes,
                linked: counts.linked,
                max,
            });
        }
    }
    None
}
