//! The test bench shared by every scenario here: two [`MemoryStore`]s, a
//! [`SqliteState`] and a pair config, and [`Bench::sync`], which runs the
//! real `run_pair` once — optionally with a [`CrashPoint`] — the way a fresh
//! process would.

use crate::faults::{quiet_crashes, CrashPoint, Fault, FaultyState, FaultyStore};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use tandem_apply::Sides;
use tandem_engine::{run_pair, Config, Options, PairConfig, PairOutcome};
use tandem_record::Side;
use tandem_state::{SqliteState, StateStore, WriteOp};
use tandem_store::{MemoryStore, ROOT};

/// A pair config read from TOML, so fields added to `PairConfig` later get
/// their defaults. `owners` are `[pairs.fields]` lines (`org = "b"`).
pub fn pair_config(
    direction: &str,
    conflict: &str,
    max_delete: &str,
    owners: &[String],
) -> PairConfig {
    let mut toml = format!(
        "[stores.a]\ntype = \"vdir\"\npath = \"/nonexistent/a\"\n\
         [stores.b]\ntype = \"vdir\"\npath = \"/nonexistent/b\"\n\
         [[pairs]]\nname = \"p\"\na = \"a\"\nb = \"b\"\nkind = \"contact\"\n\
         direction = \"{direction}\"\nconflict = \"{conflict}\"\nmax_delete = \"{max_delete}\"\n"
    );
    if !owners.is_empty() {
        toml.push_str("[pairs.fields]\n");
        for line in owners {
            toml.push_str(line);
            toml.push('\n');
        }
    }
    let mut config =
        Config::parse(Path::new("/nonexistent/tandem.toml"), &toml).expect("valid pair config");
    config.pairs.remove(0)
}

/// How one sync ended.
#[derive(Debug)]
pub enum Ended {
    Done(Box<PairOutcome>),
    /// `run_pair` returned an error (a failed state call): the run stopped.
    Failed(#[allow(dead_code)] String),
    /// The process "died" at the crash point.
    Crashed,
}

/// What one sync did.
#[derive(Debug)]
pub struct Synced {
    pub ended: Ended,
    pub run: i64,
    /// True when the crash point was reached.
    pub fired: bool,
    /// Store writes made, per side.
    pub writes: [u64; 2],
}

impl Synced {
    /// The outcome of a run that finished.
    pub fn outcome(&self) -> &PairOutcome {
        match &self.ended {
            Ended::Done(o) => o,
            other => panic!("the sync did not finish: {other:?}"),
        }
    }
}

/// Two stores, a state and a pair.
pub struct Bench {
    pub a: MemoryStore,
    pub b: MemoryStore,
    pub state: SqliteState,
    pub pair: PairConfig,
    runtime: tokio::runtime::Runtime,
}

fn new_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime")
}

impl Bench {
    pub fn new(pair: PairConfig, state: SqliteState) -> Bench {
        quiet_crashes();
        Bench {
            a: MemoryStore::new(),
            b: MemoryStore::new(),
            state,
            pair,
            runtime: new_runtime(),
        }
    }

    pub fn in_memory(pair: PairConfig) -> Bench {
        Bench::new(pair, SqliteState::in_memory().expect("in-memory state"))
    }

    pub fn store(&self, side: Side) -> &MemoryStore {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    /// Runs the pair once, as a new process would; `force` passes the brakes.
    pub fn sync(&mut self, point: Option<CrashPoint>, force: bool) -> Synced {
        let fault = Fault::new(point);
        let before = [self.a.writes(), self.b.writes()];
        let a = FaultyStore {
            inner: self.a.clone(),
            side: Side::A,
            fault: fault.clone(),
        };
        let b = FaultyStore {
            inner: self.b.clone(),
            side: Side::B,
            fault: fault.clone(),
        };
        let run = self
            .state
            .begin_run("sync", std::slice::from_ref(&self.pair.name))
            .expect("begin run");
        let mut state = FaultyState {
            inner: &mut self.state,
            fault: fault.clone(),
        };
        let sides = Sides {
            a: &a,
            b: &b,
            a_name: "a",
            b_name: "b",
        };
        let opts = Options {
            force,
            ..Options::default()
        };
        let pair = &self.pair;
        let runtime = &self.runtime;
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            runtime.block_on(run_pair(pair, sides, &mut state, run, &opts))
        }));
        let ended = match result {
            Ok(Ok(outcome)) => Ended::Done(Box::new(outcome)),
            Ok(Err(e)) => Ended::Failed(e.to_string()),
            Err(payload) => {
                if payload.downcast_ref::<crate::faults::Crash>().is_none() {
                    std::panic::resume_unwind(payload);
                }
                Ended::Crashed
            }
        };
        if matches!(ended, Ended::Crashed) {
            // A dead process leaves its run "running"; the runtime is
            // replaced like the process would be.
            self.runtime = new_runtime();
        } else {
            let verdict = match &ended {
                Ended::Done(o) if o.brake.is_some() => "stopped",
                Ended::Done(_) => "done",
                _ => "failed",
            };
            self.state.finish_run(run, verdict).expect("finish run");
        }
        Synced {
            ended,
            run,
            fired: fault.fired(),
            writes: [self.a.writes() - before[0], self.b.writes() - before[1]],
        }
    }

    /// Deletions the journal holds for `run`, per side.
    pub fn journaled_deletes(&self, run: i64) -> [u64; 2] {
        let mut n = [0, 0];
        for e in self.state.journal(run).expect("journal") {
            if e.op == WriteOp::Delete {
                n[usize::from(e.side == Side::B)] += 1;
            }
        }
        n
    }

    /// Item counts per side (root collection).
    pub fn counts(&self) -> [usize; 2] {
        [self.a.records(ROOT).len(), self.b.records(ROOT).len()]
    }
}
