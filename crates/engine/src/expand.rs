//! Expansion of recurring series into plain occurrences, for a pair whose
//! other side cannot hold recurrence (an SQL or CSV table of events):
//! [`Expanded`] wraps the store holding the series and shows each
//! occurrence inside the pair's `expand` window as an item of its own.
//!
//! An occurrence's id is `<series id>/<occurrence key>` and its UID
//! `<series UID>/<occurrence key>`, the key being its RECURRENCE-ID in
//! iCalendar text (`20261201T090000Z`); its version is a fingerprint of
//! its content, so an edit of the series moves exactly the occurrences it
//! changes. The normal planner then creates, updates and deletes the
//! table's rows as the series changes. The wrapped side is read-only: the
//! pair is one-way from it (config checks this), and a write is refused
//! with [`ErrorKind::Unsupported`].
//!
//! The window moves once a day: occurrences are those overlapping
//! `[start of today - past, end of today + future)` (UTC days), which
//! holds `[now - past, now + future)` all day long.
//!
//! The adapter is its own change feed ([`Store::changes_since`]), so a run
//! expands only the series that changed. Its token, which the engine saves
//! after a clean run, records the day and, per series, the version the
//! series had and the keys of the occurrences it showed. On the next run
//! the series are listed (ids and versions only): one whose version is
//! unchanged is neither fetched nor expanded, one that changed or is new
//! is expanded and its occurrences reported (those that vanished as
//! deleted), and the occurrences of a series gone are reported deleted.
//! On a new day every series is expanded again and compared with the
//! token, so occurrences that entered or left the window are created or
//! deleted. Without a token (first run, a run that failed, a changed pair
//! config, or another Tandem version) everything is expanded. A plain
//! listing ([`Store::list`]) always expands everything. The token costs
//! about 21 bytes per occurrence (2,000 weekly series over 90 days: 560 kB).
//!
//! The expansions of the last listing are kept so the fetch that follows
//! costs nothing; a fetched occurrence of a series not expanded this run
//! expands that series. A series that cannot be read or expanded fails the
//! listing: leaving its occurrences out would delete their rows.

use crate::window::{now, TimeWindow};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use tandem_formats::{recurrence, Format};
use tandem_record::{Kind, Record};
use tandem_store::{
    Changes, Error, ErrorKind, Item, ItemError, Listed, NewItem, Result, Store, Written,
};

/// At most this many occurrences of one series are listed.
pub const MAX_PER_SERIES: usize = 10_000;

/// Series fetched per call while listing.
const FETCH_CHUNK: usize = 256;

/// Seconds in a day: the window moves in whole UTC days.
const DAY: i64 = 86_400;

/// A series' occurrences, by occurrence id.
type Occurrences = BTreeMap<String, Item>;

/// A store of recurring series shown as their occurrences.
pub struct Expanded {
    inner: Box<dyn Store>,
    /// The pair's kind: items of another kind have no occurrences here.
    kind: Kind,
    window: TimeWindow,
    /// Occurrences found by the last listing, per collection.
    listed: Mutex<HashMap<String, HashMap<String, Occurrences>>>,
}

/// What a listing showed, as the feed token carries it to the next run.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Seen {
    /// The Tandem version that expanded (another one expands anew).
    tandem: String,
    /// The UTC day (days since 1970-01-01) the window was placed on.
    day: i64,
    /// Per series id: its version, and its occurrences' keys (the part of
    /// their id after `<series id>/`), space-separated.
    series: BTreeMap<String, (String, String)>,
}

impl Seen {
    fn read(token: &str) -> Option<Seen> {
        serde_json::from_str::<Seen>(token)
            .ok()
            .filter(|seen| seen.tandem == env!("CARGO_PKG_VERSION"))
    }
}

/// The UTC day of a Unix time.
fn day_of(seconds: i64) -> i64 {
    seconds.div_euclid(DAY)
}

