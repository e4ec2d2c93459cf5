//! [`CsvStore`]: a CSV file with a header row, one record per row, as a
//! spreadsheet exports it.
//!
//! The file is read whole and kept in memory until it changes on disk. A
//! row's id is its `id` cell and its version a hash of all its cells, so a
//! row edited in a spreadsheet shows as changed. Mapped columns are fields
//! (converted by [`tandem_formats::row`]); other columns are carried through
//! every rewrite untouched. Writes change the rows in memory only;
//! [`Store::flush`] — which the engine calls before it commits the state
//! that records them — writes the whole file to a temp file in the same
//! folder, syncs it and renames it into place, so a crash before the flush
//! leaves the old file as it was, and a crash during it leaves the old or
//! the new file, never a mix. A file changed by someone else since it was
//! read makes the flush fail and drops the buffered writes, which the next
//! run plans again. The file is the root collection; there are no others.

mod config;
#[cfg(test)]
mod tests;

pub use config::CsvConfig;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tandem_formats::row::{read_cell, write_cell, ColumnType};
use tandem_record::{FieldChange, Kind, Record, Value};
use tandem_store::{
    Error, ErrorKind, Item, ItemError, Listed, NewItem, Result, Store, Written, ROOT,
};

/// A CSV file store. See the module docs.
#[derive(Debug, Clone)]
pub struct CsvStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    kind: Kind,
    id: String,
    uid: Option<String>,
    /// Record field → column header.
    fields: Vec<(String, String)>,
    json: BTreeSet<String>,
    delimiter: u8,
    quote: u8,
    /// The file as last read plus buffered writes; `None` until read.
    table: Mutex<Option<Table>>,
}

/// The file's rows in memory.
#[derive(Debug)]
struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Row id → index into `rows` (the first row with that id).
    index: HashMap<String, usize>,
    /// What the file looked like when read; a different file is re-read
    /// (or, with buffered writes, makes the flush fail).
    stamp: Stamp,
    /// Writes not yet on disk.
    dirty: bool,
}

/// A file's identity and state: modification time, size, inode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Option<std::time::SystemTime>, u64, u64);

fn stamp_of(meta: &fs::Metadata) -> Stamp {
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = 0;
    Stamp(meta.modified().ok(), meta.len(), inode)
}

fn one_byte(what: &str, c: char) -> Result<u8> {
    u8::try_from(c)
        .ok()
        .filter(|b| b.is_ascii() && *b != b'\n' && *b != b'\r')
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Invalid,
                format!(
                    "csv {what} must be one ASCII character, found `{}`",
                    c.escape_debug()
                ),
            )
        })
}

