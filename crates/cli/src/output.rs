//! What the commands print: plain lines for people, `--json` for programs,
//! failures on stderr, and a progress bar only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::io::IsTerminal;
use tandem_engine::{PairStatus, RunOutcome};
use tandem_state::{Conflict, JournalEntry, Run};

/// A progress bar on stderr, or none when stderr is not a terminal.
pub fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{spinner} {pos}/{len} items {wide_bar} {eta}")
    {
        bar.set_style(style);
    }
    Some(bar)
}

fn print_failures(outcome: &RunOutcome) {
    for pair in &outcome.pairs {
        if let Some(brake) = &pair.brake {
            eprintln!("pair {} stopped: {brake}", pair.name);
        }
        for f in &pair.report.failures {
            eprintln!("error: {f}");
        }
    }
    for e in &outcome.errors {
        eprintln!("error: {e}");
    }
}

pub fn plan(outcome: &RunOutcome, json: bool) {
    if json {
        let pairs: Vec<Value> = outcome
            .pairs
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "operations": p.operations,
                    "stopped": p.brake.as_ref().map(|b| b.to_string()),
                })
            })
            .collect();
        let errors: Vec<String> = outcome.errors.iter().map(|e| e.to_string()).collect();
        println!("{}", json!({ "pairs": pairs, "errors": errors }));
    } else {
        for p in &outcome.pairs {
            println!(
                "pair {}: {} operation(s), {} unchanged",
                p.name,
                p.operations.len(),
                p.unchanged
            );
            for op in &p.operations {
                let side = op.side.map(|s| s.as_str()).unwrap_or("-");
                let fields = if op.fields.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", op.fields.join(", "))
                };
                println!("  {:<8} {side}  {}{fields}  ({})", op.op, op.id, op.reason);
            }
        }
    }
    print_failures(outcome);
}

/// One summary line per pair.
pub fn summary(outcome: &RunOutcome) {
    for p in &outcome.pairs {
        let r = &p.report;
        if p.brake.is_some() {
            println!("{}: stopped by a safety brake, nothing written", p.name);
            continue;
        }
        println!(
            "{}: created {}/{}, updated {}/{}, deleted {}/{} (a/b); {} conflict(s), {} failed, {} unchanged",
            p.name,
            r.created[0],
            r.created[1],
            r.updated[0],
            r.updated[1],
            r.deleted[0],
            r.deleted[1],
            r.conflicts,
            r.failures.len(),
            p.unchanged
        );
    }
    if let Some(run) = outcome.run {
        println!("run {run}");
    }
    print_failures(outcome);
}

fn run_json(run: &Run, journal: &[JournalEntry]) -> Value {
    let writes: Vec<Value> = journal
        .iter()
        .map(|e| {
            let fields: Vec<String> = match (&e.before, &e.after) {
                (Some(b), Some(a)) => b.record.changed_fields(&a.record),
                (None, Some(a)) => a.record.fields.keys().cloned().collect(),
                _ => Vec::new(),
            };
            json!({
                "seq": e.seq,
                "pair": e.pair,
                "collection": e.collection,
                "side": e.side,
                "store": e.store,
                "op": e.op,
                "uid": e.uid,
                "id": e.id,
                "fields": fields,
                "done": e.done,
                "at": e.at,
            })
        })
        .collect();
    json!({
        "run": run.id,
        "command": run.command,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "outcome": run.outcome,
        "pairs": run.pairs,
        "writes": writes,
    })
}

pub fn history(runs: &[(Run, Vec<JournalEntry>)], json: bool) {
    if json {
        let runs: Vec<Value> = runs.iter().map(|(r, j)| run_json(r, j)).collect();
        println!("{}", json!({ "runs": runs }));
        return;
    }
    for (run, journal) in runs {
        println!(
            "run {} {} [{}] {}: {} write(s), pairs {}",
            run.id,
            run.command,
            run.outcome,
            run.started_at,
            journal.len(),
            run.pairs.join(", ")
        );
        for e in journal {
            println!(
                "  {:<6} {} {}/{} {}{}",
                e.op.as_str(),
                e.side.as_str(),
                e.store,
                e.id.as_deref().unwrap_or("?"),
                e.uid,
                if e.done { "" } else { " (unfinished)" }
            );
        }
    }
}

pub fn conflicts(list: &[Conflict], json: bool) {
    let value_of = |r: &Option<tandem_record::Record>, f: &str| {
        r.as_ref().and_then(|r| r.get(f)).map(|v| v.to_string())
    };
    if json {
        let items: Vec<Value> = list
            .iter()
            .map(|c| {
                let values: Vec<Value> = c
                    .fields
                    .iter()
                    .map(|f| json!({"field": f, "a": value_of(&c.a, f), "b": value_of(&c.b, f), "base": value_of(&c.base, f)}))
                    .collect();
                json!({
                    "id": c.id,
                    "pair": c.pair,
                    "collection": c.collection,
                    "item": c.uid,
                    "fields": c.fields,
                    "values": values,
                    "created_at": c.created_at,
                })
            })
            .collect();
        println!("{}", json!({ "conflicts": items }));
        return;
    }
    if list.is_empty() {
        println!("no open conflicts");
    }
    for c in list {
        println!("conflict {} in pair {}: {}", c.id, c.pair, c.uid);
        for f in c.fields.iter() {
            println!(
                "  {f}: a = {:?}, b = {:?}",
                value_of(&c.a, f).unwrap_or_default(),
                value_of(&c.b, f).unwrap_or_default()
            );
        }
        println!("  settle with: tandem resolve {} --keep a|b", c.id);
    }
}

pub fn status(pairs: &[PairStatus], runs: &[(Run, Vec<JournalEntry>)], json: bool) {
    if json {
        let runs: Vec<Value> = runs.iter().map(|(r, j)| run_json(r, j)).collect();
        println!("{}", json!({ "pairs": pairs, "recent_runs": runs }));
        return;
    }
    for p in pairs {
        println!(
            "pair {} ({} ↔ {}, {}): {} linked item(s) in {} collection(s), {} open conflict(s)",
            p.name,
            p.a,
            p.b,
            p.kind,
            p.linked,
            p.collections.len(),
            p.open_conflicts
        );
    }
    if let Some((last, journal)) = runs.first() {
        println!(
            "last run: {} {} [{}], {} write(s)",
            last.id,
            last.command,
            last.outcome,
            journal.len()
        );
    }
}
