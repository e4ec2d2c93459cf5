//! The randomized model test: seeded cases, each a random pair policy and a
//! few rounds of "both users edit, sync (perhaps cut short at a crash point),
//! restart, check, sync again and check nothing moves".
//!
//! `TANDEM_MODEL_CASES` (default 10,000) sets the number of cases and
//! `TANDEM_MODEL_SEED` (default 0) the first seed; a failure prints its seed
//! and the steps that led to it.

use crate::faults::CrashPoint;
use crate::harness::{pair_config, Bench, Ended, Synced};
use crate::model::{expect, fits, random_policy, two_way, Expect, Rng, UserOps, Users};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use tandem_record::{Record, Side};
use tandem_state::{version_key, Known, SeenKey, StateStore};
use tandem_store::ROOT;

/// The figures of a batch of cases.
#[derive(Debug, Default)]
struct Figures {
    cases: u64,
    two_way: u64,
    syncs_checked: u64,
    /// Per crash point: (chosen, fired).
    points: [(u64, u64); CrashPoint::NAMES],
    point_names: [&'static str; CrashPoint::NAMES],
    crashes: u64,
    conflicts: u64,
    sync_writes: u64,
    ops: UserOps,
    items_checked: u64,
    /// Inbox entries left open for items gone from both sides (known bug).
    stale_inbox: u64,
}

impl Figures {
    fn add(&mut self, o: &Figures) {
        self.cases += o.cases;
        self.two_way += o.two_way;
        self.syncs_checked += o.syncs_checked;
        for i in 0..CrashPoint::NAMES {
            self.points[i].0 += o.points[i].0;
            self.points[i].1 += o.points[i].1;
            if !o.point_names[i].is_empty() {
                self.point_names[i] = o.point_names[i];
            }
        }
        self.crashes += o.crashes;
        self.conflicts += o.conflicts;
        self.sync_writes += o.sync_writes;
        self.ops.creates += o.ops.creates;
        self.ops.correlated += o.ops.correlated;
        self.ops.updates += o.ops.updates;
        self.ops.deletes += o.ops.deletes;
        self.items_checked += o.items_checked;
        self.stale_inbox += o.stale_inbox;
    }
}

fn random_point(rng: &mut Rng) -> CrashPoint {
    let n = 1 + rng.below(3);
    let k = 1 + rng.below(2);
    match rng.below(CrashPoint::NAMES as u64) {
        0 => CrashPoint::BeforeWrite(n),
        1 => CrashPoint::AfterWrite(n),
        2 => CrashPoint::LostReply(n),
        3 => CrashPoint::WriteRefused(n),
        4 => CrashPoint::FlushFails(*rng.pick(&Side::BOTH)),
        5 => CrashPoint::JournalFails(k),
        6 => CrashPoint::AfterJournal(k),
        7 => CrashPoint::CommitFails(k),
        _ => CrashPoint::AfterCommit(k),
    }
}

/// An item on one side: version and record.
type Snapshot = BTreeMap<String, (String, Record)>;

fn snapshot(bench: &Bench, side: Side) -> Snapshot {
    let store = bench.store(side);
    store
        .records(ROOT)
        .into_iter()
        .map(|r| {
            let version = store.item(ROOT, &r.uid).expect("listed item").version;
            (r.uid.clone(), (version, r))
        })
        .collect()
}

fn clean(s: &Synced, what: &str) -> Result<(), String> {
    match &s.ended {
        Ended::Done(o) if o.report.failures.is_empty() && o.brake.is_none() => Ok(()),
        Ended::Done(o) => Err(format!(
            "{what}: failures {:?}, brake {:?}",
            o.report.failures, o.brake
        )),
        other => Err(format!("{what}: {other:?}")),
    }
}

/// Checks the sides and the state against the expectations.
fn check(
    bench: &Bench,
    users: &Users,
    expects: &BTreeMap<String, Expect>,
    before: &[Snapshot; 2],
    figures: &mut Figures,
) -> Result<(), String> {
    let after = [snapshot(bench, Side::A), snapshot(bench, Side::B)];
    let links: BTreeMap<String, Known> = bench
        .state
        .links("p", ROOT)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|l| (l.uid.clone(), l))
        .collect();
    let uids: Vec<String> = links.keys().cloned().collect();
    let bases = bench
        .state
        .bases("p", ROOT, &uids)
        .map_err(|e| e.to_string())?;
    for (i, side) in Side::BOTH.into_iter().enumerate() {
        // No record twice: every item is one a user made (ids are UIDs in a
        // MemoryStore, so a UID cannot repeat on a side).
        for uid in after[i].keys() {
            if !expects.contains_key(uid) || !users.uids.contains(uid) {
                return Err(format!(
                    "duplicated: side {side} holds unexpected item {uid}"
                ));
            }
        }
    }
    for (uid, e) in expects {
        figures.items_checked += 1;
        for (i, side) in Side::BOTH.into_iter().enumerate() {
            let shape = if side == Side::A { &e.a } else { &e.b };
            match (shape, after[i].get(uid)) {
                (None, None) => {}
                (Some(_), None) => return Err(format!("lost: {uid} missing on side {side}")),
                (None, Some((_, r))) => {
                    return Err(format!("resurrected: {uid} on side {side}: {r:?}"))
                }
                (Some(shape), Some((_, r))) => {
                    fits(r, shape).map_err(|m| format!("{uid} on side {side}: {m}; {r:?}"))?
                }
            }
            if e.conflict {
                let (was, now) = (before[i].get(uid), after[i].get(uid));
                if was.map(|w| &w.0) != now.map(|n| &n.0) {
                    return Err(format!("{uid} is in the inbox but side {side} was written"));
                }
            }
        }
        match (&e.base, links.get(uid)) {
            (None, None) => {}
            (None, Some(l)) => return Err(format!("{uid}: unexpected link {l:?}")),
            (Some(_), None) => return Err(format!("{uid}: no link")),
            (Some(base), Some(link)) => {
                let saved = bases.get(uid).ok_or(format!("{uid}: no base"))?;
                if !saved.same_content(base) {
                    return Err(format!("{uid}: state base {saved:?}, want {base:?}"));
                }
                if !e.conflict {
                    for (i, seen) in [&link.a, &link.b].into_iter().enumerate() {
                        let want = after[i].get(uid).map(|(v, _)| SeenKey {
                            id: uid.clone(),
                            key: version_key(v),
                        });
                        if *seen != want {
                            return Err(format!("{uid}: link {link:?} does not match the sides"));
                        }
                    }
                }
            }
        }
    }
    if let Some(uid) = links.keys().find(|u| !expects.contains_key(*u)) {
        return Err(format!("{uid}: link for an item the model does not know"));
    }
    let inbox: BTreeSet<String> = bench
        .state
        .conflicts()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|c| c.uid)
        .collect();
    let want: BTreeSet<String> = expects
        .iter()
        .filter(|(_, e)| e.conflict)
        .map(|(u, _)| u.clone())
        .collect();
    // Known bug (see `regressions::inbox_entry_of_an_item_deleted_on_both_sides`):
    // an unlinked item in the inbox that both users then delete is never
    // looked at again, so its entry stays open. Tolerated (and counted)
    // only for items gone from both sides with no link.
    for uid in inbox.difference(&want) {
        let gone = !after[0].contains_key(uid) && !after[1].contains_key(uid);
        if !gone || links.contains_key(uid) {
            return Err(format!("inbox {inbox:?}, want {want:?}"));
        }
        figures.stale_inbox += 1;
    }
    if let Some(uid) = want.difference(&inbox).next() {
        return Err(format!("{uid} is not in the inbox {inbox:?}"));
    }
    figures.conflicts += want.len() as u64;
    Ok(())
}

