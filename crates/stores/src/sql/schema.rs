//! The SQL dialects Tandem speaks and the table it is configured for, checked
//! against the database catalog before the first read or write.
//!
//! Every table and column name is refused unless it is a plain identifier
//! (letters, digits, underscores), then looked up in the catalog and quoted;
//! values never enter SQL text — each is a bound parameter, cast to the
//! column's type where the database needs it (PostgreSQL).

use super::config::TableConfig;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use std::collections::BTreeMap;
use tandem_formats::row::ColumnType;
use tandem_store::{Error, ErrorKind, Result};

/// Longest identifier accepted (MySQL's limit; PostgreSQL's is 63 bytes).
const MAX_IDENT: usize = 64;

/// The database behind a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

impl Dialect {
    pub(crate) fn from_url(url: &str) -> Result<Dialect> {
        let scheme = url.split(':').next().unwrap_or("");
        match scheme {
            "sqlite" => Ok(Dialect::Sqlite),
            "postgres" | "postgresql" => Ok(Dialect::Postgres),
            "mysql" | "mariadb" => Ok(Dialect::MySql),
            _ => Err(Error::new(
                ErrorKind::Invalid,
                format!(
                    "sql url must start with sqlite:, postgres:// or mysql://, found `{scheme}:`"
                ),
            )),
        }
    }

    /// A checked identifier (possibly `schema.name`), quoted.
    pub(crate) fn quote(self, name: &str) -> String {
        let q = if self == Dialect::MySql { '`' } else { '"' };
        name.split('.')
            .map(|part| format!("{q}{part}{q}"))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The placeholder for the `n`th bound value (from 1).
    pub(crate) fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            _ => "?".to_string(),
        }
    }

    /// The current time as the version column takes it.
    pub(crate) fn now(self) -> &'static str {
        match self {
            Dialect::Sqlite => "strftime('%Y-%m-%d %H:%M:%f', 'now')",
            Dialect::Postgres => "clock_timestamp()",
            Dialect::MySql => "NOW(6)",
        }
    }
}

/// One checked column.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    /// The quoted name, ready for SQL text.
    pub quoted: String,
    /// The name as configured, for messages.
    pub name: String,
    pub ty: ColumnType,
    /// The database's own type name (PostgreSQL casts bound text to it).
    pub sql_type: String,
}

/// How the version column moves on a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VersionKind {
    /// One more than the table's highest, so versions grow across the table.
    Counter,
    /// The current time, and always later than the row's previous version.
    Clock,
}

/// The configured table, checked against the catalog.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub dialect: Dialect,
    /// The name as configured, for messages.
    pub name: String,
    pub quoted: String,
    pub id: Column,
    pub version: Column,
    pub version_kind: VersionKind,
    pub deleted: Option<Column>,
    /// The column holding the record's UID, when one is mapped.
    pub uid: Option<Column>,
    /// Record field → column, in a fixed order.
    pub fields: Vec<(String, Column)>,
}

/// Refuses any name that is not a plain identifier, before it gets near SQL.
pub(crate) fn check_names(dialect: Dialect, config: &TableConfig) -> Result<()> {
    let parts: Vec<&str> = config.table.split('.').collect();
    if parts.len() > 2 || (dialect == Dialect::Sqlite && parts.len() > 1) {
        return Err(refused("table", &config.table));
    }
    for part in parts {
        check_ident("table", part).map_err(|_| refused("table", &config.table))?;
    }
    check_ident("id column", &config.id)?;
    check_ident("version column", &config.version)?;
    if let Some(deleted) = &config.deleted {
        check_ident("deleted column", deleted)?;
    }
    for (field, column) in &config.columns {
        check_ident(&format!("column for `{field}`"), column)?;
    }
    Ok(())
}

fn check_ident(what: &str, name: &str) -> Result<()> {
    let plain = !name.is_empty()
        && name.len() <= MAX_IDENT
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        Ok(())
    } else {
        Err(refused(what, name))
    }
}

