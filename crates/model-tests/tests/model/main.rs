//! Proving Tandem does not lose or duplicate records (issue 6, parts 1 and
//! 4): a model-based randomized test with crash points over two
//! `MemoryStore`s, the real planner, apply and SQLite state; the safety
//! brakes; and small regression tests for what the model found.
//!
//! - `faults`: store and state wrappers that fail or "crash" at named points.
//! - `harness`: the bench (two stores, a state, a pair) and one sync run.
//! - `model`: random users and the oracle of what a sync must do.
//! - `randomized`: the seeded cases and their figures.
//! - `brakes`: a side emptied, too many deletes, a lost or rolled-back state.
//! - `regressions`: minimized cases the model found.

mod brakes;
mod faults;
mod harness;
mod model;
mod randomized;
mod regressions;
