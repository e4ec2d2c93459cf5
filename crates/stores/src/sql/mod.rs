//! [`SqlStore`]: one table per kind of record in SQLite, PostgreSQL or
//! MySQL/MariaDB, reached through sqlx.
//!
//! A row is an item: its primary key (as text) is the item's id and, unless
//! a `uid` column is mapped, the record's UID; the version column is its
//! version; mapped columns are fields (converted by
//! [`tandem_formats::row`]). The table and columns are checked against the
//! catalog before the first use ([`Store::collections`], which `tandem
//! check` calls, does only that). Listing reads `(id, version)` of live
//! rows; [`Store::changes_since`] reads the rows whose version is above a
//! token, so with a soft-delete column a run costs in proportion to the
//! rows that changed. Writes are compare-and-set on the version column
//! (`… WHERE id = ? AND version = ?`), the new version computed by the
//! database; updates set only the columns of changed fields. Every value is
//! a bound parameter. The table is the root collection; there are no others.
//!
//! Writes share one transaction, opened by the first write and committed by
//! [`Store::flush`] (which the engine calls every 1,000 writes and
//! before it records them), so a batch costs one durable commit, not one per
//! row. Each write runs inside a savepoint: a failed write rolls back only
//! itself. Reads made while the transaction is open go through it, so they
//! see the store's own uncommitted writes.
//!
//! Every call runs as a task of its own. The engine starts writes, reads
//! and flushes and leaves them while it plans what comes next (see
//! [`Store`]); a call that holds the transaction goes on to its end and
//! lets go of it whether or not its caller polls it again.

mod config;
mod schema;
#[cfg(test)]
mod tests;

pub use config::{SqlConfig, TableConfig};

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use futures_util::TryStreamExt;
use schema::{Column, Dialect, Statement, Table, VersionKind};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyConnection, AnyPool, Executor, Row, Transaction};
use std::future::Future;
use std::sync::Arc;
use tandem_formats::row::{read_cell, timestamp_seconds, write_cell, ColumnType};
use tandem_record::{FieldChange, Kind, Record, Value};
use tandem_store::{
    Changes, Error, ErrorKind, Item, ItemError, Listed, NewItem, Result, Store, Written, ROOT,
};
use tokio::sync::{Mutex, OnceCell};

/// Most ids one fetch query names.
const FETCH_CHUNK: usize = 500;

/// Connections a store keeps open.
const MAX_CONNECTIONS: u32 = 4;

/// The savepoint each write runs in, inside the shared transaction.
const SAVEPOINT: &str = "SAVEPOINT tandem_write";
const RELEASE: &str = "RELEASE SAVEPOINT tandem_write";
const ROLLBACK_TO: &str = "ROLLBACK TO SAVEPOINT tandem_write";
/// The savepoint a finished step left, released as the next one begins: one
/// round trip where PostgreSQL and SQLite take both statements at once.
const RELEASE_THEN_SAVEPOINT: &str = "RELEASE SAVEPOINT tandem_write; SAVEPOINT tandem_write";

/// A SQL table store. See the module docs.
#[derive(Debug)]
pub struct SqlStore {
    shared: Arc<Shared>,
}

/// The store itself, shared with the tasks its calls run on.
#[derive(Debug)]
struct Shared {
    pool: AnyPool,
    dialect: Dialect,
    kind: Kind,
    config: TableConfig,
    table: OnceCell<Table>,
    /// The transaction the writes since the last flush share.
    open: Mutex<Open>,
}

/// The shared write transaction, and why an earlier one was lost.
#[derive(Debug, Default)]
struct Open {
    tx: Option<Transaction<'static, Any>>,
    /// Writes that succeeded in `tx`.
    writes: usize,
    /// The last step succeeded and its savepoint is still open: the next
    /// step releases it (the commit keeps it anyway).
    held: bool,
    /// Set when a transaction holding writes was rolled back by a failure:
    /// the next flush reports it, so the engine does not record them.
    lost: Option<String>,
}

/// A row as read: id, version, soft-deleted or not, UID cell, field cells.
struct RowData {
    id: String,
    version: String,
    deleted: bool,
    uid: Option<String>,
    cells: Vec<Option<String>>,
}

impl SqlStore {
    /// A store over `config.url` for records of `kind`, using the table
    /// configured for that kind. Names are checked here (a name that is not
    /// a plain identifier is refused); the database is first reached, and
    /// the catalog checked, on first use.
    pub fn new(config: SqlConfig, kind: Kind) -> Result<Self> {
        Ok(SqlStore {
            shared: Arc::new(Shared::new(config, kind)?),
        })
    }

    /// Checks the configured table and columns against the database
    /// catalog (once; later calls answer from memory).
    pub async fn check(&self) -> Result<()> {
        self.on_task(|s| async move { s.check().await }).await
    }