/// One seeded case; `Err` carries what went wrong.
fn run_case(seed: u64, figures: &mut Figures, log: &mut Vec<String>) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let (direction, conflict, owners) = random_policy(&mut rng);
    log.push(format!(
        "policy: direction={direction} conflict={conflict} owners={owners:?}"
    ));
    let mut bench = Bench::in_memory(pair_config(&direction, &conflict, "100%", &owners));
    let policy = bench.pair.policy.clone();
    figures.cases += 1;
    figures.two_way += u64::from(two_way(&policy));
    let mut users = Users::new();
    let mut base: BTreeMap<String, Record> = BTreeMap::new();
    let rounds = 2 + rng.below(3);
    for round in 0..rounds {
        log.push(format!("-- round {round}"));
        users.act(&mut rng, Side::A, &bench.a, &bench.b, 4, log);
        users.act(&mut rng, Side::B, &bench.b, &bench.a, 4, log);
        let before = [snapshot(&bench, Side::A), snapshot(&bench, Side::B)];
        let uids: BTreeSet<&String> = before[0]
            .keys()
            .chain(before[1].keys())
            .chain(base.keys())
            .collect();
        let expects: BTreeMap<String, Expect> = uids
            .into_iter()
            .map(|uid| {
                let e = expect(
                    &policy,
                    base.get(uid),
                    before[0].get(uid).map(|(_, r)| r),
                    before[1].get(uid).map(|(_, r)| r),
                );
                (uid.clone(), e)
            })
            .collect();

        let point = rng.chance(50).then(|| random_point(&mut rng));
        let first = bench.sync(point, true);
        figures.sync_writes += first.writes[0] + first.writes[1];
        log.push(format!(
            "sync with {point:?}: fired {}, ended {:?}, writes {:?}",
            first.fired,
            match &first.ended {
                Ended::Done(o) => format!("done, failures {:?}", o.report.failures),
                other => format!("{other:?}"),
            },
            first.writes
        ));
        if let Some(p) = point {
            figures.points[p.index()].0 += 1;
            figures.point_names[p.index()] = p.name();
            figures.points[p.index()].1 += u64::from(first.fired);
        }
        let settled = if first.fired {
            figures.crashes += u64::from(matches!(first.ended, Ended::Crashed));
            // Restart on the same state.
            let again = bench.sync(None, true);
            log.push(format!("restart: writes {:?}", again.writes));
            figures.sync_writes += again.writes[0] + again.writes[1];
            again
        } else {
            first
        };
        clean(&settled, "sync")?;
        check(&bench, &users, &expects, &before, figures)?;
        figures.syncs_checked += 1;
        base = expects
            .iter()
            .filter_map(|(u, e)| e.base.clone().map(|b| (u.clone(), b)))
            .collect();

        // Quiescence: nothing changed, so nothing is written.
        let links_before = bench.state.links("p", ROOT).map_err(|e| e.to_string())?;
        let quiet = bench.sync(None, true);
        clean(&quiet, "second sync")?;
        if quiet.writes != [0, 0] {
            return Err(format!("second sync wrote {:?}", quiet.writes));
        }
        let links_after = bench.state.links("p", ROOT).map_err(|e| e.to_string())?;
        if links_before != links_after {
            return Err(format!(
                "second sync moved links: {links_before:?} -> {links_after:?}"
            ));
        }
    }
    figures.ops.creates += users.ops.creates;
    figures.ops.correlated += users.ops.correlated;
    figures.ops.updates += users.ops.updates;
    figures.ops.deletes += users.ops.deletes;
    Ok(())
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