/// A row's version: a hash of all its cells.
fn version_of(row: &[String]) -> String {
    let mut hasher = Sha256::new();
    for cell in row {
        hasher.update(cell.as_bytes());
        hasher.update([0x1f]);
    }
    hasher
        .finalize()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl CsvStore {
    /// A store over `config.path` for records of `kind`. The file is not
    /// read until used.
    pub fn new(config: CsvConfig, kind: Kind) -> Result<Self> {
        let delimiter = one_byte("delimiter", config.delimiter)?;
        let quote = one_byte("quote", config.quote)?;
        let mut fields = Vec::new();
        let mut uid = None;
        for (field, column) in config.columns {
            if column == config.id && field != "uid" {
                return Err(Error::new(
                    ErrorKind::Invalid,
                    format!("column `{column}` is the id column and cannot hold `{field}`"),
                ));
            }
            if field == "uid" {
                uid = Some(column);
            } else {
                fields.push((field, column));
            }
        }
        Ok(CsvStore {
            shared: Arc::new(Shared {
                path: config.path,
                kind,
                id: config.id,
                uid,
                fields,
                json: config.json.into_iter().collect(),
                delimiter,
                quote,
                table: Mutex::new(None),
            }),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Shared) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        crate::blocking::on_blocking_thread(&self.shared, work).await
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Option<Table>> {
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn shown(&self) -> String {
        self.path.display().to_string()
    }

    fn column_type(&self, column: &str) -> ColumnType {
        if self.json.contains(column) {
            ColumnType::Json
        } else {
            ColumnType::Text
        }
    }

    /// The table, read again when the file changed on disk and no writes
    /// are buffered.
    fn loaded<'g>(&self, guard: &'g mut MutexGuard<'_, Option<Table>>) -> Result<&'g mut Table> {
        let meta = fs::metadata(&self.path).map_err(|err| Error::io(self.shown(), err))?;
        let fresh = match guard.as_ref() {
            Some(table) => table.dirty || table.stamp == stamp_of(&meta),
            None => false,
        };
        if !fresh {
            **guard = Some(self.read()?);
        }
        guard
            .as_mut()
            .ok_or_else(|| Error::new(ErrorKind::Io, "the table was not loaded"))
    }

    fn reader(&self) -> ::csv::ReaderBuilder {
        let mut builder = ::csv::ReaderBuilder::new();
        builder
            .delimiter(self.delimiter)
            .quote(self.quote)
            .flexible(true)
            .has_headers(true);
        builder
    }

    fn read(&self) -> Result<Table> {
        let file = fs::File::open(&self.path).map_err(|err| Error::io(self.shown(), err))?;
        let stamp = stamp_of(
            &file
                .metadata()
                .map_err(|err| Error::io(self.shown(), err))?,
        );
        let csv_error =
            |err: ::csv::Error| Error::new(ErrorKind::Invalid, format!("{}: {err}", self.shown()));
        let mut reader = self.reader().from_reader(io::BufReader::new(file));
        let headers: Vec<String> = reader
            .headers()
            .map_err(csv_error)?
            .iter()
            .map(str::to_string)
            .collect();
        let wanted = std::iter::once(&self.id)
            .chain(self.uid.iter())
            .chain(self.fields.iter().map(|(_, c)| c));
        for column in wanted {
            if !headers.contains(column) {
                return Err(Error::new(
                    ErrorKind::Invalid,
                    format!("{}: the header row has no column `{column}`", self.shown()),
                ));
            }
        }
        let id_at = headers.iter().position(|h| *h == self.id).unwrap_or(0);
        let mut rows = Vec::new();
        let mut index = HashMap::new();
        for record in reader.records() {
            let record = record.map_err(csv_error)?;
            let mut row: Vec<String> = record.iter().map(str::to_string).collect();
            row.resize(headers.len().max(row.len()), String::new());
            let id = row[id_at].clone();
            if id.is_empty() {
                tracing::warn!(file = %self.shown(), "skipping a row without an id");
            } else {
                match index.entry(id) {
                    std::collections::hash_map::Entry::Occupied(taken) => {
                        tracing::warn!(file = %self.shown(), id = %taken.key(), "a second row with this id is ignored");
                    }
                    std::collections::hash_map::Entry::Vacant(free) => {
                        free.insert(rows.len());
                    }
                }
            }
            rows.push(row);
        }
        Ok(Table {
            headers,
            rows,
            index,
            stamp,
            dirty: false,
        })
    }

    fn at(&self, table: &Table, column: &str) -> usize {
        table.headers.iter().position(|h| h == column).unwrap_or(0)
    }

    fn record(&self, table: &Table, row: &[String]) -> std::result::Result<Record, ItemError> {
        let id = &row[self.at(table, &self.id)];
        let uid = self
            .uid
            .as_ref()
            .map(|c| row[self.at(table, c)].clone())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| id.clone());
        let mut record = Record::new(self.kind, uid);
        for (field, column) in self.fields.iter() {
            let text = &row[self.at(table, column)];
            let value =
                read_cell(field, self.column_type(column), text).map_err(|err| ItemError {
                    id: id.clone(),
                    kind: ErrorKind::Invalid,
                    field: Some(field.clone()),
                    message: format!(
                        "file {}, row `{id}`, column `{column}`: {err}",
                        self.shown()
                    ),
                })?;
            record.set(field.clone(), value);
        }
        Ok(record)
    }

    fn set_cell(
        &self,
        table: &Table,
        row: &mut [String],
        id: &str,
        field: &str,
        column: &str,
        value: Option<&Value>,
    ) -> Result<()> {
        let text = match value {
            Some(value) => write_cell(field, self.column_type(column), value).map_err(|err| {
                Error::new(
                    ErrorKind::Invalid,
                    format!(
                        "file {}, row `{id}`, column `{column}`: {err}",
                        self.shown()
                    ),
                )
                .with_id(id)
            })?,
            None => None,
        };
        row[self.at(table, column)] = text.unwrap_or_default();
        Ok(())
    }

    fn stale(&self, id: &str, expected: &str, actual: &str) -> Error {
        Error::new(
            ErrorKind::PreconditionFailed,
            format!(
                "file {}, row `{id}` changed: expected version {expected}, found {actual}",
                self.shown()
            ),
        )
        .with_id(id)
    }

    fn missing(&self, id: &str) -> Error {
        Error::new(
            ErrorKind::NotFound,
            format!("file {} has no row `{id}`", self.shown()),
        )
        .with_id(id)
    }

    fn list(&self) -> Result<Vec<Listed>> {
        let mut guard = self.lock();
        let table = self.loaded(&mut guard)?;
        Ok(table
            .index
            .iter()
            .map(|(id, &i)| Listed {
                id: id.clone(),
                version: version_of(&table.rows[i]),
            })
            .collect())
    }

    fn fetch(&self, ids: &[String]) -> Result<Vec<std::result::Result<Item, ItemError>>> {
        let mut guard = self.lock();
        let table = self.loaded(&mut guard)?;
        Ok(ids
            .iter()
            .map(|id| match table.index.get(id) {
                Some(&i) => self.record(table, &table.rows[i]).map(|record| Item {
                    id: id.clone(),
                    version: version_of(&table.rows[i]),
                    record,
                    raw: None,
                }),
                None => Err(ItemError {
                    id: id.clone(),
                    kind: ErrorKind::NotFound,
                    field: None,
                    message: format!("file {} has no row `{id}`", self.shown()),
                }),
            })
            .collect())
    }

    fn create(&self, record: &Record) -> Result<Written> {
        let mut guard = self.lock();
        let table = self.loaded(&mut guard)?;
        let uid = record.uid.as_str();
        let found = match &self.uid {
            None => table.index.get(uid).copied(),
            Some(column) => {
                let at = self.at(table, column);
                table
                    .index
                    .values()
                    .copied()
                    .find(|&i| table.rows[i][at] == uid)
            }
        };
        if let Some(i) = found {
            let row = &table.rows[i];
            let id = row[self.at(table, &self.id)].clone();
            let written = Written {
                id: id.clone(),
                version: version_of(row),
            };
            return match self.record(table, row) {
                Ok(existing) if existing.same_content(record) => Ok(written),
                Ok(existing) => Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!(
                        "file {}, row `{id}` holds UID `{uid}` with other content (fields {:?} differ)",
                        self.shown(),
                        existing.changed_fields(record)
                    ),
                )
                .with_id(id)),
                Err(err) => Err(Error::new(ErrorKind::AlreadyExists, err.to_string()).with_id(id)),
            };
        }
        if table.index.contains_key(uid) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "file {}: id `{uid}` is taken by a row with another UID",
                    self.shown()
                ),
            )
            .with_id(uid));
        }
        let mut row = vec![String::new(); table.headers.len()];
        row[self.at(table, &self.id)] = uid.to_string();
        if let Some(column) = &self.uid {
            row[self.at(table, column)] = uid.to_string();
        }
        for (field, column) in self.fields.iter() {
            self.set_cell(table, &mut row, uid, field, column, record.get(field))?;
        }
        let version = version_of(&row);
        table.index.insert(uid.to_string(), table.rows.len());
        table.rows.push(row);
        table.dirty = true;
        Ok(Written {
            id: uid.to_string(),
            version,
        })
    }

    fn update(&self, id: &str, expected: &str, changes: &[FieldChange]) -> Result<Written> {
        let mut guard = self.lock();
        let table = self.loaded(&mut guard)?;
        let i = *table.index.get(id).ok_or_else(|| self.missing(id))?;
        let actual = version_of(&table.rows[i]);
        if actual != expected {
            return Err(self.stale(id, expected, &actual));
        }
        let mut row = table.rows[i].clone();
        for change in changes {
            if let Some((field, column)) = self.fields.iter().find(|(f, _)| *f == change.field) {
                self.set_cell(table, &mut row, id, field, column, change.value.as_ref())?;
            }
        }
        let version = version_of(&row);
        if row != table.rows[i] {
            table.rows[i] = row;
            table.dirty = true;
        }
        Ok(Written {
            id: id.to_string(),
            version,
        })
    }

    fn delete(&self, id: &str, expected: &str) -> Result<()> {
        let mut guard = self.lock();
        let table = self.loaded(&mut guard)?;
        let i = *table.index.get(id).ok_or_else(|| self.missing(id))?;
        let actual = version_of(&table.rows[i]);
        if actual != expected {
            return Err(self.stale(id, expected, &actual));
        }
        table.rows.remove(i);
        table.index.remove(id);
        for at in table.index.values_mut() {
            if *at > i {
                *at -= 1;
            }
        }
        table.dirty = true;
        Ok(())
    }

    /// Writes `headers` and `rows` to a temp file beside the file, syncs it
    /// and renames it into place; returns the new file's stamp.
    fn write_file(&self, headers: &[String], rows: &[Vec<String>]) -> Result<Stamp> {
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(".{name}.{}.tandem.tmp", std::process::id()));
        let io_err = |err: io::Error| Error::io(temp.display(), err);
        let written = (|| -> Result<()> {
            let file = fs::File::create(&temp).map_err(io_err)?;
            let mut writer = ::csv::WriterBuilder::new()
                .delimiter(self.delimiter)
                .quote(self.quote)
                .flexible(true)
                .from_writer(io::BufWriter::new(file));
            let csv_err =
                |err: ::csv::Error| Error::new(ErrorKind::Io, format!("{}: {err}", temp.display()));
            writer.write_record(headers).map_err(csv_err)?;
            for row in rows {
                writer.write_record(row).map_err(csv_err)?;
            }
            let mut buffered = writer
                .into_inner()
                .map_err(|err| io_err(err.into_error()))?;
            buffered.flush().map_err(io_err)?;
            let file = buffered
                .into_inner()
                .map_err(|err| io_err(err.into_error()))?;
            file.sync_all().map_err(io_err)?;
            Ok(())
        })();
        if let Err(err) = written {
            let _ = fs::remove_file(&temp);
            return Err(err);
        }
        if let Err(err) = fs::rename(&temp, &self.path) {
            let _ = fs::remove_file(&temp);
            return Err(Error::io(self.shown(), err));
        }
        // The rename itself is durable once the folder is synced.
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|err| Error::io(dir.display(), err))?;
        let meta = fs::metadata(&self.path).map_err(|err| Error::io(self.shown(), err))?;
        Ok(stamp_of(&meta))
    }

    fn flush(&self) -> Result<()> {
        let mut guard = self.lock();
        let Some(table) = guard.as_mut() else {
            return Ok(());
        };
        if !table.dirty {
            return Ok(());
        }
        let now = fs::metadata(&self.path).map(|m| stamp_of(&m)).ok();
        if now.as_ref() != Some(&table.stamp) {
            *guard = None;
            return Err(Error::new(
                ErrorKind::PreconditionFailed,
                format!(
                    "{} changed on disk since it was read; the writes of this batch were not saved",
                    self.shown()
                ),
            ));
        }
        let stamp = self.write_file(&table.headers, &table.rows)?;
        table.stamp = stamp;
        table.dirty = false;
        Ok(())
    }

    /// Creates the file with a header row when it does not exist.
    fn create_file(&self) -> Result<()> {
        if self.path.exists() {
            let mut guard = self.lock();
            return self.loaded(&mut guard).map(|_| ());
        }
        let headers: Vec<String> = std::iter::once(self.id.clone())
            .chain(self.uid.iter().cloned())
            .chain(self.fields.iter().map(|(_, c)| c.clone()))
            .fold(Vec::new(), |mut seen, column| {
                if !seen.contains(&column) {
                    seen.push(column);
                }
                seen
            });
        self.write_file(&headers, &[])?;
        *self.lock() = None;
        Ok(())
    }
}