    /// Runs `call` on a task of its own (see the module docs).
    async fn on_task<T, F, Fut>(&self, call: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        tokio::spawn(call(Arc::clone(&self.shared)))
            .await
            .map_err(|err| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "table `{}`: the call's task ended: {err}",
                        self.shared.config.table
                    ),
                )
            })?
    }
}

impl Shared {
    fn new(config: SqlConfig, kind: Kind) -> Result<Self> {
        for name in config.tables.keys() {
            name.parse::<Kind>()
                .map_err(|err| Error::new(ErrorKind::Invalid, format!("tables.{name}: {err}")))?;
        }
        let table = config.tables.get(kind.as_str()).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::Invalid,
                format!("no table configured for {kind}s (add [tables.{kind}])"),
            )
        })?;
        let dialect = Dialect::from_url(&config.url)?;
        schema::check_names(dialect, &table)?;
        sqlx::any::install_default_drivers();
        // MySQL's default REPEATABLE READ would pin every read of the
        // long write transaction to its first snapshot; READ COMMITTED reads
        // what other writers committed since, as PostgreSQL does.
        let setup: &'static [&'static str] = match dialect {
            Dialect::Sqlite => &[],
            Dialect::Postgres => &["SET TIME ZONE 'UTC'"],
            Dialect::MySql => &[
                "SET time_zone = '+00:00'",
                "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            ],
        };
        let pool = AnyPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    for statement in setup {
                        conn.execute(*statement).await?;
                    }
                    Ok(())
                })
            })
            .connect_lazy(&config.url)
            .map_err(|err| Error::new(ErrorKind::Invalid, format!("sql url: {err}")))?;
        Ok(Shared {
            pool,
            dialect,
            kind,
            config: table,
            table: OnceCell::new(),
            open: Mutex::new(Open::default()),
        })
    }

    async fn check(&self) -> Result<()> {
        self.table().await.map(|_| ())
    }

    async fn table(&self) -> Result<&Table> {
        self.table
            .get_or_try_init(|| schema::check(&self.pool, self.dialect, &self.config))
            .await
    }

    async fn root(&self, collection: &str) -> Result<&Table> {
        if collection != ROOT {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("collection `{collection}`: a SQL table is one collection"),
            ));
        }
        self.table().await
    }

    /// Opens the shared transaction if there is none (with `begin`), then a
    /// savepoint in it; the connection to run the step on. `None`: no
    /// transaction is open and `begin` is false (read from the pool).
    async fn step<'g>(
        &self,
        open: &'g mut Open,
        begin: bool,
    ) -> Result<Option<&'g mut AnyConnection>> {
        if open.tx.is_none() {
            if !begin {
                return Ok(None);
            }
            let tx = self
                .pool
                .begin()
                .await
                .map_err(|e| db_error("starting a transaction", e))?;
            open.tx = Some(tx);
        }
        let Some(tx) = open.tx.as_mut() else {
            return Ok(None);
        };
        let began = match (std::mem::take(&mut open.held), self.dialect) {
            (false, _) => tx.execute(SAVEPOINT).await.map(|_| ()),
            (true, Dialect::Postgres | Dialect::Sqlite) => {
                tx.execute(RELEASE_THEN_SAVEPOINT).await.map(|_| ())
            }
            (true, Dialect::MySql) => match tx.execute(RELEASE).await {
                Ok(_) => tx.execute(SAVEPOINT).await.map(|_| ()),
                Err(err) => Err(err),
            },
        };
        if let Err(err) = began {
            return Err(Self::lose(open, err));
        }
        Ok(open.tx.as_deref_mut())
    }

    /// Ends a step begun with [`Self::step`]: keeps it when it succeeded
    /// (its savepoint is released by the next step), rolls back to its
    /// savepoint when it failed (the transaction's other writes stay). A
    /// transaction no write succeeded in is ended at once, so failed writes
    /// hold no locks until the next flush.
    async fn end_step<T>(open: &mut Open, result: Result<T>, write: bool) -> Result<T> {
        if write && result.is_err() && open.writes == 0 {
            if let Some(tx) = open.tx.take() {
                if let Err(err) = tx.rollback().await {
                    return Err(Self::lose(open, err));
                }
            }
            return result;
        }
        let Some(tx) = open.tx.as_mut() else {
            return result;
        };
        if write && result.is_ok() {
            open.writes += 1;
        }
        let ended = match &result {
            Ok(_) => {
                open.held = true;
                Ok(())
            }
            Err(_) => match tx.execute(ROLLBACK_TO).await {
                Ok(_) => tx.execute(RELEASE).await.map(|_| ()),
                Err(err) => Err(err),
            },
        };
        match ended {
            Ok(()) => result,
            Err(err) => Err(Self::lose(open, err)),
        }
    }

    /// Drops a transaction that can no longer be used (it rolls back); the
    /// next flush fails, so the writes it held are not recorded.
    fn lose(open: &mut Open, err: sqlx::Error) -> Error {
        open.tx = None;
        open.held = false;
        let message = format!(
            "the write transaction failed and was rolled back ({err}); the writes since the \
             last flush are undone"
        );
        if open.writes > 0 {
            open.lost.get_or_insert_with(|| message.clone());
        }
        open.writes = 0;
        Error::new(ErrorKind::Unavailable, message)
    }

    /// Runs a read: inside the shared transaction when one is open (so it
    /// sees this store's own writes), else on the pool.
    async fn read(&self, st: &Statement, sql: &str, context: &str) -> Result<Vec<AnyRow>> {
        let mut rows = Vec::new();
        self.read_each(st, sql, context, |row| {
            rows.push(row);
            Ok(())
        })
        .await?;
        Ok(rows)
    }

    /// [`Self::read`], handing each row to `each` as it arrives, so that a
    /// whole table (a listing, a first change feed) is never held as rows.
    async fn read_each(
        &self,
        st: &Statement,
        sql: &str,
        context: &str,
        mut each: impl FnMut(AnyRow) -> Result<()> + Send,
    ) -> Result<()> {
        let mut open = self.open.lock().await;
        match self.step(&mut open, false).await? {
            Some(conn) => {
                let result = drain(st.query(sql).fetch(conn), context, &mut each).await;
                Self::end_step(&mut open, result, false).await
            }
            None => {
                drop(open);
                drain(st.query(sql).fetch(&self.pool), context, &mut each).await
            }
        }
    }

    /// The select list every row read uses.
    fn select_list(table: &Table) -> String {
        let deleted = format!("CASE WHEN {} THEN 0 ELSE 1 END", table.live());
        let mut list = vec![
            table.read(&table.id),
            format!("COALESCE({}, '')", table.read(&table.version)),
            deleted,
            table.read(table.uid_column()),
        ];
        list.extend(table.fields.iter().map(|(_, c)| table.read(c)));
        list.join(", ")
    }

    fn row_data(row: &AnyRow, fields: usize) -> std::result::Result<RowData, sqlx::Error> {
        let deleted: i64 = match row.try_get::<i64, _>(2) {
            Ok(v) => v,
            Err(_) => i64::from(row.try_get::<i32, _>(2)?),
        };
        let mut cells = Vec::with_capacity(fields);
        for i in 0..fields {
            cells.push(row.try_get::<Option<String>, _>(4 + i)?);
        }
        Ok(RowData {
            id: row.try_get(0)?,
            version: row.try_get(1)?,
            deleted: deleted != 0,
            uid: row.try_get(3)?,
            cells,
        })
    }

    /// Rows matching `filter` (SQL text over `statement`'s binds), read on
    /// `conn` (inside a write).
    async fn select(
        &self,
        table: &Table,
        filter: &str,
        statement: &Statement,
        conn: &mut AnyConnection,
    ) -> Result<Vec<RowData>> {
        let rows = statement
            .query(&Self::select_sql(table, filter))
            .fetch_all(conn)
            .await
            .map_err(|err| db_error(&format!("reading table `{}`", table.name), err))?;
        Self::rows(table, &rows)
    }

    /// Rows matching `filter`, read through [`Self::read`].
    async fn select_read(
        &self,
        table: &Table,
        filter: &str,
        statement: &Statement,
    ) -> Result<Vec<RowData>> {
        let context = format!("reading table `{}`", table.name);
        let rows = self
            .read(statement, &Self::select_sql(table, filter), &context)
            .await?;
        Self::rows(table, &rows)
    }

    fn select_sql(table: &Table, filter: &str) -> String {
        format!(
            "SELECT {} FROM {} WHERE {filter}",
            Self::select_list(table),
            table.quoted
        )
    }

    fn rows(table: &Table, rows: &[AnyRow]) -> Result<Vec<RowData>> {
        rows.iter()
            .map(|row| Self::row_data(row, table.fields.len()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|err| db_error(&format!("reading table `{}`", table.name), err))
    }

    fn record(&self, table: &Table, row: &RowData) -> std::result::Result<Record, ItemError> {
        let uid = row
            .uid
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| row.id.clone());
        let mut record = Record::new(self.kind, uid);
        for ((field, column), cell) in table.fields.iter().zip(&row.cells) {
            let Some(text) = cell else { continue };
            let value = read_cell(field, column.ty, text).map_err(|err| ItemError {
                id: row.id.clone(),
                kind: ErrorKind::Invalid,
                field: Some(field.clone()),
                message: format!(
                    "table `{}`, row `{}`, column `{}`: {err}",
                    table.name, row.id, column.name
                ),
            })?;
            record.set(field.clone(), value);
        }
        if table.version_kind == VersionKind::Clock {
            record.modified = timestamp_seconds(&row.version);
        }
        Ok(record)
    }

    /// The cell text for `field`, or an error naming table, row and column.
    fn cell(
        table: &Table,
        id: &str,
        field: &str,
        column: &Column,
        value: &Value,
    ) -> Result<Option<String>> {
        write_cell(field, column.ty, value).map_err(|err| {
            Error::new(
                ErrorKind::Invalid,
                format!(
                    "table `{}`, row `{id}`, column `{}`: {err}",
                    table.name, column.name
                ),
            )
            .with_id(id)
        })
    }

    /// The live row holding `uid`, if any, with its record.
    async fn by_uid(
        &self,
        table: &Table,
        uid: &str,
        conn: &mut AnyConnection,
    ) -> Result<Option<RowData>> {
        let mut st = Statement::default();
        let column = table.uid_column();
        let p = st.bind(self.dialect, column, Some(uid.to_string()));
        let filter = format!("{} = {p}", column.quoted);
        Ok(self
            .select(table, &filter, &st, conn)
            .await?
            .into_iter()
            .next())
    }

    /// Why a compare-and-set touched no row: gone, or moved on.
    async fn stale(
        &self,
        table: &Table,
        id: &str,
        expected: &str,
        conn: &mut AnyConnection,
    ) -> Error {
        let mut st = Statement::default();
        let p = st.bind(self.dialect, &table.id, Some(id.to_string()));
        let filter = format!("{} = {p}", table.id.quoted);
        match self.select(table, &filter, &st, conn).await {
            Ok(rows) => match rows.first() {
                Some(row) if !row.deleted => Error::new(
                    ErrorKind::PreconditionFailed,
                    format!(
                        "table `{}`, row `{id}` changed: expected version {expected}, found {}",
                        table.name, row.version
                    ),
                )
                .with_id(id),
                _ => Error::new(
                    ErrorKind::NotFound,
                    format!("table `{}` has no row `{id}`", table.name),
                )
                .with_id(id),
            },
            Err(err) => err.with_id(id),
        }
    }

    /// The version of row `id`, read inside the write's transaction.
    async fn version_of(
        &self,
        table: &Table,
        id: &str,
        conn: &mut AnyConnection,
    ) -> Result<String> {
        let mut st = Statement::default();
        let p = st.bind(self.dialect, &table.id, Some(id.to_string()));
        let sql = format!(
            "SELECT COALESCE({}, '') FROM {} WHERE {} = {p}",
            table.read(&table.version),
            table.quoted,
            table.id.quoted
        );
        st.query(&sql)
            .fetch_one(conn)
            .await
            .and_then(|row| row.try_get::<String, _>(0))
            .map_err(|err| {
                db_error(&format!("table `{}`, row `{id}`", table.name), err).with_id(id)
            })
    }

    /// `version = ?`, or `version IS NULL` for a row listed without one.
    fn version_guard(&self, table: &Table, st: &mut Statement, expected: &str) -> String {
        if expected.is_empty() {
            format!("{} IS NULL", table.version.quoted)
        } else {
            let p = st.bind(self.dialect, &table.version, Some(expected.to_string()));
            format!("{} = {p}", table.version.quoted)
        }
    }

    /// ` RETURNING id, version` where the database has it for both INSERT
    /// and UPDATE (PostgreSQL, SQLite), saving a read-back.
    fn returning(&self, table: &Table) -> Option<String> {
        (self.dialect != Dialect::MySql).then(|| {
            format!(
                " RETURNING {}, COALESCE({}, '')",
                table.read(&table.id),
                table.read(&table.version)
            )
        })
    }

    /// Inserts `record`. With `if_new` (only where [`Self::returning`] is
    /// there) a row already holding the key is left alone and `None` comes
    /// back.
    async fn insert(
        &self,
        table: &Table,
        record: &Record,
        conn: &mut AnyConnection,
        if_new: bool,
    ) -> Result<Option<Written>> {
        let uid = record.uid.as_str();
        let mut st = Statement::default();
        let mut columns = Vec::new();
        let mut values = Vec::new();
        if table.uid.is_none() && table.id.ty == ColumnType::Integer && uid.parse::<i64>().is_err()
        {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!(
                    "table `{}`: UID `{uid}` cannot be the integer id `{}`; map a `uid` column \
                     to keep UIDs and let the database number the rows",
                    table.name, table.id.name
                ),
            )
            .with_id(uid));
        }
        // The id is the UID unless UIDs have a column of their own (then
        // the database numbers the rows).
        let uid_column = table.uid_column();
        columns.push(uid_column.quoted.clone());
        values.push(st.bind(self.dialect, uid_column, Some(uid.to_string())));
        for (field, column) in table.fields.iter() {
            if let Some(value) = record.get(field) {
                let cell = Self::cell(table, uid, field, column, value)?;
                columns.push(column.quoted.clone());
                values.push(st.bind(self.dialect, column, cell));
            }
        }
        columns.push(table.version.quoted.clone());
        values.push(table.next_version(false));
        let returning = self.returning(table);
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({}){}{}",
            table.quoted,
            columns.join(", "),
            values.join(", "),
            if if_new {
                " ON CONFLICT DO NOTHING"
            } else {
                ""
            },
            returning.as_deref().unwrap_or("")
        );
        let context = format!("table `{}`, row `{uid}`", table.name);
        if returning.is_some() {
            let row = st
                .query(&sql)
                .fetch_optional(&mut *conn)
                .await
                .map_err(|e| db_error(&context, e).with_id(uid))?;
            let Some(row) = row else {
                if if_new {
                    return Ok(None);
                }
                return Err(Error::new(
                    ErrorKind::Io,
                    format!("{context}: the inserted row is not there"),
                ));
            };
            let id: String = row.try_get(0).map_err(|e| db_error(&context, e))?;
            let version: String = row.try_get(1).map_err(|e| db_error(&context, e))?;
            return Ok(Some(Written { id, version }));
        }
        st.query(&sql)
            .execute(&mut *conn)
            .await
            .map_err(|e| db_error(&context, e).with_id(uid))?;
        let row = self.by_uid(table, uid, conn).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::Io,
                format!("{context}: the inserted row is not there"),
            )
        })?;
        Ok(Some(Written {
            id: row.id,
            version: row.version,
        }))
    }

    /// Brings a soft-deleted row back with `record`'s content.
    async fn revive(
        &self,
        table: &Table,
        row: &RowData,
        record: &Record,
        conn: &mut AnyConnection,
    ) -> Result<Written> {
        let Some(deleted) = &table.deleted else {
            return Err(Error::new(ErrorKind::Io, "revive without a deleted column"));
        };
        let mut st = Statement::default();
        let mut sets = Vec::new();
        for (field, column) in table.fields.iter() {
            let cell = match record.get(field) {
                Some(value) => Self::cell(table, &row.id, field, column, value)?,
                None => None,
            };
            sets.push(format!(
                "{} = {}",
                column.quoted,
                st.bind(self.dialect, column, cell)
            ));
        }
        sets.push(format!("{} = NULL", deleted.quoted));
        self.guarded_update(table, &row.id, &row.version, sets, st, false, conn)
            .await
    }

    /// `UPDATE … SET sets, version = next WHERE id = ? AND version = ?`
    /// (and, with `live_only`, not soft-deleted), then the new version.
    #[allow(clippy::too_many_arguments)]
    async fn guarded_update(
        &self,
        table: &Table,
        id: &str,
        expected: &str,
        mut sets: Vec<String>,
        mut st: Statement,
        live_only: bool,
        conn: &mut AnyConnection,
    ) -> Result<Written> {
        sets.push(format!(
            "{} = {}",
            table.version.quoted,
            table.next_version(true)
        ));
        let pid = st.bind(self.dialect, &table.id, Some(id.to_string()));
        let guard = self.version_guard(table, &mut st, expected);
        let live = if live_only {
            format!(" AND {}", table.live())
        } else {
            String::new()
        };
        let returning = self.returning(table);
        let sql = format!(
            "UPDATE {} SET {} WHERE {} = {pid} AND {guard}{live}{}",
            table.quoted,
            sets.join(", "),
            table.id.quoted,
            returning.as_deref().unwrap_or("")
        );
        let context = format!("table `{}`, row `{id}`", table.name);
        if returning.is_some() {
            let row = st
                .query(&sql)
                .fetch_optional(&mut *conn)
                .await
                .map_err(|e| db_error(&context, e).with_id(id))?;
            let Some(row) = row else {
                return Err(self.stale(table, id, expected, conn).await);
            };
            let version: String = row.try_get(1).map_err(|e| db_error(&context, e))?;
            return Ok(Written {
                id: id.to_string(),
                version,
            });
        }
        let done = st
            .query(&sql)
            .execute(&mut *conn)
            .await
            .map_err(|e| db_error(&context, e).with_id(id))?;
        if done.rows_affected() == 0 {
            return Err(self.stale(table, id, expected, conn).await);
        }
        let version = self.version_of(table, id, conn).await?;
        Ok(Written {
            id: id.to_string(),
            version,
        })
    }

    /// One try at [`Store::create`] on `conn`; `clashed` is set when the
    /// insert met a row with the UID that the lookup did not see.
    async fn create_once(
        &self,
        table: &Table,
        record: &Record,
        conn: &mut AnyConnection,
        clashed: &mut bool,
    ) -> Result<Written> {
        // When the UID is the primary key, insert first and look only if the
        // key is taken: one round trip fewer for the usual new row.
        if table.uid.is_none() && self.returning(table).is_some() {
            if let Some(written) = self.insert(table, record, &mut *conn, true).await? {
                return Ok(written);
            }
        }
        if let Some(row) = self.by_uid(table, &record.uid, &mut *conn).await? {
            if row.deleted {
                return self.revive(table, &row, record, conn).await;
            }
            let written = Written {
                id: row.id.clone(),
                version: row.version.clone(),
            };
            return match self.record(table, &row) {
                Ok(found) if found.same_content(record) => Ok(written),
                Ok(found) => Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!(
                        "table `{}`, row `{}` holds UID `{}` with other content (fields {:?} differ)",
                        table.name,
                        row.id,
                        record.uid,
                        found.changed_fields(record)
                    ),
                )
                .with_id(row.id)),
                Err(err) => Err(Error::new(ErrorKind::AlreadyExists, err.to_string()).with_id(row.id)),
            };
        }
        let inserted = self
            .insert(table, record, &mut *conn, false)
            .await
            .and_then(|w| {
                w.ok_or_else(|| Error::new(ErrorKind::Io, "the inserted row is not there"))
            });
        if matches!(&inserted, Err(err) if err.kind == ErrorKind::AlreadyExists) {
            *clashed = true;
        }
        inserted
    }

    async fn update_in(
        &self,
        table: &Table,
        current: &Item,
        expected: &str,
        changes: &[FieldChange],
        conn: &mut AnyConnection,
    ) -> Result<Written> {
        let id = current.id.as_str();
        let mut st = Statement::default();
        let mut sets = Vec::new();
        for change in changes {
            let Some((field, column)) = table.fields.iter().find(|(f, _)| *f == change.field)
            else {
                tracing::debug!(table = %table.name, field = %change.field, "field not mapped to a column; not written");
                continue;
            };
            let cell = match &change.value {
                Some(value) => Self::cell(table, id, field, column, value)?,
                None => None,
            };
            sets.push(format!(
                "{} = {}",
                column.quoted,
                st.bind(self.dialect, column, cell)
            ));
        }
        if sets.is_empty() {
            // Nothing this table holds changed: only check the version.
            let version = self.version_of(table, id, &mut *conn).await;
            return match version {
                Ok(version) if version == expected => Ok(Written {
                    id: id.to_string(),
                    version,
                }),
                _ => Err(self.stale(table, id, expected, conn).await),
            };
        }
        self.guarded_update(table, id, expected, sets, st, true, conn)
            .await
    }

    async fn delete_in(
        &self,
        table: &Table,
        id: &str,
        expected: &str,
        conn: &mut AnyConnection,
    ) -> Result<()> {
        let mut st = Statement::default();
        let pid = st.bind(self.dialect, &table.id, Some(id.to_string()));
        let guard = self.version_guard(table, &mut st, expected);
        let sql = match &table.deleted {
            Some(deleted) => format!(
                "UPDATE {t} SET {d} = {mark}, {v} = {next} WHERE {i} = {pid} AND {guard} AND {live}",
                t = table.quoted,
                d = deleted.quoted,
                mark = table.deleted_mark(deleted),
                v = table.version.quoted,
                next = table.next_version(true),
                i = table.id.quoted,
                live = table.live(),
            ),
            None => format!(
                "DELETE FROM {} WHERE {} = {pid} AND {guard}",
                table.quoted, table.id.quoted
            ),
        };
        let done =
            st.query(&sql).execute(&mut *conn).await.map_err(|e| {
                db_error(&format!("table `{}`, row `{id}`", table.name), e).with_id(id)
            })?;
        if done.rows_affected() == 0 {
            return Err(self.stale(table, id, expected, conn).await);
        }
        Ok(())
    }
}