#[test]
fn randomized_pairs_converge_without_loss_or_duplicates() {
    let cases = env_u64("TANDEM_MODEL_CASES", 10_000);
    let first_seed = env_u64("TANDEM_MODEL_SEED", 0);
    let threads = 2;
    let started = Instant::now();
    let failed = AtomicBool::new(false);
    let failure: Mutex<Option<(u64, String, Vec<String>)>> = Mutex::new(None);
    let total = Mutex::new(Figures::default());
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (failed, failure, total) = (&failed, &failure, &total);
            scope.spawn(move || {
                let mut figures = Figures::default();
                let mut i = t;
                while i < cases && !failed.load(Ordering::Relaxed) {
                    let seed = first_seed + i;
                    let mut log = Vec::new();
                    if let Err(message) = run_case(seed, &mut figures, &mut log) {
                        failed.store(true, Ordering::Relaxed);
                        let mut f = failure.lock().expect("failure lock");
                        if f.as_ref().is_none_or(|(s, _, _)| seed < *s) {
                            *f = Some((seed, message, log));
                        }
                    }
                    i += threads;
                }
                total.lock().expect("figures lock").add(&figures);
            });
        }
    });
    let figures = total.into_inner().expect("figures");
    if let Some((seed, message, log)) = failure.into_inner().expect("failure") {
        panic!(
            "model case failed at seed {seed}: {message}\n\
             rerun: TANDEM_MODEL_SEED={seed} TANDEM_MODEL_CASES=1 cargo test -p tandem-model-tests randomized\n\
             steps:\n  {}",
            log.join("\n  ")
        );
    }
    eprintln!(
        "model: {} cases ({} two-way), {} syncs checked, {} items checked, 0 lost, 0 duplicated, {:.1} s",
        figures.cases,
        figures.two_way,
        figures.syncs_checked,
        figures.items_checked,
        started.elapsed().as_secs_f64()
    );
    eprintln!(
        "model: users made {} creates ({} with a UID the other side holds), {} updates, {} deletes; syncs made {} writes; {} inbox entries checked",
        figures.ops.creates,
        figures.ops.correlated,
        figures.ops.updates,
        figures.ops.deletes,
        figures.sync_writes,
        figures.conflicts
    );
    for (i, (chosen, fired)) in figures.points.iter().enumerate() {
        eprintln!(
            "model: fault {:<52} chosen {chosen:>5}, fired {fired:>5}",
            figures.point_names[i]
        );
    }
    eprintln!(
        "model: {} simulated crashes, each followed by a restart; {} stale inbox entries (known bug)",
        figures.crashes, figures.stale_inbox
    );
}