fn refused(what: &str, name: &str) -> Error {
    Error::new(
        ErrorKind::Invalid,
        format!(
            "{what} name `{}` is refused: names may hold only ASCII letters, digits and \
             underscores (and one dot between schema and table)",
            name.escape_debug()
        ),
    )
}

/// Looks the configured table and columns up in the catalog.
pub(crate) async fn check(pool: &AnyPool, dialect: Dialect, config: &TableConfig) -> Result<Table> {
    check_names(dialect, config)?;
    let (schema, table) = match config.table.split_once('.') {
        Some((schema, table)) => (Some(schema), table),
        None => (None, config.table.as_str()),
    };
    let catalog = catalog(pool, dialect, schema, table).await?;
    if catalog.is_empty() {
        return Err(Error::new(
            ErrorKind::Invalid,
            format!("table `{}` not found in the database", config.table),
        ));
    }
    let column = |what: &str, name: &str| -> Result<Column> {
        let (ty, sql_type) = catalog.get(name).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::Invalid,
                format!("table `{}` has no column `{name}` ({what})", config.table),
            )
        })?;
        Ok(Column {
            quoted: dialect.quote(name),
            name: name.to_string(),
            ty,
            sql_type,
        })
    };
    let version = column("version", &config.version)?;
    let version_kind = match version.ty {
        ColumnType::Integer => VersionKind::Counter,
        ColumnType::Timestamp | ColumnType::TimestampTz => VersionKind::Clock,
        // SQLite keeps timestamps as text.
        ColumnType::Text if dialect == Dialect::Sqlite => VersionKind::Clock,
        other => {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!(
                    "version column `{}` of table `{}` is a {other} column; it must be an \
                     integer or a timestamp",
                    config.version, config.table
                ),
            ))
        }
    };
    let mut uid = None;
    let mut fields = Vec::new();
    for (field, name) in &config.columns {
        let col = column(&format!("mapped to `{field}`"), name)?;
        if field == "uid" {
            uid = Some(col);
        } else {
            fields.push((field.clone(), col));
        }
    }
    Ok(Table {
        dialect,
        name: config.table.clone(),
        quoted: dialect.quote(&config.table),
        id: column("id", &config.id)?,
        version,
        version_kind,
        deleted: config
            .deleted
            .as_deref()
            .map(|name| column("deleted", name))
            .transpose()?,
        uid,
        fields,
    })
}

