//! One pair, end to end, as a checklist: load the links → list both sides
//! → find what moved → safety brakes → fetch, plan and apply chunk by chunk
//! → commit state per chunk.
//!
//! Cost follows changes: an item whose version did not move on either side
//! is never fetched, so a no-op run is two listings plus hash lookups; when
//! both sides have a change feed, only the links the changes touch are
//! loaded. The feed token saved at the end moves past the run's own writes
//! when nothing else changed meanwhile, so they are not read back next run.
//! Memory is bounded by the chunk size: of the smaller side's new items only
//! UID, id and version are held to pair them by UID, and each is read again
//! when its twin turns up (a match ladder, which compares whole records,
//! holds the unpaired ones).

use crate::config::PairConfig;
use std::collections::{HashMap, HashSet};
use tandem_apply::{
    begin_chunk, Context, Echoes, Failure, Fetched, InFlight, Report, Settling, Sides, Unsettled,
};
use tandem_plan::{
    check_brakes, decide, Brake, ConflictRule, Current, Entry, Operation, Policy, SideCounts,
};
use tandem_record::Side;
use tandem_state::{version_key, Known, SeenKey, StateError, StateStore};
use tandem_store::{Changes, ErrorKind, Item, Started, ROOT};

/// Items planned and applied together; bounds memory and the size of
/// state transactions.
pub const CHUNK: usize = 500;

/// Writes (or items linked without a write) made before the stores are
/// flushed and the state records them. Their merged records wait in memory
/// until then, two batches at a time (one flushing while the next is
/// written; a 100k-item first sync peaked 45 MB higher at 10,000); each
/// settle costs one `syncfs` per written folder, made in the background.
pub const SETTLE_EVERY: u64 = 1_000;

/// How a pair is run.
#[derive(Default)]
pub struct Options<'a> {
    /// Plan only: fetch and decide, write nothing.
    pub dry_run: bool,
    /// Run even when a safety brake applies.
    pub force: bool,
    /// Only these UIDs (used by `resolve`).
    pub only: Option<HashSet<String>>,
    /// Per-UID winners chosen with `resolve`.
    pub keep: HashMap<String, Side>,
    /// Called with (items done, items to do) as chunks finish.
    pub progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
}

/// What happened to a pair.
#[derive(Debug, Default)]
pub struct PairOutcome {
    pub name: String,
    pub report: Report,
    /// The plan, for `plan` output (item operations; quiet items left out);
    /// only collected for a dry run.
    pub operations: Vec<Operation>,
    /// Set when a brake stopped the pair before any write.
    pub brake: Option<Brake>,
    /// Items looked at (changed or new on some side).
    pub examined: u64,
    /// Linked items that moved on neither side.
    pub unchanged: u64,
}

/// A failure that stops a pair.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    #[error("store `{store}`: {error}")]
    Store {
        store: String,
        error: tandem_store::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

/// One collection's listings joined with its links.
struct Scan {
    collection: String,
    /// The links of the collection; with change feeds on both sides, only
    /// those whose items changed.
    links: Vec<Known>,
    /// Change-feed tokens (as the stores gave them) to save once the
    /// collection synced cleanly.
    tokens: [Option<String>; 2],
    /// True when both listings hold every item (no saved feed token was
    /// used), so an unlinked UID absent from them is on neither side.
    complete: bool,
    /// Per side: items linked at the last sync, and items there now
    /// (counted over every link, also when only some were loaded).
    counts: [SideCounts; 2],
    /// Where each link's items stand now, parallel to `links`.
    presence: Vec<[Presence; 2]>,
    /// The listed version (as [`version_key`]) of each link's items, where
    /// listed, parallel to `links`. (The listings themselves are let go
    /// once joined: a 100k-item collection's two take 20 MB.)
    listed: Vec<[Option<u64>; 2]>,
    /// Ids on each side that no link claims.
    new: [Vec<String>; 2],
    missing: [bool; 2],
}

/// A listing: id → a hash of the version. Versions only need comparing
/// here (writes take the exact version of the fetched item), and a hash
/// keeps a 100k-item listing small.
type Listing = HashMap<String, Spot, foldhash::fast::RandomState>;

/// A listed item: its version (as [`version_key`]), and whether a link
/// claims it (unclaimed ones are new).
#[derive(Debug, Clone, Copy)]
struct Spot {
    version: u64,
    claimed: bool,
}

impl Spot {
    /// Unclaimed, at the version whose [`version_key`] is `key`.
    fn at(key: u64) -> Spot {
        Spot {
            version: key,
            claimed: false,
        }
    }

    /// A listed item's id and its unclaimed spot.
    fn listed(item: tandem_store::Listed) -> (String, Spot) {
        (item.id, Spot::at(version_key(&item.version)))
    }
}

/// A linked item on one side, judged from the listing alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    /// Not linked on this side, or not listed any more.
    Absent,
    /// Listed at the version saved with the link.
    Same,
    /// Listed at another version.
    Moved,
}

