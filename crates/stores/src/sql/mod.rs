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

mod config;
mod schema;
#[cfg(test)]
mod tests;

pub use config::{SqlConfig, TableConfig};

use async_trait::async_trait;
use schema::{Column, Dialect, Statement, Table, VersionKind};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use tandem_formats::row::{read_cell, timestamp_seconds, write_cell, ColumnType};
use tandem_record::{FieldChange, Kind, Record, Value};
use tandem_store::{
    Changes, Error, ErrorKind, Item, ItemError, Listed, NewItem, Result, Store, Written, ROOT,
};
use tokio::sync::OnceCell;

/// Most ids one fetch query names.
const FETCH_CHUNK: usize = 500;

/// Connections a store keeps open.
const MAX_CONNECTIONS: u32 = 4;

/// A SQL table store. See the module docs.
#[derive(Debug)]
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    kind: Kind,
    config: TableConfig,
    table: OnceCell<Table>,
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
        let setup: &'static str = match dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => "SET TIME ZONE 'UTC'",
            Dialect::MySql => "SET time_zone = '+00:00'",
        };
        let pool = AnyPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if !setup.is_empty() {
                        conn.execute(setup).await?;
                    }
                    Ok(())
                })
            })
            .connect_lazy(&config.url)
            .map_err(|err| Error::new(ErrorKind::Invalid, format!("sql url: {err}")))?;
        Ok(SqlStore {
            pool,
            dialect,
            kind,
            config: table,
            table: OnceCell::new(),
        })
    }

    /// Checks the configured table and columns against the database
    /// catalog (once; later calls answer from memory).
    pub async fn check(&self) -> Result<()> {
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

    /// Rows matching `filter` (SQL text over `statement`'s binds).
    async fn select<'e, E>(
        &self,
        table: &Table,
        filter: &str,
        statement: &Statement,
        executor: E,
    ) -> Result<Vec<RowData>>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let sql = format!(
            "SELECT {} FROM {} WHERE {filter}",
            Self::select_list(table),
            table.quoted
        );
        let rows = statement
            .query(&sql)
            .fetch_all(executor)
            .await
            .map_err(|err| db_error(&format!("reading table `{}`", table.name), err))?;
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
    async fn by_uid<'e, E>(&self, table: &Table, uid: &str, executor: E) -> Result<Option<RowData>>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let mut st = Statement::default();
        let column = table.uid_column();
        let p = st.bind(self.dialect, column, Some(uid.to_string()));
        let filter = format!("{} = {p}", column.quoted);
        Ok(self
            .select(table, &filter, &st, executor)
            .await?
            .into_iter()
            .next())
    }

    /// Why a compare-and-set touched no row: gone, or moved on.
    async fn stale(&self, table: &Table, id: &str, expected: &str) -> Error {
        let mut st = Statement::default();
        let p = st.bind(self.dialect, &table.id, Some(id.to_string()));
        let filter = format!("{} = {p}", table.id.quoted);
        match self.select(table, &filter, &st, &self.pool).await {
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
    async fn version_of<'e, E>(&self, table: &Table, id: &str, executor: E) -> Result<String>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let mut st = Statement::default();
        let p = st.bind(self.dialect, &table.id, Some(id.to_string()));
        let sql = format!(
            "SELECT COALESCE({}, '') FROM {} WHERE {} = {p}",
            table.read(&table.version),
            table.quoted,
            table.id.quoted
        );
        st.query(&sql)
            .fetch_one(executor)
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

    async fn insert(&self, table: &Table, record: &Record) -> Result<Written> {
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
        for (field, column) in &table.fields {
            if let Some(value) = record.get(field) {
                let cell = Self::cell(table, uid, field, column, value)?;
                columns.push(column.quoted.clone());
                values.push(st.bind(self.dialect, column, cell));
            }
        }
        columns.push(table.version.quoted.clone());
        values.push(table.next_version(false));
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            table.quoted,
            columns.join(", "),
            values.join(", ")
        );
        let context = format!("table `{}`, row `{uid}`", table.name);
        let mut tx = self.pool.begin().await.map_err(|e| db_error(&context, e))?;
        st.query(&sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error(&context, e).with_id(uid))?;
        let row = self.by_uid(table, uid, &mut *tx).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::Io,
                format!("{context}: the inserted row is not there"),
            )
        })?;
        tx.commit().await.map_err(|e| db_error(&context, e))?;
        Ok(Written {
            id: row.id,
            version: row.version,
        })
    }

    /// Brings a soft-deleted row back with `record`'s content.
    async fn revive(&self, table: &Table, row: &RowData, record: &Record) -> Result<Written> {
        let Some(deleted) = &table.deleted else {
            return Err(Error::new(ErrorKind::Io, "revive without a deleted column"));
        };
        let mut st = Statement::default();
        let mut sets = Vec::new();
        for (field, column) in &table.fields {
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
        self.guarded_update(table, &row.id, &row.version, sets, st, false)
            .await
    }

    /// `UPDATE … SET sets, version = next WHERE id = ? AND version = ?`
    /// (and, with `live_only`, not soft-deleted), then the new version, in
    /// one transaction.
    async fn guarded_update(
        &self,
        table: &Table,
        id: &str,
        expected: &str,
        mut sets: Vec<String>,
        mut st: Statement,
        live_only: bool,
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
        let sql = format!(
            "UPDATE {} SET {} WHERE {} = {pid} AND {guard}{live}",
            table.quoted,
            sets.join(", "),
            table.id.quoted
        );
        let context = format!("table `{}`, row `{id}`", table.name);
        let mut tx = self.pool.begin().await.map_err(|e| db_error(&context, e))?;
        let done = st
            .query(&sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error(&context, e).with_id(id))?;
        if done.rows_affected() == 0 {
            drop(tx);
            return Err(self.stale(table, id, expected).await);
        }
        let version = self.version_of(table, id, &mut *tx).await?;
        tx.commit().await.map_err(|e| db_error(&context, e))?;
        Ok(Written {
            id: id.to_string(),
            version,
        })
    }
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

#[async_trait]
impl Store for SqlStore {
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
        let rows = Statement::default()
            .query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(|err| db_error(&format!("listing table `{}`", table.name), err))?;
        rows.iter()
            .map(|row| {
                Ok(Listed {
                    id: row.try_get(0)?,
                    version: row.try_get(1)?,
                })
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(|err| db_error(&format!("listing table `{}`", table.name), err))
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
            for row in self.select(table, &filter, &st, &self.pool).await? {
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
            if let Some(row) = self.by_uid(table, &record.uid, &self.pool).await? {
                if row.deleted {
                    return self.revive(table, &row, record).await;
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
            match self.insert(table, record).await {
                // Another writer inserted the UID since we looked: look again.
                Err(err) if err.kind == ErrorKind::AlreadyExists && attempt == 0 => continue,
                other => return other,
            }
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
            let version = self.version_of(table, id, &self.pool).await;
            return match version {
                Ok(version) if version == expected => Ok(Written {
                    id: id.to_string(),
                    version,
                }),
                _ => Err(self.stale(table, id, expected).await),
            };
        }
        self.guarded_update(table, id, expected, sets, st, true)
            .await
    }

    async fn delete(&self, collection: &str, id: &str, expected: &str) -> Result<()> {
        let table = self.root(collection).await?;
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
            st.query(&sql).execute(&self.pool).await.map_err(|e| {
                db_error(&format!("table `{}`, row `{id}`", table.name), e).with_id(id)
            })?;
        if done.rows_affected() == 0 {
            return Err(self.stale(table, id, expected).await);
        }
        Ok(())
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
        let rows = st
            .query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error(&context, e))?;
        let mut changes = Changes {
            changed: Vec::new(),
            deleted: Vec::new(),
            token: token.unwrap_or_default().to_string(),
        };
        for row in &rows {
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
        }
        // The highest version seen, compared by the database's own order.
        let sql = format!(
            "SELECT {} FROM {} WHERE {filter} ORDER BY {} DESC LIMIT 1",
            table.read(&table.version),
            table.quoted,
            table.version.quoted
        );
        if let Some(row) = st
            .query(&sql)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(&context, e))?
        {
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