/// Hands each row of `rows` to `each`; the first error ends it.
async fn drain(
    mut rows: BoxStream<'_, std::result::Result<AnyRow, sqlx::Error>>,
    context: &str,
    each: &mut (impl FnMut(AnyRow) -> Result<()> + Send),
) -> Result<()> {
    while let Some(row) = rows.try_next().await.map_err(|e| db_error(context, e))? {
        each(row)?;
    }
    Ok(())
}

/// A sqlx error as a store error: connection trouble is passing, a unique
/// key clash means the row exists, anything else the database refused is
/// about the request.
pub(crate) fn db_error(context: &str, err: sqlx::Error) -> Error {
    let kind = match &err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => ErrorKind::Unavailable,
        sqlx::Error::RowNotFound => ErrorKind::NotFound,
        sqlx::Error::Database(db) if db.is_unique_violation() => ErrorKind::AlreadyExists,
        _ => ErrorKind::Invalid,
    };
    Error::new(kind, format!("{context}: {err}"))
}

/// The calls of [`Store`], run on [`SqlStore`]'s tasks.
impl Shared {
    async fn collections(&self) -> Result<Vec<String>> {
        self.check().await?;
        Ok(vec![ROOT.to_string()])
    }

    async fn create_collection(&self, name: &str) -> Result<()> {
        if name == ROOT {
            return self.check().await;
        }
        Err(Error::new(
            ErrorKind::Unsupported,
            format!("a SQL table is one collection; cannot create `{name}`"),
        ))
    }