fn ix(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

fn linked(link: &Known, side: Side) -> Option<&SeenKey> {
    match side {
        Side::A => link.a.as_ref(),
        Side::B => link.b.as_ref(),
    }
}

/// Runs one pair.
pub async fn run_pair(
    pair: &PairConfig,
    sides: Sides<'_>,
    state: &mut dyn StateStore,
    run: i64,
    opts: &Options<'_>,
) -> Result<PairOutcome, PairError> {
    let mut outcome = PairOutcome {
        name: pair.name.clone(),
        ..PairOutcome::default()
    };
    let store_err = |side: Side| {
        let store = sides.name(side).to_string();
        move |error| PairError::Store { store, error }
    };

    // Collections: every one either side holds, plus those we synced before.
    let mut names: Vec<String> = vec![ROOT.to_string()];
    let (found_a, found_b) = tokio::join!(sides.a.collections(), sides.b.collections());
    for (side, found) in [(Side::A, found_a), (Side::B, found_b)] {
        match found {
            Ok(list) => names.extend(list),
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(store_err(side)(e)),
        }
    }
    names.extend(state.collections(&pair.name)?);
    names.sort();
    names.dedup();

    // Change-feed tokens are only trusted under the config they were made
    // with: a changed mapping or filter must look at every item again.
    let config = {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        format!("{pair:?}").hash(&mut h);
        format!("{:016x}", h.finish())
    };
    let mut scans = Vec::new();
    for collection in names {
        scans.push(scan(&pair.name, &collection, sides, state, Some(&config)).await?);
    }

    // Safety brakes, before anything is written.
    let mut counts = [SideCounts::default(); 2];
    for s in &scans {
        for side in Side::BOTH {
            let other = side.other();
            let c = &mut counts[ix(side)];
            c.linked += s.counts[ix(side)].linked;
            c.listed += s.counts[ix(side)].listed;
            if pair.policy.direction.writes(side) {
                // A delete happens on `side` when the other side lost the item
                // and this side's copy did not move.
                c.deletes += s
                    .links
                    .iter()
                    .zip(&s.presence)
                    .filter(|(l, p)| {
                        linked(l, other).is_some()
                            && p[ix(other)] == Presence::Absent
                            && p[ix(side)] == Presence::Same
                    })
                    .count() as u64;
            }
        }
    }
    if let Some(brake) = check_brakes(counts[0], counts[1], pair.max_delete) {
        if !opts.force {
            outcome.brake = Some(brake);
            return Ok(outcome);
        }
        tracing::warn!(pair = %pair.name, "{brake}; going on because of --force");
    }

    let total: u64 = scans.iter().map(work_estimate).sum();
    let mut done = 0u64;
    for s in scans {
        let mut echoes = Echoes::default();
        let report = sync_collection(
            pair,
            sides,
            state,
            run,
            opts,
            &s,
            &mut outcome,
            &mut done,
            total,
            &mut echoes,
        )
        .await?;
        let failures_before = outcome.report.failures.len();
        let conflicts_before = outcome.report.conflicts;
        // Conflicts count as unclean too: their items must be seen again.
        let mut clean = report.failures.is_empty() && report.conflicts == 0;
        let mut replan: HashSet<String> = report.replan.iter().cloned().collect();
        outcome.report.add(Report {
            replan: Vec::new(),
            ..report
        });
        // Items that changed under us are planned again, twice at most.
        for _ in 0..2 {
            if replan.is_empty() || opts.dry_run {
                break;
            }
            let again = scan(&pair.name, &s.collection, sides, state, None).await?;
            let retry = Options {
                only: Some(replan.clone()),
                keep: opts.keep.clone(),
                ..Options::default()
            };
            let report = sync_collection(
                pair,
                sides,
                state,
                run,
                &retry,
                &again,
                &mut outcome,
                &mut done,
                total,
                &mut echoes,
            )
            .await?;
            replan = report.replan.iter().cloned().collect();
            outcome.report.add(Report {
                replan: Vec::new(),
                ..report
            });
        }
        clean &= replan.is_empty()
            && outcome.report.failures.len() == failures_before
            && outcome.report.conflicts == conflicts_before;
        // A token is saved only when every change up to it was synced;
        // otherwise the next run lists in full and retries what failed.
        if !opts.dry_run && opts.only.is_none() {
            for side in Side::BOTH {
                let token = match (&s.tokens[ix(side)], clean) {
                    (Some(token), true) => {
                        let store = sides.store(side);
                        let token =
                            past_own_writes(store, side, &s.collection, token, &echoes).await;
                        Some(format!("{config} {token}"))
                    }
                    _ => None,
                };
                state.set_token(&pair.name, side, &s.collection, token.as_deref())?;
            }
        }
        for uid in replan {
            outcome.report.failures.push(Failure {
                store: format!("{}+{}", sides.a_name, sides.b_name),
                collection: s.collection.clone(),
                item: uid,
                reason: "kept changing while being synced; left as it is, will be retried next run"
                    .into(),
            });
        }
    }
    Ok(outcome)
}

fn work_estimate(s: &Scan) -> u64 {
    (s.new[0].len() + s.new[1].len()) as u64
        + s.presence
            .iter()
            .filter(|p| **p != [Presence::Same; 2])
            .count() as u64
}

/// Lists one collection on both sides and joins the listings with its links.
///
/// When both sides answer from a change feed since a saved token, only the
/// links whose items changed are loaded — unless new items turned up: a new
/// item may carry the UID of any link (a rename, or a duplicate), so then
/// every link is loaded.
async fn scan(
    pair: &str,
    collection: &str,
    sides: Sides<'_>,
    state: &mut dyn StateStore,
    feed: Option<&str>,
) -> Result<Scan, PairError> {
    let mut saved: [Option<String>; 2] = [None, None];
    if let Some(config) = feed {
        for side in Side::BOTH {
            saved[ix(side)] = state
                .token(pair, side, collection)?
                .and_then(|t| t.strip_prefix(&format!("{config} ")).map(str::to_string));
        }
    }
    // Both sides are read at once (their stores work on blocking threads
    // or over the network). Unless both may answer from a feed, every link
    // is needed: they are loaded from the state while the stores list.
    let [saved_a, saved_b] = saved;
    let all_links = saved_a.is_none() || saved_b.is_none();
    let reads = Started::start(async {
        tokio::join!(
            read_side(sides.a, collection, feed.is_some(), saved_a),
            read_side(sides.b, collection, feed.is_some(), saved_b)
        )
    })
    .await;
    let links = if all_links {
        Some(state.links(pair, collection)?)
    } else {
        None
    };
    let (read_a, read_b) = reads.finish().await;
    let mut readings: [Reading; 2] = [Reading::Missing, Reading::Missing];
    for (side, result) in [(Side::A, read_a), (Side::B, read_b)] {
        match result {
            Ok(reading) => readings[ix(side)] = reading,
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(error) => {
                return Err(PairError::Store {
                    store: sides.name(side).to_string(),
                    error,
                })
            }
        }
    }
    if let [Reading::Since(a), Reading::Since(b)] = &readings {
        let touched = state.links_touching(pair, collection, [&changed_ids(a), &changed_ids(b)])?;
        // Only changes: small enough to copy, as a full join may follow.
        let mut s = join(collection, touched, readings.clone());
        if s.new.iter().all(Vec::is_empty) {
            // Every other link's items are where the link saw them.
            let totals = state.link_counts(pair, collection)?;
            for side in Side::BOTH {
                let loaded = s.counts[ix(side)];
                s.counts[ix(side)] = SideCounts {
                    linked: totals[ix(side)],
                    listed: totals[ix(side)].saturating_sub(loaded.linked) + loaded.listed,
                    deletes: 0,
                };
            }
            return Ok(s);
        }
    }
    let links = match links {
        Some(links) => links,
        None => state.links(pair, collection)?,
    };
    Ok(join(collection, links, readings))
}

/// One side's items as read: in full, or as a change feed's answer.
#[derive(Clone)]
enum Reading {
    /// The collection is not there.
    Missing,
    /// Every item, with no feed token.
    All(Vec<tandem_store::Listed>),
    /// Every item from the change feed (no token was saved), with the
    /// token for next time.
    Feed(Changes),
    /// What changed since the saved token.
    Since(Changes),
}

impl Reading {
    /// Items the reading holds.
    fn len(&self) -> usize {
        match self {
            Reading::Missing => 0,
            Reading::All(items) => items.len(),
            Reading::Feed(changes) | Reading::Since(changes) => changes.changed.len(),
        }
    }
}

fn changed_ids(changes: &Changes) -> Vec<String> {
    changes
        .changed
        .iter()
        .map(|l| l.id.clone())
        .chain(changes.deleted.iter().cloned())
        .collect()
}

/// Reads one side: from its change feed when it has one (since the saved
/// token, if any), else a full listing.
async fn read_side(
    store: &dyn tandem_store::Store,
    collection: &str,
    use_feed: bool,
    token: Option<String>,
) -> Result<Reading, tandem_store::Error> {
    if use_feed {
        match store.changes_since(collection, token.as_deref()).await {
            Ok(changes) if token.is_some() => return Ok(Reading::Since(changes)),
            Ok(changes) => return Ok(Reading::Feed(changes)),
            Err(e) if e.kind == ErrorKind::NotFound => return Err(e),
            // No feed, an expired token, or a feed that failed: list instead.
            Err(e) => tracing::debug!(collection, "change feed not used: {e}"),
        }
    }
    Ok(Reading::All(store.list(collection).await?))
}

/// Joins both sides' readings with `links`: each side's listing (a feed's
/// changes patched onto the links' versions), where each link's items
/// stand, and the ids no link claims.
///
/// The readings are consumed as they are joined: each listed id moves into
/// the listing and its version text is let go at once, so a large
/// collection's two listings are never held twice. The sides are joined
/// at once, a large one on a thread of its own.
fn join(collection: &str, links: Vec<Known>, readings: [Reading; 2]) -> Scan {
    let complete = !readings.iter().any(|r| matches!(r, Reading::Since(_)));
    let missing = readings.each_ref().map(|r| matches!(r, Reading::Missing));
    let [reading_a, reading_b] = readings;
    let large = links.len() + reading_a.len() + reading_b.len() >= PARALLEL_JOIN;
    let (a, b) = if large {
        tandem_state::at_once(
            "tandem-join",
            || join_side(Side::A, reading_a, &links),
            || join_side(Side::B, reading_b, &links),
        )
    } else {
        (
            join_side(Side::A, reading_a, &links),
            join_side(Side::B, reading_b, &links),
        )
    };
    Scan {
        collection: collection.to_string(),
        links,
        complete,
        tokens: [a.token, b.token],
        counts: [a.counts, b.counts],
        presence: side_by_side(a.presence, b.presence),
        missing,
        listed: side_by_side(a.versions, b.versions),
        new: [a.new, b.new],
    }
}

/// Two sides' values, parallel to the links, as one pair per link.
fn side_by_side<T>(a: Vec<T>, b: Vec<T>) -> Vec<[T; 2]> {
    a.into_iter().zip(b).map(|(a, b)| [a, b]).collect()
}

/// Items listed and linked from which a join takes two threads: below it
/// a thread costs more than it saves.
const PARALLEL_JOIN: usize = 4096;

/// One side's part of [`join`].
struct SideJoin {
    token: Option<String>,
    counts: SideCounts,
    /// Parallel to the links.
    presence: Vec<Presence>,
    /// The listed version of each link's item, parallel to the links.
    versions: Vec<Option<u64>>,
    /// Listed ids no link claims, sorted.
    new: Vec<String>,
}

fn join_side(side: Side, reading: Reading, links: &[Known]) -> SideJoin {
    let mut listed = Listing::default();
    let mut token = None;
    match reading {
        Reading::Missing => {}
        Reading::All(items) => {
            listed.reserve(items.len());
            listed.extend(items.into_iter().map(Spot::listed));
        }
        Reading::Feed(changes) => {
            listed.extend(changes.changed.into_iter().map(Spot::listed));
            token = Some(changes.token);
        }
        Reading::Since(changes) => {
            listed.extend(
                links
                    .iter()
                    .filter_map(|l| linked(l, side))
                    .map(|seen| (seen.id.clone(), Spot::at(seen.key))),
            );
            for id in &changes.deleted {
                listed.remove(id);
            }
            listed.extend(changes.changed.into_iter().map(Spot::listed));
            token = Some(changes.token);
        }
    }
    // Where each link's item stands; a listed id a link claims is marked,
    // so the ids left unmarked are the new items.
    let mut presence = Vec::with_capacity(links.len());
    let mut versions = Vec::with_capacity(links.len());
    let mut linked_count = 0;
    for link in links {
        let (mut p, mut v) = (Presence::Absent, None);
        if let Some(seen) = linked(link, side) {
            linked_count += 1;
            if let Some(spot) = listed.get_mut(&seen.id) {
                spot.claimed = true;
                v = Some(spot.version);
                p = if spot.version == seen.key {
                    Presence::Same
                } else {
                    Presence::Moved
                };
            }
        }
        presence.push(p);
        versions.push(v);
    }
    let counts = SideCounts {
        linked: linked_count,
        listed: listed.len() as u64,
        deletes: 0,
    };
    let mut new: Vec<String> = listed
        .into_iter()
        .filter(|(_, spot)| !spot.claimed)
        .map(|(id, _)| id)
        .collect();
    new.sort_unstable();
    SideJoin {
        token,
        counts,
        presence,
        versions,
        new,
    }
}

/// The feed token to save for `side` after a clean run: past the run's own
/// writes when the feed, read again from the token the scan saw, shows
/// nothing but them; else that token, so whatever else changed meanwhile
/// is read next run.
async fn past_own_writes(
    store: &dyn tandem_store::Store,
    side: Side,
    collection: &str,
    token: &str,
    echoes: &Echoes,
) -> String {
    if !echoes.wrote(side) {
        return token.to_string();
    }
    match store.changes_since(collection, Some(token)).await {
        Ok(changes) if echoes.only_ours(side, &changes) => changes.token,
        Ok(changes) => {
            tracing::debug!(
                collection,
                changed = changes.changed.len(),
                deleted = changes.deleted.len(),
                "changed by others during the run; the feed is read from before our writes next run"
            );
            token.to_string()
        }
        Err(e) => {
            tracing::debug!(collection, "change feed not read after the run: {e}");
            token.to_string()
        }
    }
}

/// What one pass over a collection carries from chunk to chunk.
struct Pass<'p, 'o> {
    pair: &'p PairConfig,
    sides: Sides<'p>,
    run: i64,
    opts: &'p Options<'o>,
    scan: &'p Scan,
    report: Report,
    /// Writes made, not yet recorded in the state.
    unsettled: Unsettled,
    /// The batch before them, being flushed while these were written.
    settling: Option<Settling<'p>>,
    /// The last chunk, being written while the next one is planned.
    in_flight: Option<InFlight<'p>>,
    /// The collection's open inbox entries (UID to id), read at its first
    /// chunk: each item is planned once, so later chunks' entries are the
    /// ones that were open when the run began.
    open_conflicts: Option<HashMap<String, i64>>,
    /// Where every write of the run left its item.
    echoes: &'p mut Echoes,
}

/// A new item read once and let go: enough to read it again when its twin
/// turns up.
#[derive(Debug, Clone)]
struct Held {
    id: String,
    /// The version it was read at (as [`version_key`]).
    version: u64,
}

/// Something to decide about: a link and/or items new on either side.
struct Work {
    uid: String,
    /// The link's items as the listing found them.
    presence: [Presence; 2],
    /// The listed versions of the link's items (see [`Scan::listed`]).
    listed: [Option<u64>; 2],
    link: Option<Known>,
    new: [Option<Item>; 2],
}

#[allow(clippy::too_many_arguments)]
async fn sync_collection(
    pair: &PairConfig,
    sides: Sides<'_>,
    state: &mut dyn StateStore,
    run: i64,
    opts: &Options<'_>,
    s: &Scan,
    outcome: &mut PairOutcome,
    done: &mut u64,
    total: u64,
    echoes: &mut Echoes,
) -> Result<Report, PairError> {
    let mut pass = Pass {
        pair,
        sides,
        run,
        opts,
        scan: s,
        report: Report::default(),
        unsettled: Unsettled::default(),
        settling: None,
        open_conflicts: None,
        in_flight: None,
        echoes,
    };
    let collection = s.collection.as_str();

    // A collection one side lacks is created there when the pair may write
    // to it and there is something to put in it.
    for side in Side::BOTH {
        let other = side.other();
        if s.missing[ix(side)]
            && !s.missing[ix(other)]
            && pair.policy.direction.writes(side)
            && !opts.dry_run
        {
            if let Err(error) = sides.store(side).create_collection(collection).await {
                return Err(PairError::Store {
                    store: sides.name(side).to_string(),
                    error,
                });
            }
        }
    }

    // Each link by UID, as its place in `s.links` (and `s.presence`): only
    // new items are looked up by UID, so without any the index is not made.
    let links_by_uid: HashMap<&str, usize> = if s.new.iter().all(Vec::is_empty) {
        HashMap::new()
    } else {
        s.links
            .iter()
            .enumerate()
            .map(|(i, l)| (l.uid.as_str(), i))
            .collect()
    };
    let link_of = |uid: &str| links_by_uid.get(uid).map(|&i| (&s.links[i], s.presence[i]));
    let presence = |uid: &str| {
        links_by_uid
            .get(uid)
            .map_or([Presence::Absent; 2], |&i| s.presence[i])
    };
    let listed_of = |uid: &str| links_by_uid.get(uid).map_or([None; 2], |&i| s.listed[i]);
    let mut claimed_uids: [HashSet<String>; 2] = [HashSet::new(), HashSet::new()];
    let mut consumed: HashSet<String> = HashSet::new();
    let wanted = |uid: &str| opts.only.as_ref().is_none_or(|o| o.contains(uid));

    // New items: the side with fewer new items is read first, and of each
    // only UID, id and version are kept; an item is read again when an
    // item of the other side with its UID turns up, so the two pair up.
    let small = if s.new[0].len() <= s.new[1].len() {
        Side::A
    } else {
        Side::B
    };
    let large = small.other();
    let mut held: HashMap<String, Held> = HashMap::new();
    // Mapping: items outside a side's filter are left out (their UIDs
    // kept); with a match ladder, new items no UID pairs wait for it.
    let mut filtered: [HashSet<String>; 2] = [HashSet::new(), HashSet::new()];
    let laddering = !pair.mapping.matcher.is_empty();
    let mut unpaired_large: Vec<Item> = Vec::new();
    for chunk in s.new[ix(small)].chunks(CHUNK) {
        let items = fetch(sides, small, collection, chunk, pair, &mut pass.report).await?;
        let items = crate::mapped::admit(
            &pair.mapping,
            small,
            items,
            sides,
            collection,
            &mut pass.report,
            &mut filtered[ix(small)],
        );
        for item in items {
            if let Some(item) = claim(
                item,
                small,
                &link_of,
                &mut claimed_uids,
                sides,
                collection,
                &mut pass.report,
            ) {
                let Item {
                    id,
                    version,
                    record,
                    ..
                } = item;
                held.insert(
                    record.uid,
                    Held {
                        id,
                        version: version_key(&version),
                    },
                );
            }
        }
    }
    // Each chunk's read starts before the chunk ahead of it is planned and
    // written, so a store that reads on its own threads reads meanwhile.
    let mut chunks = s.new[ix(large)].chunks(CHUNK);
    let mut ahead = match chunks.next() {
        Some(chunk) => Some(Ahead::start(sides, large, collection, chunk, pair).await),
        None => None,
    };
    while let Some(reading) = ahead.take() {
        let chunk = reading.chunk;
        let (items, failures) = reading.finish().await?;
        pass.report.add(failures);
        if let Some(next) = chunks.next() {
            ahead = Some(Ahead::start(sides, large, collection, next, pair).await);
        }
        let mut work = Vec::new();
        let items = crate::mapped::admit(
            &pair.mapping,
            large,
            items,
            sides,
            collection,
            &mut pass.report,
            &mut filtered[ix(large)],
        );
        let items: Vec<Item> = items
            .into_iter()
            .filter_map(|item| {
                claim(
                    item,
                    large,
                    &link_of,
                    &mut claimed_uids,
                    sides,
                    collection,
                    &mut pass.report,
                )
            })
            .collect();
        let twins: Vec<(String, Held)> = items
            .iter()
            .filter_map(|item| held.remove_entry(&item.record.uid))
            .collect();
        let mut twins = refetch(&mut pass, small, twins).await?;
        for item in items {
            let uid = item.record.uid.clone();
            let mut new = [None, None];
            match twins.remove(&uid) {
                Some(Some(twin)) => new[ix(small)] = Some(twin),
                // Its twin changed since it was read: both wait.
                Some(None) => continue,
                None => {}
            }
            let link = link_of(uid.as_str()).map(|(l, _)| l.clone());
            if new[ix(small)].is_none() && link.is_none() {
                if filtered[ix(small)].contains(&uid) {
                    // Its twin is outside the other side's filter.
                    continue;
                }
                if laddering {
                    unpaired_large.push(item);
                    continue;
                }
            }
            new[ix(large)] = Some(item);
            if link.is_some() {
                consumed.insert(uid.clone());
            }
            if wanted(&uid) {
                work.push(Work {
                    presence: presence(&uid),
                    listed: listed_of(&uid),
                    uid,
                    link,
                    new,
                });
            }
        }
        process(&mut pass, state, outcome, work).await?;
        *done += chunk.len() as u64;
        if let Some(p) = opts.progress {
            p(*done, total);
        }
    }
    let mut rest: Vec<(String, Held)> = held
        .into_iter()
        .filter(|(uid, _)| !filtered[ix(large)].contains(uid))
        .collect();
    rest.sort_by(|x, y| x.0.cmp(&y.0));
    let mut work = Vec::new();
    if laddering {
        let (linked_rest, unpaired_rest): (Vec<_>, Vec<_>) = rest
            .into_iter()
            .partition(|(uid, _)| links_by_uid.contains_key(uid.as_str()));
        rest = linked_rest;
        // The ladder compares whole records, so these are held together.
        let mut unpaired_small = Vec::with_capacity(unpaired_rest.len());
        for chunk in unpaired_rest.chunks(CHUNK) {
            let mut got = refetch(&mut pass, small, chunk.to_vec()).await?;
            unpaired_small.extend(
                chunk
                    .iter()
                    .filter_map(|(uid, _)| got.remove(uid).flatten()),
            );
        }
        let mut unpaired = [Vec::new(), Vec::new()];
        unpaired[ix(small)] = unpaired_small;
        unpaired[ix(large)] = std::mem::take(&mut unpaired_large);
        let found = crate::mapped::ladder(
            pair,
            unpaired,
            &opts.keep,
            sides,
            collection,
            run,
            &mut pass.report,
        );
        pass.report.conflicts += found.conflicts.len() as u64;
        if opts.dry_run {
            outcome.operations.extend(found.operations);
        } else if !found.conflicts.is_empty() {
            let mut batch = tandem_state::Batch::new(&pair.name, collection);
            batch.conflicts = found.conflicts;
            state.commit(&batch)?;
        }
        for (uid, [a, b]) in found.work {
            if wanted(&uid) {
                work.push(Work {
                    uid,
                    presence: [Presence::Absent; 2],
                    listed: [None; 2],
                    link: None,
                    new: [a, b],
                });
            }
        }
    }
    for chunk in rest.chunks(CHUNK) {
        let mut got = refetch(&mut pass, small, chunk.to_vec()).await?;
        for (uid, _) in chunk {
            let Some(Some(item)) = got.remove(uid) else {
                continue;
            };
            let link = link_of(uid.as_str()).map(|(l, _)| l.clone());
            if link.is_some() {
                consumed.insert(uid.clone());
            }
            let mut new = [None, None];
            new[ix(small)] = Some(item);
            if wanted(uid) {
                work.push(Work {
                    presence: presence(uid),
                    listed: listed_of(uid),
                    uid: uid.clone(),
                    link,
                    new,
                });
            }
            if work.len() >= CHUNK {
                *done += work.len() as u64;
                process(&mut pass, state, outcome, std::mem::take(&mut work)).await?;
            }
        }
    }
    *done += work.len() as u64;
    process(&mut pass, state, outcome, work).await?;

    // Linked items that moved or vanished on some side.
    let mut work = Vec::new();
    for ((link, seen), listed) in s.links.iter().zip(&s.presence).zip(&s.listed) {
        if consumed.contains(&link.uid) || !wanted(&link.uid) {
            continue;
        }
        if *seen == [Presence::Same; 2] {
            outcome.unchanged += 1;
            continue;
        }
        work.push(Work {
            uid: link.uid.clone(),
            presence: *seen,
            listed: *listed,
            link: Some(link.clone()),
            new: [None, None],
        });
        if work.len() >= CHUNK {
            *done += work.len() as u64;
            process(&mut pass, state, outcome, std::mem::take(&mut work)).await?;
            if let Some(p) = opts.progress {
                p(*done, total);
            }
        }
    }
    *done += work.len() as u64;
    process(&mut pass, state, outcome, work).await?;
    // An inbox entry for an item never linked, now on neither side, has
    // nothing left to settle.
    if s.complete && opts.only.is_none() && !opts.dry_run && pass.report.failures.is_empty() {
        let linked: HashSet<&str> = s.links.iter().map(|l| l.uid.as_str()).collect();
        let seen = |uid: &str| {
            linked.contains(uid)
                || Side::BOTH.iter().any(|side| {
                    claimed_uids[ix(*side)].contains(uid) || filtered[ix(*side)].contains(uid)
                })
        };
        let stale: Vec<i64> = state
            .conflicts()?
            .into_iter()
            .filter(|c| c.pair == pair.name && c.collection == collection && !seen(&c.uid))
            .map(|c| c.id)
            .collect();
        if !stale.is_empty() {
            let mut batch = tandem_state::Batch::new(&pair.name, collection);
            batch.settled = stale;
            state.commit(&batch)?;
        }
    }
    if let Some(in_flight) = pass.in_flight.take() {
        let report = in_flight
            .finish(&mut pass.unsettled, &mut *pass.echoes)
            .await?;
        pass.report.add(report);
    }
    if let Some(settling) = pass.settling.take() {
        pass.report.failures.extend(settling.finish(state).await?);
    }
    if !pass.unsettled.is_empty() {
        let ctx = Context {
            run,
            pair: &pair.name,
            collection,
            sides,
        };
        let failures = pass.unsettled.begin(&ctx).await.finish(state).await?;
        pass.report.failures.extend(failures);
    }
    state.committed()?;
    if let Some(p) = opts.progress {
        p(*done, total);
    }
    Ok(pass.report)
}

/// Reads held items again, by UID: `Some(item)`, or `None` for an item
/// that changed since it was first read (handed back to be planned again)
/// or can no longer be read (reported).
async fn refetch(
    pass: &mut Pass<'_, '_>,
    side: Side,
    held: Vec<(String, Held)>,
) -> Result<HashMap<String, Option<Item>>, PairError> {
    let (pair, sides, s) = (pass.pair, pass.sides, pass.scan);
    let collection = s.collection.as_str();
    let ids: Vec<String> = held.iter().map(|(_, h)| h.id.clone()).collect();
    let reported = pass.report.failures.len();
    let items = fetch(sides, side, collection, &ids, pair, &mut pass.report).await?;
    let unreadable: HashSet<&str> = pass.report.failures[reported..]
        .iter()
        .map(|f| f.item.as_str())
        .collect();
    let mut by_id: HashMap<String, Item> = items.into_iter().map(|i| (i.id.clone(), i)).collect();
    let mut found = HashMap::with_capacity(held.len());
    let mut moved = Vec::new();
    for (uid, h) in held {
        let item = by_id
            .remove(&h.id)
            .filter(|item| item.record.uid == uid && version_key(&item.version) == h.version);
        if item.is_none() && !unreadable.contains(h.id.as_str()) {
            moved.push(uid.clone());
        }
        found.insert(uid, item);
    }
    pass.report.replan.extend(moved);
    Ok(found)
}

/// A chunk of new items being read ahead: the fetch has started, and its
/// failures are kept apart until it is finished.
struct Ahead<'a> {
    chunk: &'a [String],
    fetch: Started<'a, Result<(Vec<Item>, Report), PairError>>,
}