fn read_only() -> Error {
    Error::new(
        ErrorKind::Unsupported,
        "this side shows the occurrences of recurring series (`expand`): it is read-only; edit the series instead",
    )
}

impl Expanded {
    pub fn new(inner: Box<dyn Store>, kind: Kind, window: TimeWindow) -> Expanded {
        Expanded {
            inner,
            kind,
            window,
            listed: Mutex::new(HashMap::new()),
        }
    }

    /// The occurrences of one fetched series inside the window placed on
    /// `day`.
    fn occurrences(&self, series: &Item, day: i64) -> std::result::Result<Occurrences, String> {
        if series.record.kind != self.kind {
            return Ok(Occurrences::new());
        }
        let window = self.window.on_day(day);
        // Native text also carries what the record does not (DURATION,
        // VTIMEZONE definitions).
        let expansion = match &series.raw {
            Some(raw) if Format::from_media_type(&raw.media_type) == Some(Format::ICalendar) => {
                recurrence::expand_item(&raw.text, window, MAX_PER_SERIES)
            }
            _ => recurrence::expand(&series.record, window, MAX_PER_SERIES),
        }
        .map_err(|e| e.to_string())?;
        if expansion.truncated {
            tracing::warn!(
                id = %series.id,
                "series has more occurrences in the window than {MAX_PER_SERIES} (or too many to compute); listing the first ones"
            );
        }
        let mut out = Occurrences::new();
        for occurrence in expansion.occurrences {
            let mut record: Record = occurrence.record;
            record.uid = format!("{}/{}", series.record.uid, occurrence.key);
            record.modified = series.record.modified;
            let id = format!("{}/{}", series.id, occurrence.key);
            out.insert(
                id.clone(),
                Item {
                    version: record.fingerprint(),
                    id,
                    record,
                    raw: None,
                },
            );
        }
        Ok(out)
    }

    /// Fetches series and expands them; an unreadable one is `Err` by id.
    async fn expand_series(
        &self,
        collection: &str,
        ids: &[String],
        day: i64,
    ) -> Result<Vec<(String, std::result::Result<Occurrences, ItemError>)>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(FETCH_CHUNK) {
            for fetched in self.inner.fetch(collection, chunk).await? {
                match fetched {
                    Ok(series) => {
                        let expanded =
                            self.occurrences(&series, day).map_err(|message| ItemError {
                                id: series.id.clone(),
                                kind: ErrorKind::Invalid,
                                field: Some("recurrence".into()),
                                message,
                            });
                        out.push((series.id, expanded));
                    }
                    Err(e) => out.push((e.id.clone(), Err(e))),
                }
            }
        }
        Ok(out)
    }

    /// Expands the series `ids`; the first that fails fails the listing.
    async fn expand_all(
        &self,
        collection: &str,
        ids: &[String],
        day: i64,
    ) -> Result<HashMap<String, Occurrences>> {
        let mut found: HashMap<String, Occurrences> = HashMap::with_capacity(ids.len());
        for (id, expanded) in self.expand_series(collection, ids, day).await? {
            match expanded {
                Ok(occurrences) => {
                    found.insert(id, occurrences);
                }
                Err(e) => {
                    return Err(Error::new(
                        e.kind,
                        format!(
                            "series {e}; its occurrences cannot be listed, so nothing is synced from this collection"
                        ),
                    )
                    .with_id(e.id))
                }
            }
        }
        Ok(found)
    }

    /// Keeps a listing's expansions for the fetch that follows.
    fn keep(&self, collection: &str, found: HashMap<String, Occurrences>) {
        if let Ok(mut listed) = self.listed.lock() {
            listed.insert(collection.to_string(), found);
        }
    }
}

/// The listing of some series' occurrences, sorted by id.
fn listing<'o>(found: impl Iterator<Item = &'o Occurrences>) -> Vec<Listed> {
    let mut listing: Vec<Listed> = found
        .flat_map(|o| o.values())
        .map(|item| Listed {
            id: item.id.clone(),
            version: item.version.clone(),
        })
        .collect();
    listing.sort_by(|x, y| x.id.cmp(&y.id));
    listing
}

