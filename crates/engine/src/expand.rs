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
//! Listing fetches and expands every series of the collection (the window
//! moves with time, so there is no shortcut); the expansions are kept
//! until the next listing so the fetch that follows costs nothing. A
//! series that cannot be read or expanded fails the listing: leaving its
//! occurrences out would delete their rows.

use crate::window::{now, TimeWindow};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
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

    /// The occurrences of one fetched series inside the window around `now`.
    fn occurrences(&self, series: &Item, now: i64) -> std::result::Result<Occurrences, String> {
        if series.record.kind != self.kind {
            return Ok(Occurrences::new());
        }
        let window = self.window.at(now);
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
        now: i64,
    ) -> Result<Vec<(String, std::result::Result<Occurrences, ItemError>)>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(FETCH_CHUNK) {
            for fetched in self.inner.fetch(collection, chunk).await? {
                match fetched {
                    Ok(series) => {
                        let expanded =
                            self.occurrences(&series, now).map_err(|message| ItemError {
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
        let now = now();
        let mut found: HashMap<String, Occurrences> = HashMap::with_capacity(ids.len());
        for (id, expanded) in self.expand_series(collection, &ids, now).await? {
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
        let mut listing: Vec<Listed> = found
            .values()
            .flat_map(|o| o.values())
            .map(|item| Listed {
                id: item.id.clone(),
                version: item.version.clone(),
            })
            .collect();
        listing.sort_by(|x, y| x.id.cmp(&y.id));
        if let Ok(mut listed) = self.listed.lock() {
            listed.insert(collection.to_string(), found);
        }
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
            series.extend(self.expand_series(collection, &missing, now()).await?);
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

    async fn changes_since(&self, _collection: &str, _token: Option<&str>) -> Result<Changes> {
        Err(Error::new(
            ErrorKind::Unsupported,
            "expanded series are listed in full (the window moves with time)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_record::Value;
    use tandem_store::{MemoryStore, ROOT};

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
        // Days 0..=5 at 09:00 (day 0 only while not over, day 5 only once
        // 09:00 has passed today), less the cancelled day 2.
        let ids: Vec<&str> = listed.iter().map(|l| l.id.as_str()).collect();
        assert!(
            (4..=5).contains(&ids.len()),
            "occurrences in the window: {ids:?}"
        );
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
}