    async fn list(&self, collection: &str) -> Result<Vec<Listed>> {
        let table = self.root(collection).await?;
        let sql = format!(
            "SELECT {}, COALESCE({}, '') FROM {} WHERE {}",
            table.read(&table.id),
            table.read(&table.version),
            table.quoted,
            table.live()
        );
        let context = format!("listing table `{}`", table.name);
        let mut listed = Vec::new();
        self.read_each(&Statement::default(), &sql, &context, |row| {
            listed.push(Listed {
                id: row.try_get(0).map_err(|e| db_error(&context, e))?,
                version: row.try_get(1).map_err(|e| db_error(&context, e))?,
            });
            Ok(())
        })
        .await?;
        Ok(listed)
    }

    async fn fetch(
        &self,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<std::result::Result<Item, ItemError>>> {
        let table = self.root(collection).await?;
        let mut found = std::collections::HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(FETCH_CHUNK) {
            let mut st = Statement::default();
            let placeholders: Vec<String> = chunk
                .iter()
                .map(|id| st.bind(self.dialect, &table.id, Some(id.clone())))
                .collect();
            let filter = format!(
                "{} AND {} IN ({})",
                table.live(),
                table.id.quoted,
                placeholders.join(", ")
            );
            for row in self.select_read(table, &filter, &st).await? {
                found.insert(row.id.clone(), row);
            }
        }
        Ok(ids
            .iter()
            .map(|id| match found.get(id) {
                Some(row) => self.record(table, row).map(|record| Item {
                    id: row.id.clone(),
                    version: row.version.clone(),
                    record,
                    raw: None,
                }),
                None => Err(ItemError {
                    id: id.clone(),
                    kind: ErrorKind::NotFound,
                    field: None,
                    message: format!("table `{}` has no row `{id}`", table.name),
                }),
            })
            .collect())
    }

    async fn create(&self, collection: &str, item: &NewItem) -> Result<Written> {
        let table = self.root(collection).await?;
        let record = &item.record;
        if record.uid.is_empty() {
            return Err(Error::new(ErrorKind::Invalid, "the record has no UID"));
        }
        for attempt in 0..2 {
            let mut clashed = false;
            let mut open = self.open.lock().await;
            let result = match self.step(&mut open, true).await? {
                Some(conn) => self.create_once(table, record, conn, &mut clashed).await,
                None => Err(Error::new(ErrorKind::Io, "no write transaction")),
            };
            let result = Self::end_step(&mut open, result, true).await;
            // Another writer inserted the UID since we looked: look again.
            if clashed && attempt == 0 {
                continue;
            }
            return result;
        }
        Err(Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "table `{}`: UID `{}` keeps clashing",
                table.name, record.uid
            ),
        ))
    }

    async fn update(
        &self,
        collection: &str,
        current: &Item,
        expected: &str,
        changes: &[FieldChange],
    ) -> Result<Written> {
        let table = self.root(collection).await?;
        let mut open = self.open.lock().await;
        let result = match self.step(&mut open, true).await? {
            Some(conn) => {
                self.update_in(table, current, expected, changes, conn)
                    .await
            }
            None => Err(Error::new(ErrorKind::Io, "no write transaction")),
        };
        Self::end_step(&mut open, result, true).await
    }

    async fn delete(&self, collection: &str, id: &str, expected: &str) -> Result<()> {
        let table = self.root(collection).await?;
        let mut open = self.open.lock().await;
        let result = match self.step(&mut open, true).await? {
            Some(conn) => self.delete_in(table, id, expected, conn).await,
            None => Err(Error::new(ErrorKind::Io, "no write transaction")),
        };
        Self::end_step(&mut open, result, true).await
    }

    /// Commits the writes since the last flush.
    async fn flush(&self) -> Result<()> {
        let mut open = self.open.lock().await;
        let tx = open.tx.take();
        let lost = open.lost.take();
        open.writes = 0;
        open.held = false;
        if let Some(tx) = tx {
            tx.commit()
                .await
                .map_err(|e| db_error("committing the writes", e))?;
        }
        match lost {
            Some(message) => Err(Error::new(ErrorKind::Unavailable, message)),
            None => Ok(()),
        }
    }
    /// Rows whose version is above `token` (all rows for `None`): changed
    /// live rows and soft-deleted ids. Needs a soft-delete column (without
    /// one, a deleted row leaves no trace to find) and versions that grow
    /// across the table (timestamps, or Tandem's counter).
    async fn changes_since(&self, collection: &str, token: Option<&str>) -> Result<Changes> {
        let table = self.root(collection).await?;
        if table.deleted.is_none() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "table `{}` has no deleted column, so deletes are found by listing",
                    table.name
                ),
            ));
        }
        let mut st = Statement::default();
        let filter = match token {
            Some(token) if !token.is_empty() => {
                let p = st.bind(self.dialect, &table.version, Some(token.to_string()));
                format!("{} > {p}", table.version.quoted)
            }
            _ => "1 = 1".to_string(),
        };
        let sql = format!(
            "SELECT {}, COALESCE({}, ''), CASE WHEN {} THEN 0 ELSE 1 END FROM {} WHERE {filter}",
            table.read(&table.id),
            table.read(&table.version),
            table.live(),
            table.quoted
        );
        let context = format!("reading changes of table `{}`", table.name);
        let mut changes = Changes {
            changed: Vec::new(),
            deleted: Vec::new(),
            token: token.unwrap_or_default().to_string(),
        };
        self.read_each(&st, &sql, &context, |row| {
            let id: String = row.try_get(0).map_err(|e| db_error(&context, e))?;
            let version: String = row.try_get(1).map_err(|e| db_error(&context, e))?;
            let deleted = match row.try_get::<i64, _>(2) {
                Ok(v) => v != 0,
                Err(_) => {
                    row.try_get::<i32, _>(2)
                        .map_err(|e| db_error(&context, e))?
                        != 0
                }
            };
            if deleted {
                changes.deleted.push(id);
            } else {
                changes.changed.push(Listed { id, version });
            }
            Ok(())
        })
        .await?;
        // The highest version seen, compared by the database's own order.
        let sql = format!(
            "SELECT {} FROM {} WHERE {filter} ORDER BY {} DESC LIMIT 1",
            table.read(&table.version),
            table.quoted,
            table.version.quoted
        );
        if let Some(row) = self.read(&st, &sql, &context).await?.first() {
            if let Some(top) = row
                .try_get::<Option<String>, _>(0)
                .map_err(|e| db_error(&context, e))?
            {
                changes.token = top;
            }
        }
        Ok(changes)
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn collections(&self) -> Result<Vec<String>> {
        self.on_task(|s| async move { s.collections().await }).await
    }

    async fn create_collection(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.on_task(|s| async move { s.create_collection(&name).await })
            .await
    }

    async fn list(&self, collection: &str) -> Result<Vec<Listed>> {
        let collection = collection.to_string();
        self.on_task(|s| async move { s.list(&collection).await })
            .await
    }

    async fn fetch(
        &self,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<std::result::Result<Item, ItemError>>> {
        let (collection, ids) = (collection.to_string(), ids.to_vec());
        self.on_task(|s| async move { s.fetch(&collection, &ids).await })
            .await
    }

    async fn create(&self, collection: &str, item: &NewItem) -> Result<Written> {
        let (collection, item) = (collection.to_string(), item.clone());
        self.on_task(|s| async move { s.create(&collection, &item).await })
            .await
    }

    async fn update(
        &self,
        collection: &str,
        current: &Item,
        expected: &str,
        changes: &[FieldChange],
    ) -> Result<Written> {
        let (collection, current) = (collection.to_string(), current.clone());
        let (expected, changes) = (expected.to_string(), changes.to_vec());
        self.on_task(|s| async move { s.update(&collection, &current, &expected, &changes).await })
            .await
    }

    async fn delete(&self, collection: &str, id: &str, expected: &str) -> Result<()> {
        let (collection, id, expected) =
            (collection.to_string(), id.to_string(), expected.to_string());
        self.on_task(|s| async move { s.delete(&collection, &id, &expected).await })
            .await
    }

    async fn flush(&self) -> Result<()> {
        self.on_task(|s| async move { s.flush().await }).await
    }

    async fn changes_since(&self, collection: &str, token: Option<&str>) -> Result<Changes> {
        let (collection, token) = (collection.to_string(), token.map(str::to_string));
        self.on_task(|s| async move { s.changes_since(&collection, token.as_deref()).await })
            .await
    }
}
