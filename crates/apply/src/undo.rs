//! `undo RUN`: puts every item a run wrote back as it was before, newest
//! write first, each undo guarded by the version the run left and itself
//! journaled (so an undo can be undone).
//!
//! The state's links are left as they are: the next sync sees the restored
//! items as edits and carries them to the other side, so the run's effect is
//! rolled back on both sides. `plan` shows that before it happens.

use crate::{image, now, raw_of, Failure, Sides};
use std::collections::HashMap;
use tandem_record::FieldChange;
use tandem_state::{Batch, JournalEntry, StateError, StateStore, WriteOp};
use tandem_store::{NewItem, Store, Written};

/// What an undo did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UndoReport {
    pub restored: u64,
    /// Writes of the run that were not known to have happened (cut short
    /// by a crash) and so were left alone.
    pub skipped: u64,
    pub failures: Vec<Failure>,
}

/// Undoes the journal `entries` of a run, recording the undo writes under
/// `run`. `pairs` holds the stores of each pair still configured.
pub async fn undo_run(
    run: i64,
    entries: &[JournalEntry],
    pairs: &HashMap<String, Sides<'_>>,
    state: &mut dyn StateStore,
) -> Result<UndoReport, StateError> {
    let mut report = UndoReport::default();
    for entry in entries.iter().rev() {
        if !entry.done {
            report.skipped += 1;
            continue;
        }
        let Some(target) = pairs.get(&entry.pair).map(|s| s.store(entry.side)) else {
            report.failures.push(failure(
                entry,
                "the pair or store is no longer configured".into(),
            ));
            continue;
        };
        match undo_one(run, entry, target, state).await? {
            Ok(()) => report.restored += 1,
            Err(reason) => report.failures.push(failure(entry, reason)),
        }
    }
    Ok(report)
}

fn failure(entry: &JournalEntry, reason: String) -> Failure {
    Failure {
        store: entry.store.clone(),
        collection: entry.collection.clone(),
        item: entry.id.clone().unwrap_or_else(|| entry.uid.clone()),
        reason: format!("{} not undone: {reason}", entry.op.as_str()),
    }
}

/// Undoes one write; the outer error is the state's, the inner the store's.
async fn undo_one(
    run: i64,
    entry: &JournalEntry,
    store: &dyn Store,
    state: &mut dyn StateStore,
) -> Result<Result<(), String>, StateError> {
    let collection = entry.collection.as_str();
    let (Some(id), Some(version)) = (entry.id.as_deref(), entry.version_after.as_deref()) else {
        if entry.op != WriteOp::Delete {
            return Ok(Err(
                "the journal does not say where the item was written".into()
            ));
        }
        return restore_deleted(run, entry, store, state).await;
    };
    let mut undo = JournalEntry {
        seq: 0,
        run,
        before: None,
        after: entry.before.clone(),
        version_before: Some(version.to_string()),
        version_after: None,
        done: false,
        at: now(),
        ..entry.clone()
    };
    match entry.op {
        WriteOp::Create => {
            undo.op = WriteOp::Delete;
            undo.before = entry.after.clone();
            let seq = pending(state, &undo)?;
            match store.delete(collection, id, version).await {
                Ok(()) => done(state, entry, seq, None).map(Ok),
                Err(err) => Ok(Err(err.to_string())),
            }
        }
        WriteOp::Update => {
            let (Some(before), Some(after)) = (&entry.before, &entry.after) else {
                return Ok(Err("the journal holds no before-image".into()));
            };
            let current = match store.fetch(collection, &[id.to_string()]).await {
                Ok(mut items) => match items.pop() {
                    Some(Ok(item)) => item,
                    Some(Err(err)) => return Ok(Err(err.to_string())),
                    None => return Ok(Err("item not found".into())),
                },
                Err(err) => return Ok(Err(err.to_string())),
            };
            let changes: Vec<FieldChange> = after
                .record
                .changed_fields(&before.record)
                .into_iter()
                .map(|field| FieldChange {
                    value: before.record.get(&field).cloned(),
                    field,
                })
                .collect();
            undo.op = WriteOp::Update;
            undo.before = Some(image(&current));
            let seq = pending(state, &undo)?;
            match store.update(collection, &current, version, &changes).await {
                Ok(w) => done(state, entry, seq, Some(w)).map(Ok),
                Err(err) => Ok(Err(err.to_string())),
            }
        }
        WriteOp::Delete => restore_deleted(run, entry, store, state).await,
    }
}

async fn restore_deleted(
    run: i64,
    entry: &JournalEntry,
    store: &dyn Store,
    state: &mut dyn StateStore,
) -> Result<Result<(), String>, StateError> {
    let Some(before) = &entry.before else {
        return Ok(Err("the journal holds no before-image".into()));
    };
    let undo = JournalEntry {
        seq: 0,
        run,
        op: WriteOp::Create,
        id: None,
        before: None,
        after: Some(before.clone()),
        version_before: None,
        version_after: None,
        done: false,
        at: now(),
        ..entry.clone()
    };
    let seq = pending(state, &undo)?;
    let item = NewItem {
        record: before.record.clone(),
        raw: raw_of(before),
    };
    match store.create(&entry.collection, &item).await {
        Ok(w) => done(state, entry, seq, Some(w)).map(Ok),
        Err(err) => Ok(Err(err.to_string())),
    }
}

fn pending(state: &mut dyn StateStore, entry: &JournalEntry) -> Result<i64, StateError> {
    let seqs = state.journal_pending(std::slice::from_ref(entry))?;
    seqs.first()
        .copied()
        .ok_or_else(|| StateError::Corrupt("journal returned no sequence number".into()))
}

fn done(
    state: &mut dyn StateStore,
    entry: &JournalEntry,
    seq: i64,
    written: Option<Written>,
) -> Result<(), StateError> {
    let mut batch = Batch::new(&entry.pair, &entry.collection);
    batch.done.push((
        seq,
        written.as_ref().map(|w| w.id.clone()),
        written.map(|w| w.version),
        None,
    ));
    state.commit(&batch)
}