impl<'a> Ahead<'a> {
    async fn start(
        sides: Sides<'a>,
        side: Side,
        collection: &'a str,
        chunk: &'a [String],
        pair: &'a PairConfig,
    ) -> Ahead<'a> {
        let fetch = Started::start(async move {
            let mut report = Report::default();
            let items = fetch(sides, side, collection, chunk, pair, &mut report).await?;
            Ok((items, report))
        })
        .await;
        Ahead { chunk, fetch }
    }

    async fn finish(self) -> Result<(Vec<Item>, Report), PairError> {
        self.fetch.finish().await
    }
}

/// Fetches listed items; unreadable ones are reported and left out, and
/// items of another kind (a task in an event calendar) are ignored.
async fn fetch(
    sides: Sides<'_>,
    side: Side,
    collection: &str,
    ids: &[String],
    pair: &PairConfig,
    report: &mut Report,
) -> Result<Vec<Item>, PairError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let results = sides
        .store(side)
        .fetch(collection, ids)
        .await
        .map_err(|error| PairError::Store {
            store: sides.name(side).to_string(),
            error,
        })?;
    let mut items = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(item) if item.record.kind == pair.kind => items.push(item),
            Ok(item) => {
                tracing::debug!(id = %item.id, kind = %item.record.kind, "not a {} item; ignored", pair.kind)
            }
            Err(e) => report.failures.push(Failure {
                store: sides.name(side).to_string(),
                collection: collection.to_string(),
                item: e.id.clone(),
                reason: format!(
                    "{}{}: {}; skipped, nothing done to its twin",
                    e.kind.as_str(),
                    e.field
                        .as_ref()
                        .map(|f| format!(" (field {f})"))
                        .unwrap_or_default(),
                    e.message
                ),
            }),
        }
    }
    Ok(items)
}