/// The keys of a series' occurrences, as the token keeps them.
fn keys_of(series_id: &str, occurrences: &Occurrences) -> String {
    occurrences
        .keys()
        .filter_map(|id| id.strip_prefix(series_id)?.strip_prefix('/'))
        .collect::<Vec<_>>()
        .join(" ")
}

#[async_trait]
impl Store for Expanded {
    async fn collections(&self) -> Result<Vec<String>> {
        self.inner.collections().await
    }

    async fn create_collection(&self, _name: &str) -> Result<()> {
        Err(read_only())
    }

    async fn list(&self, collection: &str) -> Result<Vec<Listed>> {
        let ids: Vec<String> = self
            .inner
            .list(collection)
            .await?
            .into_iter()
            .map(|l| l.id)
            .collect();
        let found = self.expand_all(collection, &ids, day_of(now())).await?;
        let listing = listing(found.values());
        self.keep(collection, found);
        Ok(listing)
    }

    async fn fetch(
        &self,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<std::result::Result<Item, ItemError>>> {
        // Occurrence ids by series id; the key never holds a `/`.
        let mut wanted: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
        let mut malformed = Vec::new();
        for id in ids {
            match id.rsplit_once('/') {
                Some((series, _)) => wanted.entry(series).or_default().push(id),
                None => malformed.push(id),
            }
        }
        let mut series: HashMap<String, std::result::Result<Occurrences, ItemError>> =
            HashMap::new();
        if let Ok(listed) = self.listed.lock() {
            if let Some(known) = listed.get(collection) {
                for id in wanted.keys() {
                    if let Some(o) = known.get(*id) {
                        series.insert(id.to_string(), Ok(o.clone()));
                    }
                }
            }
        }
        let missing: Vec<String> = wanted
            .keys()
            .filter(|id| !series.contains_key(**id))
            .map(|id| id.to_string())
            .collect();
        if !missing.is_empty() {
            series.extend(
                self.expand_series(collection, &missing, day_of(now()))
                    .await?,
            );
        }
        let mut out = Vec::with_capacity(ids.len());
        for (series_id, ids) in wanted {
            for id in ids {
                out.push(match series.get(series_id) {
                    Some(Ok(occurrences)) => {
                        occurrences.get(id).cloned().ok_or_else(|| ItemError {
                            id: id.clone(),
                            kind: ErrorKind::NotFound,
                            field: None,
                            message: "no such occurrence in the window".into(),
                        })
                    }
                    Some(Err(e)) => Err(ItemError {
                        id: id.clone(),
                        ..e.clone()
                    }),
                    None => Err(ItemError {
                        id: id.clone(),
                        kind: ErrorKind::NotFound,
                        field: None,
                        message: "its series is gone".into(),
                    }),
                });
            }
        }
        for id in malformed {
            out.push(Err(ItemError {
                id: id.clone(),
                kind: ErrorKind::NotFound,
                field: None,
                message: "not an occurrence id (`<series id>/<occurrence>`)".into(),
            }));
        }
        Ok(out)
    }

    async fn create(&self, _collection: &str, _item: &NewItem) -> Result<Written> {
        Err(read_only())
    }

    async fn update(
        &self,
        _collection: &str,
        _current: &Item,
        _expected: &str,
        _changes: &[tandem_record::FieldChange],
    ) -> Result<Written> {
        Err(read_only())
    }

    async fn delete(&self, _collection: &str, _id: &str, _expected: &str) -> Result<()> {
        Err(read_only())
    }

    /// Only the series that changed since `token` (or all of them on a
    /// new day, or without a token) are fetched and expanded; see the
    /// module docs.
    async fn changes_since(&self, collection: &str, token: Option<&str>) -> Result<Changes> {
        self.changes_on(collection, token, day_of(now())).await
    }
}

impl Expanded {
    /// [`Store::changes_since`] with the window placed on `day`.
    async fn changes_on(&self, collection: &str, token: Option<&str>, day: i64) -> Result<Changes> {
        let listed = self.inner.list(collection).await?;
        let before = token.and_then(Seen::read);
        // Series whose occurrences the last run's token still tells.
        let known = before.as_ref().filter(|seen| seen.day == day);
        let mut next = Seen {
            tandem: env!("CARGO_PKG_VERSION").to_string(),
            day,
            series: BTreeMap::new(),
        };
        let mut stale = Vec::new();
        for series in &listed {
            match known.and_then(|seen| seen.series.get(&series.id)) {
                Some(kept) if kept.0 == series.version => {
                    next.series.insert(series.id.clone(), kept.clone());
                }
                _ => stale.push(series.id.clone()),
            }
        }
        let found = self.expand_all(collection, &stale, day).await?;
        let versions: HashMap<&str, &str> = listed
            .iter()
            .map(|l| (l.id.as_str(), l.version.as_str()))
            .collect();
        let mut deleted = Vec::new();
        for (id, occurrences) in &found {
            let keys = keys_of(id, occurrences);
            if let Some((_, old)) = before.as_ref().and_then(|seen| seen.series.get(id)) {
                let now: HashSet<&str> = keys.split(' ').collect();
                deleted.extend(
                    old.split(' ')
                        .filter(|k| !k.is_empty() && !now.contains(k))
                        .map(|k| format!("{id}/{k}")),
                );
            }
            let version = versions.get(id.as_str()).copied().unwrap_or_default();
            next.series.insert(id.clone(), (version.to_string(), keys));
        }
        if let Some(before) = &before {
            for (id, (_, keys)) in &before.series {
                if !versions.contains_key(id.as_str()) {
                    deleted.extend(
                        keys.split(' ')
                            .filter(|k| !k.is_empty())
                            .map(|k| format!("{id}/{k}")),
                    );
                }
            }
        }
        let changed = listing(found.values());
        tracing::debug!(
            collection,
            series = listed.len(),
            expanded = found.len(),
            "expanded the series that changed"
        );
        self.keep(collection, found);
        let token = serde_json::to_string(&next).map_err(|e| {
            Error::new(
                ErrorKind::Invalid,
                format!("cannot write the expansion token: {e}"),
            )
        })?;
        Ok(Changes {
            changed,
            deleted,
            token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_record::Value;
    use tandem_store::{Forward, MemoryStore, ROOT};

    fn utc(local: &str) -> Value {
        Value::DateTime {
            local: local.into(),
            tz: Some("UTC".into()),
        }
    }

    /// A daily series starting yesterday, with one cancelled and one moved
    /// occurrence, in an in-memory store (the adapter only needs a Store).
    fn store_with_series() -> (Box<dyn Store>, String) {
        let store = MemoryStore::new();
        let day = |offset: i64| {
            let t = (now() / 86_400 + offset) * 86_400 + 9 * 3600;
            utc_text(t)
        };
        let series = Record::new(Kind::Event, "daily")
            .with("summary", Value::text("Daily"))
            .with("start", utc(&day(-1)))
            .with("end", utc(&day(-1).replace("T09", "T10")))
            .with(
                "recurrence",
                Value::map([
                    ("rrule", Value::text("FREQ=DAILY;COUNT=10")),
                    ("exdate", Value::List(vec![utc(&day(2))])),
                ]),
            )
            .with(
                "overrides",
                Value::List(vec![Value::map([
                    ("recurrence_id", utc(&day(3))),
                    ("summary", Value::text("Daily (moved)")),
                    ("start", utc(&day(3).replace("T09", "T11"))),
                    ("end", utc(&day(3).replace("T09", "T12"))),
                ])]),
            );
        let written = store.insert(ROOT, series);
        (Box::new(store), written.id)
    }

    /// `YYYY-MM-DDTHH:MM:SS` of a Unix time (UTC).
    fn utc_text(t: i64) -> String {
        jiff::Timestamp::from_second(t)
            .expect("a time in range")
            .strftime("%Y-%m-%dT%H:%M:%S")
            .to_string()
    }

    #[tokio::test]
    async fn lists_occurrences_in_the_window_and_refuses_writes() {
        let (inner, series_id) = store_with_series();
        let window = TimeWindow {
            past: Some(0),
            future: Some(5 * 86_400),
        };
        let store = Expanded::new(inner, Kind::Event, window);
        let listed = store.list(ROOT).await.expect("listed");
        // Days 0..=5 at 09:00 (the window runs from the start of today to
        // the end of day 5), less the cancelled day 2.
        let ids: Vec<&str> = listed.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids.len(), 5, "occurrences in the window: {ids:?}");
        assert!(ids
            .iter()
            .all(|id| id.starts_with(&format!("{series_id}/"))));
        let fetched = store
            .fetch(ROOT, &ids.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .await
            .expect("fetched");
        let items: Vec<Item> = fetched.into_iter().map(|r| r.expect("item")).collect();
        assert_eq!(items.len(), ids.len());
        for item in &items {
            assert!(item.record.get("recurrence").is_none());
            assert!(item.record.get("overrides").is_none());
            assert!(item.record.uid.starts_with("daily/"));
            assert_eq!(
                listed.iter().find(|l| l.id == item.id).map(|l| &l.version),
                Some(&item.version)
            );
        }
        let moved: Vec<&Item> = items
            .iter()
            .filter(|i| i.record.get("summary") == Some(&Value::text("Daily (moved)")))
            .collect();
        assert_eq!(moved.len(), 1);
        assert!(moved[0]
            .record
            .get("start")
            .is_some_and(|s| s.to_string().contains("T11:00:00")));

        // Writes are refused, whatever they are.
        let err = store.delete(ROOT, &items[0].id, &items[0].version).await;
        assert_eq!(err.map_err(|e| e.kind), Err(ErrorKind::Unsupported));
        let err = store.update(ROOT, &items[0], &items[0].version, &[]).await;
        assert_eq!(err.map_err(|e| e.kind), Err(ErrorKind::Unsupported));
        let err = store
            .create(
                ROOT,
                &NewItem {
                    record: items[0].record.clone(),
                    raw: None,
                },
            )
            .await;
        assert_eq!(err.map_err(|e| e.kind), Err(ErrorKind::Unsupported));

        // An unknown occurrence is a per-item error, not a failed call.
        let odd = store
            .fetch(
                ROOT,
                &[format!("{series_id}/19990101T000000Z"), "plain".into()],
            )
            .await
            .expect("fetched");
        assert!(odd
            .iter()
            .all(|r| r.as_ref().is_err_and(|e| e.kind == ErrorKind::NotFound)));
    }

    /// A store that counts the items fetched from it.
    struct Counting {
        inner: MemoryStore,
        fetched: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    #[async_trait]
    impl Forward for Counting {
        fn inner(&self) -> &dyn Store {
            &self.inner
        }
        async fn fetch(
            &self,
            collection: &str,
            ids: &[String],
        ) -> Result<Vec<std::result::Result<Item, ItemError>>> {
            self.fetched
                .fetch_add(ids.len(), std::sync::atomic::Ordering::SeqCst);
            self.inner.fetch(collection, ids).await
        }
    }

    /// A daily 09:00 UTC series from `first` (a day number), `count` times.
    fn daily(uid: &str, first: i64, count: u32, exdates: &[i64]) -> Record {
        let at = |day: i64| utc(&utc_text(day * DAY + 9 * 3600));
        Record::new(Kind::Event, uid)
            .with("summary", Value::text(uid))
            .with("start", at(first))
            .with(
                "recurrence",
                Value::map([
                    ("rrule", Value::text(format!("FREQ=DAILY;COUNT={count}"))),
                    (
                        "exdate",
                        Value::List(exdates.iter().map(|d| at(*d)).collect()),
                    ),
                ]),
            )
    }

    fn ids(listed: &[Listed]) -> Vec<String> {
        listed.iter().map(|l| l.id.clone()).collect()
    }

    /// The adapter's own feed: only series that changed are fetched and
    /// expanded; vanished occurrences and series are reported deleted; a
    /// new day expands everything again.
    #[tokio::test]
    async fn the_feed_expands_only_series_that_changed() {
        let memory = MemoryStore::new();
        let fetched = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = || fetched.swap(0, std::sync::atomic::Ordering::SeqCst);
        let store = Expanded::new(
            Box::new(Counting {
                inner: memory.clone(),
                fetched: fetched.clone(),
            }),
            Kind::Event,
            TimeWindow {
                past: Some(0),
                future: Some(9 * DAY),
            },
        );
        let today = day_of(now());
        memory.insert(ROOT, daily("one", today - 1, 10, &[]));
        memory.insert(ROOT, daily("two", today, 3, &[]));
        memory.insert(ROOT, daily("three", today + 2, 2, &[]));

        // No token: everything, as a listing has it.
        let first = store.changes_on(ROOT, None, today).await.expect("feed");
        assert_eq!(count(), 3);
        // one: days 0..=8; two: days 0..=2; three: days 2..=3.
        assert_eq!(first.changed.len(), 9 + 3 + 2);
        assert!(first.deleted.is_empty());

        // Nothing changed: nothing fetched, nothing to report.
        let quiet = store
            .changes_on(ROOT, Some(&first.token), today)
            .await
            .expect("feed");
        assert_eq!(count(), 0, "no series fetched");
        assert!(quiet.changed.is_empty() && quiet.deleted.is_empty());

        // One series cancels a day, another is deleted: only the first is
        // fetched; the cancelled day and the deleted series' occurrences go.
        memory.insert(ROOT, daily("one", today - 1, 10, &[today + 4]));
        assert!(memory.remove(ROOT, "three"));
        let moved = store
            .changes_on(ROOT, Some(&quiet.token), today)
            .await
            .expect("feed");
        assert_eq!(count(), 1, "only the changed series");
        assert_eq!(moved.changed.len(), 8);
        assert!(ids(&moved.changed).iter().all(|id| id.starts_with("one/")));
        let key = |day: i64| {
            jiff::Timestamp::from_second(day * DAY + 9 * 3600)
                .expect("in range")
                .strftime("%Y%m%dT%H%M%SZ")
                .to_string()
        };
        let mut deleted = moved.deleted.clone();
        deleted.sort();
        assert_eq!(
            deleted,
            vec![
                format!("one/{}", key(today + 4)),
                format!("three/{}", key(today + 2)),
                format!("three/{}", key(today + 3)),
            ]
        );
        // The occurrences reported are the ones a listing finds.
        let listed = store.list(ROOT).await.expect("listed");
        assert_eq!(count(), 2);
        assert!(moved.changed.iter().all(|l| listed.contains(l)));

        // The next day: every series again; day 0 has left the window and
        // day 9 entered it.
        let next = store
            .changes_on(ROOT, Some(&moved.token), today + 1)
            .await
            .expect("feed");
        assert_eq!(count(), 2, "a new day expands every series");
        let mut deleted = next.deleted.clone();
        deleted.sort();
        assert_eq!(
            deleted,
            vec![format!("one/{}", key(today)), format!("two/{}", key(today))]
        );
        assert!(ids(&next.changed).contains(&format!("one/{}", key(today + 8))));
        assert!(!ids(&next.changed).contains(&format!("one/{}", key(today))));

        // A token that is not one (another version, garbage): everything.
        let again = store
            .changes_on(ROOT, Some("not a token"), today + 1)
            .await
            .expect("feed");
        assert_eq!(count(), 2);
        assert_eq!(again.changed, next.changed);
    }
}
