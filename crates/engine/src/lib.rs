//! Runs Tandem's pairs end to end: reads the config, opens the stores and
//! the state, and for each pair lists both sides, plans, checks the safety
//! brakes and applies — or undoes a run, or settles a conflict.
//!
//! The flow, crate by crate: `tandem-store` (read an app) → `tandem-record`
//! (canonical records) → `tandem-plan` (pure decision) → `tandem-apply`
//! (guarded, journaled writes) → `tandem-state` (what we saw last). This
//! crate only wires them together; the `tandem` binary is a thin shell
//! over [`Engine`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tandem_engine::{Config, Engine, Options};
//! let config = Config::load(std::path::Path::new("tandem.toml"))?;
//! let mut engine = Engine::open(config)?;
//! let run = engine.sync(&[], &Options::default()).await?;
//! for pair in &run.pairs {
//!     println!("{}: {} writes", pair.name, pair.report.writes());
//! }
//! # Ok(()) }
//! ```

pub mod config;
mod expand;
mod mapped;
mod stores;
mod sync;
pub mod window;

pub use config::{Config, ConfigError, PairConfig};
pub use sync::{run_pair, Options, PairError, PairOutcome, CHUNK, SETTLE_EVERY};

use std::collections::{HashMap, HashSet};
use tandem_apply::{undo_run, Sides, UndoReport};
use tandem_record::Side;
use tandem_state::{Conflict, JournalEntry, Run, SqliteState, StateError, StateStore};
use tandem_store::Store;

/// A failure that stops a command.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The command's arguments do not fit the config (an unknown pair).
    #[error("{0}")]
    Usage(String),
    #[error("store `{store}`: {message}")]
    Store { store: String, message: String },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("pair `{pair}`: {source}")]
    Pair { pair: String, source: PairError },
}

/// The result of a `sync` or `plan`.
#[derive(Debug)]
pub struct RunOutcome {
    /// The run's id; `None` for a plan.
    pub run: Option<i64>,
    pub pairs: Vec<PairOutcome>,
    /// Pairs that stopped on an error (a store that cannot be opened or
    /// listed); the other pairs of the run went on.
    pub errors: Vec<EngineError>,
}

impl RunOutcome {
    /// True when some pair stopped at a safety brake.
    pub fn braked(&self) -> bool {
        self.pairs.iter().any(|p| p.brake.is_some())
    }

    /// True when some pair or item failed.
    pub fn failed(&self) -> bool {
        !self.errors.is_empty() || self.pairs.iter().any(|p| !p.report.failures.is_empty())
    }
}

/// One pair's standing, for `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PairStatus {
    pub name: String,
    pub a: String,
    pub b: String,
    pub kind: String,
    /// Items linked across the pair, over all collections.
    pub linked: u64,
    pub collections: Vec<String>,
    pub open_conflicts: u64,
}

/// Tandem, opened on one config file.
pub struct Engine {
    pub config: Config,
    state: Box<dyn StateStore>,
}

/// The two live stores of a pair.
struct OpenPair {
    a: Box<dyn Store>,
    b: Box<dyn Store>,
}

impl Engine {
    /// Opens the state database the config names (creating it if needed).
    pub fn open(config: Config) -> Result<Engine, EngineError> {
        let state = SqliteState::open(&config.state)?;
        Ok(Engine {
            config,
            state: Box::new(state),
        })
    }

    /// An engine over a given state store (tests, other backends).
    pub fn with_state(config: Config, state: Box<dyn StateStore>) -> Engine {
        Engine { config, state }
    }