/// A link by UID, with where its items stand.
type LinkOf<'s> = dyn Fn(&str) -> Option<(&'s Known, [Presence; 2])> + 's;

/// Checks a new item's UID: a second item with a UID the side already
/// holds is reported and left out, never merged.
#[allow(clippy::too_many_arguments)]
fn claim<'s>(
    item: Item,
    side: Side,
    link_of: &LinkOf<'s>,
    claimed: &mut [HashSet<String>; 2],
    sides: Sides<'_>,
    collection: &str,
    report: &mut Report,
) -> Option<Item> {
    let uid = item.record.uid.clone();
    let linked_here = link_of(uid.as_str())
        .filter(|(_, presence)| presence[ix(side)] != Presence::Absent)
        .and_then(|(l, _)| linked(l, side));
    if let Some(seen) = linked_here {
        report.failures.push(Failure {
            store: sides.name(side).to_string(),
            collection: collection.to_string(),
            item: item.id.clone(),
            reason: format!(
                "has the same UID `{uid}` as {}; skipped, not merged",
                seen.id
            ),
        });
        return None;
    }
    if !claimed[ix(side)].insert(uid.clone()) {
        report.failures.push(Failure {
            store: sides.name(side).to_string(),
            collection: collection.to_string(),
            item: item.id.clone(),
            reason: format!(
                "another item on this side has the same UID `{uid}`; skipped, not merged"
            ),
        });
        return None;
    }
    Some(item)
}