#[async_trait]
impl Store for CsvStore {
    async fn collections(&self) -> Result<Vec<String>> {
        self.blocking(|shared| {
            let mut guard = shared.lock();
            shared.loaded(&mut guard).map(|_| vec![ROOT.to_string()])
        })
        .await
    }

    async fn create_collection(&self, name: &str) -> Result<()> {
        if name != ROOT {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("a CSV file is one collection; cannot create `{name}`"),
            ));
        }
        self.blocking(|shared| shared.create_file()).await
    }

    async fn list(&self, collection: &str) -> Result<Vec<Listed>> {
        root(collection)?;
        self.blocking(|shared| shared.list()).await
    }

    async fn fetch(
        &self,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<std::result::Result<Item, ItemError>>> {
        root(collection)?;
        let ids = ids.to_vec();
        self.blocking(move |shared| shared.fetch(&ids)).await
    }

    async fn create(&self, collection: &str, item: &NewItem) -> Result<Written> {
        root(collection)?;
        if item.record.uid.is_empty() {
            return Err(Error::new(ErrorKind::Invalid, "the record has no UID"));
        }
        let record = item.record.clone();
        self.blocking(move |shared| shared.create(&record)).await
    }

    async fn update(
        &self,
        collection: &str,
        current: &Item,
        expected: &str,
        changes: &[FieldChange],
    ) -> Result<Written> {
        root(collection)?;
        let id = current.id.clone();
        let expected = expected.to_string();
        let changes = changes.to_vec();
        self.blocking(move |shared| shared.update(&id, &expected, &changes))
            .await
    }

    async fn delete(&self, collection: &str, id: &str, expected: &str) -> Result<()> {
        root(collection)?;
        let id = id.to_string();
        let expected = expected.to_string();
        self.blocking(move |shared| shared.delete(&id, &expected))
            .await
    }

    async fn flush(&self) -> Result<()> {
        self.blocking(|shared| shared.flush()).await
    }
}

fn root(collection: &str) -> Result<()> {
    if collection == ROOT {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::NotFound,
            format!("collection `{collection}`: a CSV file is one collection"),
        ))
    }
}