    fn open_pair(&self, pair: &PairConfig) -> Result<OpenPair, EngineError> {
        let open = |name: &str| {
            let store = self
                .config
                .stores
                .get(name)
                .ok_or_else(|| EngineError::Usage(format!("no store named `{name}`")))?;
            stores::open(store, pair.kind).map_err(|message| {
                EngineError::Config(ConfigError::Invalid {
                    path: self.config.path.display().to_string(),
                    line: store.line,
                    message: format!("stores.{name}: {message}"),
                })
            })
        };
        // A side whose series the pair expands shows their occurrences.
        let shown = |side: Side, store: Box<dyn Store>| -> Box<dyn Store> {
            match pair.expand {
                Some((expanded, window)) if expanded == side => {
                    Box::new(expand::Expanded::new(store, pair.kind, window))
                }
                _ => store,
            }
        };
        Ok(OpenPair {
            a: shown(Side::A, open(&pair.a)?),
            b: shown(Side::B, open(&pair.b)?),
        })
    }

    /// Opens every store of every pair and lists its collections.
    pub async fn check(&self) -> Result<Vec<String>, EngineError> {
        let mut lines = Vec::new();
        for pair in &self.config.pairs {
            let open = self.open_pair(pair)?;
            for (name, store) in [(&pair.a, &open.a), (&pair.b, &open.b)] {
                let found = match store.collections().await {
                    Ok(c) => format!("{} collection(s)", c.len()),
                    Err(e) if e.kind == tandem_store::ErrorKind::NotFound => {
                        "empty (will be created)".to_string()
                    }
                    Err(e) => {
                        return Err(EngineError::Store {
                            store: name.clone(),
                            message: e.to_string(),
                        })
                    }
                };
                lines.push(format!("pair {}: store {name}: ok, {found}", pair.name));
            }
        }
        Ok(lines)
    }

    /// Plans (`opts.dry_run`) or syncs the named pairs (all when empty).
    pub async fn sync(
        &mut self,
        names: &[String],
        opts: &Options<'_>,
    ) -> Result<RunOutcome, EngineError> {
        let pairs: Vec<PairConfig> = self
            .config
            .select(names)
            .map_err(EngineError::Usage)?
            .into_iter()
            .cloned()
            .collect();
        let run = if opts.dry_run {
            None
        } else {
            Some(self.state.begin_run(
                "sync",
                &pairs.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
            )?)
        };
        let mut outcome = RunOutcome {
            run,
            pairs: Vec::new(),
            errors: Vec::new(),
        };
        let result = self
            .sync_pairs(&pairs, run.unwrap_or(0), opts, &mut outcome)
            .await;
        if let Some(run) = run {
            let verdict = match &result {
                Err(_) => "failed",
                Ok(()) if outcome.braked() => "stopped",
                Ok(()) if outcome.failed() => "partial",
                Ok(()) => "done",
            };
            self.state.finish_run(run, verdict)?;
        }
        result.map(|()| outcome)
    }

    async fn sync_pairs(
        &mut self,
        pairs: &[PairConfig],
        run: i64,
        opts: &Options<'_>,
        outcome: &mut RunOutcome,
    ) -> Result<(), EngineError> {
        // A pair whose store fails is reported and the next pair goes on;
        // a config error or a failing state database stops the run.
        for pair in pairs {
            let open = self.open_pair(pair)?;
            let sides = Sides {
                a: open.a.as_ref(),
                b: open.b.as_ref(),
                a_name: &pair.a,
                b_name: &pair.b,
            };
            match sync::run_pair(pair, sides, self.state.as_mut(), run, opts).await {
                Ok(result) => outcome.pairs.push(result),
                Err(PairError::State(e)) => return Err(EngineError::State(e)),
                Err(source) => outcome.errors.push(EngineError::Pair {
                    pair: pair.name.clone(),
                    source,
                }),
            }
        }
        Ok(())
    }