/// Fetches what a chunk of work needs, plans it, and applies the plan.
async fn process(
    pass: &mut Pass<'_, '_>,
    state: &mut dyn StateStore,
    outcome: &mut PairOutcome,
    mut work: Vec<Work>,
) -> Result<(), PairError> {
    let (pair, sides, run, opts, s) = (pass.pair, pass.sides, pass.run, pass.opts, pass.scan);
    let report = &mut pass.report;
    let unsettled = &mut pass.unsettled;
    if work.is_empty() {
        return Ok(());
    }
    let collection = s.collection.as_str();
    // Linked sides still present are fetched: their content decides, and an
    // update patches their own text.
    let mut fetched: Fetched = HashMap::new();
    let mut unreadable: HashSet<String> = HashSet::new();
    for side in Side::BOTH {
        let mut want: Vec<String> = Vec::new();
        let mut uid_of: HashMap<String, String> = HashMap::new();
        for w in &work {
            if w.new[ix(side)].is_some() {
                continue;
            }
            if let Some(seen) = w.link.as_ref().and_then(|l| linked(l, side)) {
                if w.presence[ix(side)] != Presence::Absent {
                    want.push(seen.id.clone());
                    uid_of.insert(seen.id.clone(), w.uid.clone());
                }
            }
        }
        let items = fetch(sides, side, collection, &want, pair, report).await?;
        let got: HashSet<&str> = items.iter().map(|i| i.id.as_str()).collect();
        for id in &want {
            if !got.contains(id.as_str()) {
                if let Some(uid) = uid_of.get(id) {
                    unreadable.insert(uid.clone());
                }
            }
        }
        for item in items {
            if let Some(uid) = uid_of.get(&item.id) {
                // A link made by the match ladder is keyed by A's UID;
                // B's item keeps its own.
                let matched = side == Side::B && !pair.mapping.matcher.is_empty();
                if item.record.uid != *uid && !matched {
                    // The file now holds another record: treat as that
                    // record's item next run, and leave this link alone now.
                    report.failures.push(Failure {
                        store: sides.name(side).to_string(),
                        collection: collection.to_string(),
                        item: item.id.clone(),
                        reason: format!(
                            "its UID changed from `{uid}` to `{}`; skipped",
                            item.record.uid
                        ),
                    });
                    unreadable.insert(uid.clone());
                    continue;
                }
                fetched.insert((side, uid.clone()), item);
            }
        }
    }
    for w in &mut work {
        for side in Side::BOTH {
            if let Some(item) = w.new[ix(side)].take() {
                fetched.insert((side, w.uid.clone()), item);
            }
        }
    }

    let linked_uids: Vec<String> = work
        .iter()
        .filter(|w| w.link.is_some())
        .map(|w| w.uid.clone())
        .collect();
    // A chunk of new items only (a first sync) asks the state nothing, so
    // the commit of the batch before goes on while it is planned.
    let mut bases = if linked_uids.is_empty() {
        HashMap::new()
    } else {
        state.bases(&pair.name, collection, &linked_uids)?
    };
    if pass.open_conflicts.is_none() {
        pass.open_conflicts = Some(
            state
                .conflicts()?
                .into_iter()
                .filter(|c| c.pair == pair.name && c.collection == collection)
                .map(|c| (c.uid, c.id))
                .collect(),
        );
    }

    // The mapping step: each side's record in the pair's common names.
    let mut commons: HashMap<(Side, String), tandem_record::Record> =
        HashMap::with_capacity(fetched.len());
    for ((side, uid), item) in &fetched {
        match crate::mapped::common(&pair.mapping, *side, item, uid) {
            Ok(record) => {
                commons.insert((*side, uid.clone()), record);
            }
            Err(reason) => {
                report.failures.push(Failure {
                    store: sides.name(*side).to_string(),
                    collection: collection.to_string(),
                    item: item.id.clone(),
                    reason,
                });
                unreadable.insert(uid.clone());
            }
        }
    }
    let item_failure = |side: Side, uid: &str, reason: String| Failure {
        store: sides.name(side).to_string(),
        collection: collection.to_string(),
        item: fetched
            .get(&(side, uid.to_string()))
            .map_or_else(|| uid.to_string(), |i| i.id.clone()),
        reason,
    };

    let mut entries = Vec::with_capacity(work.len());
    let mut plans = Vec::with_capacity(work.len());
    for w in work {
        if unreadable.contains(&w.uid) {
            continue;
        }
        let mut current = |side: Side| -> Option<Current> {
            let item = fetched.get(&(side, w.uid.clone()))?;
            let saved = w.link.as_ref().and_then(|l| linked(l, side));
            Some(Current {
                id: item.id.clone(),
                version: item.version.clone(),
                record: commons.remove(&(side, w.uid.clone())),
                // Moved since the last sync (the listing said so), or
                // between the listing and the fetch.
                moved: saved.is_none_or(|seen| seen.id != item.id)
                    || w.presence[ix(side)] == Presence::Moved
                    || w.listed[ix(side)] != Some(version_key(&item.version)),
            })
        };
        let entry = Entry {
            base: if w.link.is_some() {
                bases.remove(&w.uid)
            } else {
                None
            },
            a: current(Side::A),
            b: current(Side::B),
            uid: w.uid,
        };
        let policy = policy_for(&pair.policy, opts.keep.get(&entry.uid));
        let left = if entry.base.is_some() {
            crate::mapped::left_filter(pair, &entry, &fetched)
        } else {
            Ok(None)
        };
        let mut plan = match left {
            Ok(Some(plan)) => plan,
            Ok(None) => decide(&entry, &policy),
            Err((side, reason)) => {
                report.failures.push(item_failure(side, &entry.uid, reason));
                continue;
            }
        };
        outcome.examined += 1;
        if opts.dry_run && !plan.is_quiet() {
            outcome
                .operations
                .extend(plan.operations(entry.base.is_none()));
        }
        if let Err((side, reason)) =
            crate::mapped::to_native(&pair.mapping, &mut plan, &entry, &fetched)
        {
            report.failures.push(item_failure(side, &entry.uid, reason));
            continue;
        }
        entries.push(entry);
        plans.push(plan);
    }
    if opts.dry_run {
        return Ok(());
    }
    let ctx = Context {
        run,
        pair: &pair.name,
        collection,
        sides,
    };
    // The chunk before was written while this one was planned: take its
    // outcomes, start this chunk's writes, then settle if a batch is full.
    if let Some(previous) = pass.in_flight.take() {
        report.add(previous.finish(unsettled, &mut *pass.echoes).await?);
    }
    let open: HashMap<String, i64> = match &pass.open_conflicts {
        Some(all) if !all.is_empty() => plans
            .iter()
            .filter_map(|p| all.get(&p.uid).map(|id| (p.uid.clone(), *id)))
            .collect(),
        _ => HashMap::new(),
    };
    pass.in_flight = Some(begin_chunk(&ctx, entries, plans, fetched, open, state).await?);
    if unsettled.writes >= SETTLE_EVERY || unsettled.items() as u64 >= SETTLE_EVERY {
        // The batch before was flushed while this one was written: record
        // it while the next chunk is planned (the state's next call, this
        // chunk's journal, waits for it), and flush this one while the
        // next is written.
        if let Some(settling) = pass.settling.take() {
            report.failures.extend(settling.finish_soon(state).await?);
        }
        pass.settling = Some(unsettled.begin(&ctx).await);
    }
    Ok(())
}

/// The pair's policy, with the winner a user chose for one item.
fn policy_for<'p>(policy: &'p Policy, keep: Option<&Side>) -> std::borrow::Cow<'p, Policy> {
    match keep {
        None => std::borrow::Cow::Borrowed(policy),
        Some(side) => {
            let mut p = policy.clone();
            p.conflict = match side {
                Side::A => ConflictRule::A,
                Side::B => ConflictRule::B,
            };
            p.owners.clear();
            std::borrow::Cow::Owned(p)
        }
    }
}