/// Column name → (type, database type name) for one table.
async fn catalog(
    pool: &AnyPool,
    dialect: Dialect,
    schema: Option<&str>,
    table: &str,
) -> Result<BTreeMap<String, (ColumnType, String)>> {
    let failed =
        |err: sqlx::Error| super::db_error(&format!("reading the catalog for `{table}`"), err);
    let mut columns = BTreeMap::new();
    match dialect {
        Dialect::Sqlite => {
            let rows = sqlx::query("SELECT name, CAST(type AS TEXT) FROM pragma_table_info(?)")
                .bind(table.to_string())
                .fetch_all(pool)
                .await
                .map_err(failed)?;
            for row in rows {
                let (name, decl) = two_texts(&row).map_err(failed)?;
                columns.insert(name, (sqlite_type(&decl), decl));
            }
        }
        Dialect::Postgres => {
            let rows = sqlx::query(
                "SELECT CAST(column_name AS text), CAST(data_type AS text), CAST(udt_name AS text) \
                 FROM information_schema.columns \
                 WHERE table_schema = COALESCE(CAST($1 AS text), current_schema()) \
                 AND table_name = CAST($2 AS text)",
            )
            .bind(schema.map(str::to_string))
            .bind(table.to_string())
            .fetch_all(pool)
            .await
            .map_err(failed)?;
            for row in rows {
                let (name, data_type) = two_texts(&row).map_err(failed)?;
                let udt: String = row.try_get(2).map_err(failed)?;
                columns.insert(name, (postgres_type(&data_type), udt));
            }
        }
        Dialect::MySql => {
            let rows = sqlx::query(
                "SELECT CAST(COLUMN_NAME AS CHAR CHARACTER SET utf8mb4), \
                 CAST(DATA_TYPE AS CHAR CHARACTER SET utf8mb4), \
                 CAST(COLUMN_TYPE AS CHAR CHARACTER SET utf8mb4) \
                 FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?",
            )
            .bind(schema.map(str::to_string))
            .bind(table.to_string())
            .fetch_all(pool)
            .await
            .map_err(failed)?;
            // MariaDB's JSON is a longtext with a json_valid() check.
            let checks = sqlx::query(
                "SELECT CAST(CHECK_CLAUSE AS CHAR CHARACTER SET utf8mb4) \
                 FROM information_schema.CHECK_CONSTRAINTS \
                 WHERE CONSTRAINT_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?",
            )
            .bind(schema.map(str::to_string))
            .bind(table.to_string())
            .fetch_all(pool)
            .await
            .map(|rows| {
                rows.iter()
                    .filter_map(|row| row.try_get::<String, _>(0).ok())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
            for row in rows {
                let (name, data_type) = two_texts(&row).map_err(failed)?;
                let column_type: String = row.try_get(2).map_err(failed)?;
                let json_checked = checks
                    .iter()
                    .any(|clause| clause.contains(&format!("json_valid(`{name}`)")));
                let ty = if json_checked {
                    ColumnType::Json
                } else {
                    mysql_type(&data_type, &column_type)
                };
                columns.insert(name, (ty, column_type));
            }
        }
    }
    Ok(columns)
}

fn two_texts(row: &AnyRow) -> std::result::Result<(String, String), sqlx::Error> {
    Ok((
        row.try_get(0)?,
        row.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
    ))
}

/// SQLite's declared type, by its affinity rules plus the usual names.
fn sqlite_type(decl: &str) -> ColumnType {
    let decl = decl.to_ascii_uppercase();
    if decl.contains("INT") {
        ColumnType::Integer
    } else if decl.contains("BOOL") {
        ColumnType::Bool
    } else if decl.contains("JSON") {
        ColumnType::Json
    } else if decl == "DATE" {
        ColumnType::Date
    } else if ["REAL", "FLOA", "DOUB", "NUMERIC", "DECIMAL"]
        .iter()
        .any(|t| decl.contains(t))
    {
        ColumnType::Decimal
    } else {
        // TEXT, and DATETIME / TIMESTAMP, which SQLite keeps as text: the
        // text spelling keeps the zone (`…Z`, `… Europe/Berlin`).
        ColumnType::Text
    }
}

fn postgres_type(data_type: &str) -> ColumnType {
    match data_type {
        "ARRAY" => ColumnType::TextArray,
        "json" | "jsonb" => ColumnType::Json,
        "smallint" | "integer" | "bigint" => ColumnType::Integer,
        "numeric" | "real" | "double precision" => ColumnType::Decimal,
        "boolean" => ColumnType::Bool,
        "date" => ColumnType::Date,
        "timestamp without time zone" => ColumnType::Timestamp,
        "timestamp with time zone" => ColumnType::TimestampTz,
        _ => ColumnType::Text,
    }
}

fn mysql_type(data_type: &str, column_type: &str) -> ColumnType {
    match data_type {
        "tinyint" if column_type.starts_with("tinyint(1)") => ColumnType::Bool,
        "tinyint" | "smallint" | "mediumint" | "int" | "bigint" => ColumnType::Integer,
        "decimal" | "float" | "double" => ColumnType::Decimal,
        "json" => ColumnType::Json,
        "date" => ColumnType::Date,
        "datetime" => ColumnType::Timestamp,
        "timestamp" => ColumnType::TimestampTz,
        _ => ColumnType::Text,
    }
}

impl Table {
    /// A column's value as text, for a select list.
    pub(crate) fn read(&self, column: &Column) -> String {
        let c = &column.quoted;
        match self.dialect {
            Dialect::Sqlite => format!("CAST({c} AS TEXT)"),
            Dialect::Postgres if column.ty == ColumnType::TextArray => {
                format!("CAST(array_to_json({c}) AS text)")
            }
            Dialect::Postgres => format!("CAST({c} AS text)"),
            Dialect::MySql => format!("CAST({c} AS CHAR CHARACTER SET utf8mb4)"),
        }
    }

    /// True for rows that are not soft-deleted.
    pub(crate) fn live(&self) -> String {
        match &self.deleted {
            None => "1 = 1".to_string(),
            Some(d) => match (d.ty, self.dialect) {
                (ColumnType::Bool, Dialect::Postgres) => {
                    format!("({} IS NULL OR {} = FALSE)", d.quoted, d.quoted)
                }
                (ColumnType::Bool | ColumnType::Integer, _) => {
                    format!("({} IS NULL OR {} = 0)", d.quoted, d.quoted)
                }
                _ => format!("{} IS NULL", d.quoted),
            },
        }
    }

    /// What a soft delete writes into the deleted column.
    pub(crate) fn deleted_mark(&self, d: &Column) -> String {
        match (d.ty, self.dialect) {
            (ColumnType::Bool, Dialect::Postgres) => "TRUE".to_string(),
            (ColumnType::Bool | ColumnType::Integer, _) => "1".to_string(),
            _ => self.dialect.now().to_string(),
        }
    }

    /// The version a write gives a row: SQL text, computed by the database.
    pub(crate) fn next_version(&self, existing: bool) -> String {
        let v = &self.version.quoted;
        let t = &self.quoted;
        match (self.version_kind, self.dialect) {
            (VersionKind::Counter, Dialect::MySql) => format!(
                "(SELECT tandem_next FROM (SELECT COALESCE(MAX({v}), 0) + 1 AS tandem_next \
                 FROM {t}) AS tandem_max)"
            ),
            (VersionKind::Counter, _) => format!("(SELECT COALESCE(MAX({v}), 0) + 1 FROM {t})"),
            (VersionKind::Clock, dialect) if !existing => dialect.now().to_string(),
            (VersionKind::Clock, Dialect::Sqlite) => format!(
                "MAX({now}, COALESCE(strftime('%Y-%m-%d %H:%M:%f', {v}, '+0.001 seconds'), ''))",
                now = Dialect::Sqlite.now()
            ),
            (VersionKind::Clock, Dialect::Postgres) => {
                format!("GREATEST(clock_timestamp(), {v} + interval '1 microsecond')")
            }
            (VersionKind::Clock, Dialect::MySql) => {
                format!("GREATEST(NOW(6), {v} + INTERVAL 1 MICROSECOND)")
            }
        }
    }

    /// The column holding UIDs: the mapped `uid` column, else the id.
    pub(crate) fn uid_column(&self) -> &Column {
        self.uid.as_ref().unwrap_or(&self.id)
    }
}

/// SQL text with its bound values, built together so every value is a
/// parameter.
#[derive(Debug, Default)]
pub(crate) struct Statement {
    pub binds: Vec<Option<String>>,
}

impl Statement {
    /// Binds `value` for `column` and returns the placeholder expression.
    pub(crate) fn bind(
        &mut self,
        dialect: Dialect,
        column: &Column,
        value: Option<String>,
    ) -> String {
        self.binds.push(value);
        let p = dialect.placeholder(self.binds.len());
        match dialect {
            Dialect::Postgres => format!("CAST({p} AS {})", dialect.quote_type(&column.sql_type)),
            _ => p,
        }
    }

    pub(crate) fn query(
        &self,
        sql: &str,
    ) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
        // Safe by construction: the text holds only checked, quoted names
        // and placeholders; every value is among the binds.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()));
        for value in &self.binds {
            query = query.bind(value.clone());
        }
        query
    }
}

impl Dialect {
    /// A PostgreSQL type name from the catalog, quoted as an identifier.
    fn quote_type(self, name: &str) -> String {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}