    /// Settles an inbox conflict by keeping side `keep`'s values for the
    /// clashing fields (other fields still merge), and syncs that item.
    pub async fn resolve(&mut self, id: i64, keep: Side) -> Result<RunOutcome, EngineError> {
        let conflict = self.state.conflict(id)?;
        let pair = self.config.pair(&conflict.pair).cloned().ok_or_else(|| {
            EngineError::Usage(format!(
                "conflict {id} belongs to pair `{}`, which is no longer configured",
                conflict.pair
            ))
        })?;
        let opts = Options {
            only: Some(HashSet::from([conflict.uid.clone()])),
            keep: HashMap::from([(conflict.uid.clone(), keep)]),
            ..Options::default()
        };
        let run = self
            .state
            .begin_run("resolve", std::slice::from_ref(&pair.name))?;
        let mut outcome = RunOutcome {
            run: Some(run),
            pairs: Vec::new(),
            errors: Vec::new(),
        };
        let result = self
            .sync_pairs(std::slice::from_ref(&pair), run, &opts, &mut outcome)
            .await;
        self.state
            .finish_run(run, if result.is_ok() { "done" } else { "failed" })?;
        result?;
        // The item may have been synced away by other means meanwhile.
        if self.state.conflicts()?.iter().any(|c| c.id == id) {
            self.state.settle(id)?;
        }
        Ok(outcome)
    }

    /// Puts back what run `run` wrote.
    pub async fn undo(&mut self, run: i64) -> Result<(i64, UndoReport), EngineError> {
        let journal = self.state.journal(run)?;
        if journal.is_empty() && !self.state.runs(usize::MAX)?.iter().any(|r| r.id == run) {
            return Err(EngineError::Usage(format!(
                "no run {run} (see `tandem history`)"
            )));
        }
        let mut opened: HashMap<String, OpenPair> = HashMap::new();
        for entry in &journal {
            if opened.contains_key(&entry.pair) {
                continue;
            }
            if let Some(pair) = self.config.pair(&entry.pair) {
                opened.insert(entry.pair.clone(), self.open_pair(pair)?);
            }
        }
        let mut sides: HashMap<String, Sides<'_>> = HashMap::new();
        for (name, o) in &opened {
            if let Some(pair) = self.config.pair(name) {
                sides.insert(
                    name.clone(),
                    Sides {
                        a: o.a.as_ref(),
                        b: o.b.as_ref(),
                        a_name: &pair.a,
                        b_name: &pair.b,
                    },
                );
            }
        }
        let pairs: Vec<String> = opened.keys().cloned().collect();
        let undo = self.state.begin_run("undo", &pairs)?;
        let report = undo_run(undo, &journal, &sides, self.state.as_mut()).await;
        for o in opened.values() {
            for store in [&o.a, &o.b] {
                if let Err(e) = store.flush().await {
                    tracing::warn!("flush after undo: {e}");
                }
            }
        }
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                self.state.finish_run(undo, "failed")?;
                return Err(e.into());
            }
        };
        self.state.finish_run(
            undo,
            if report.failures.is_empty() {
                "done"
            } else {
                "partial"
            },
        )?;
        Ok((undo, report))
    }

    pub fn status(&self) -> Result<Vec<PairStatus>, EngineError> {
        let conflicts = self.state.conflicts()?;
        let mut out = Vec::new();
        for pair in &self.config.pairs {
            let collections = self.state.collections(&pair.name)?;
            let mut linked = 0;
            for c in &collections {
                linked += self.state.links(&pair.name, c)?.len() as u64;
            }
            out.push(PairStatus {
                name: pair.name.clone(),
                a: pair.a.clone(),
                b: pair.b.clone(),
                kind: pair.kind.to_string(),
                linked,
                collections,
                open_conflicts: conflicts.iter().filter(|c| c.pair == pair.name).count() as u64,
            });
        }
        Ok(out)
    }

    pub fn conflicts(&self) -> Result<Vec<Conflict>, EngineError> {
        Ok(self.state.conflicts()?)
    }

    /// Runs newest first, each with its journal.
    pub fn history(&self, limit: usize) -> Result<Vec<(Run, Vec<JournalEntry>)>, EngineError> {
        let mut out = Vec::new();
        for run in self.state.runs(limit)? {
            let journal = self.state.journal(run.id)?;
            out.push((run, journal));
        }
        Ok(out)
    }
}
