#!/usr/bin/env bash
# Benchmarks a two-way sync of a SQLite contacts table with a PostgreSQL one:
# an initial sync of N rows into an empty table, a no-op sync right after it
# (which must not read back the rows the initial one wrote), then 1% of the
# rows changed on each side and a second sync, then a no-op. The target: the
# incremental run costs at most 5% of the initial one.
#
#   bench/sql.sh [N]          (default 1000000)
#
# Environment:
#   BENCH_DIR    scratch folder, never inside the repo (default /tmp/tandem-bench-sql)
#   PG_URL       default postgres://postgres@127.0.0.1:5432/test
#   TANDEM_BIN   use this tandem binary instead of building one
#   CARGO_TARGET_DIR   as in .ci/run
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../.ci/run
source "$REPO/.ci/run"

N="${1:-1000000}"
BENCH_DIR="${BENCH_DIR:-/tmp/tandem-bench-sql}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
TABLE="bench_contacts_$$"
CHANGED=$((N / 100))

ensure_postgres >/dev/null
if [[ -z "${TANDEM_BIN:-}" ]]; then
    cargo build --release -q -p tandem-cli
    TANDEM_BIN="$CARGO_TARGET_DIR/release/tandem"
fi

rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
cleanup() { psql "$PG_URL" -qc "DROP TABLE IF EXISTS $TABLE" >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "==> generating $N rows in SQLite"
python3 - "$BENCH_DIR/crm.db" "$N" <<'PY'
import sqlite3, sys
db, n = sys.argv[1], int(sys.argv[2])
con = sqlite3.connect(db)
con.execute("""CREATE TABLE contacts (id TEXT PRIMARY KEY, version INTEGER NOT NULL,
    deleted INTEGER, first_name TEXT, last_name TEXT, email TEXT, company TEXT, owner TEXT)""")
con.execute("CREATE INDEX contacts_version ON contacts (version)")
con.executemany(
    "INSERT INTO contacts VALUES (?, ?, NULL, ?, ?, ?, ?, ?)",
    ((f"c{i:07d}", i + 1, f"Given{i}", f"Family{i}", f"p{i}@example.org", f"Org {i % 997}", f"owner{i % 13}")
     for i in range(n)))
con.commit()
PY

psql "$PG_URL" -qc "CREATE TABLE $TABLE (id text PRIMARY KEY, version timestamptz NOT NULL,
    deleted timestamptz, first_name text, last_name text, email text, company text, owner text);
    CREATE INDEX ${TABLE}_version ON $TABLE (version)"

cat >"$BENCH_DIR/tandem.toml" <<TOML
state = "state.db"

[stores.lite]
type = "sql"
url = "sqlite:crm.db"
[stores.lite.tables.contact]
table = "contacts"
id = "id"
version = "version"
deleted = "deleted"
columns = { given_name = "first_name", family_name = "last_name", emails = "email", org = "company", "custom.owner" = "owner" }

[stores.pg]
type = "sql"
url = "$PG_URL"
[stores.pg.tables.contact]
table = "$TABLE"
id = "id"
version = "version"
deleted = "deleted"
columns = { given_name = "first_name", family_name = "last_name", emails = "email", org = "company", "custom.owner" = "owner" }

[[pairs]]
name = "crm"
a = "lite"
b = "pg"
kind = "contact"
direction = "both"
TOML

# Prints the wall seconds of one sync; its peak RSS (MB) goes to $label.rss.
run() {
    local label=$1
    /usr/bin/time -f "%e %M" -o "$BENCH_DIR/$label.time" \
        "$TANDEM_BIN" ${BENCH_VERBOSE:-} -c "$BENCH_DIR/tandem.toml" sync --force >"$BENCH_DIR/$label.log" 2>&1 || {
        echo "sync failed ($label):" >&2; tail -20 "$BENCH_DIR/$label.log" >&2; exit 1; }
    read -r secs kib <"$BENCH_DIR/$label.time"
    echo $((kib / 1024)) >"$BENCH_DIR/$label.rss"
    echo "$secs"
}

echo "==> initial sync ($N rows into an empty PostgreSQL table)"
INITIAL=$(run initial)
echo "    $INITIAL s"
echo "    rows in PostgreSQL: $(psql "$PG_URL" -tAc "SELECT count(*) FROM $TABLE")"

AFTER=$(run after-initial)
echo "==> no-op sync right after it: $AFTER s"

echo "==> changing $CHANGED rows on each side"
python3 - "$BENCH_DIR/crm.db" "$N" "$CHANGED" <<'PY'
import sqlite3, sys
db, n, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
con = sqlite3.connect(db)
top = con.execute("SELECT MAX(version) FROM contacts").fetchone()[0]
con.executemany("UPDATE contacts SET company = ?, version = ? WHERE id = ?",
    ((f"Moved {i}", top + 1 + j, f"c{i:07d}") for j, i in enumerate(range(0, n, 100))))
con.commit()
PY
psql "$PG_URL" -qc "UPDATE $TABLE SET owner = 'pg-' || owner, version = clock_timestamp()
    WHERE substr(id, 2)::int % 100 = 50"

INCREMENTAL=$(run incremental)
echo "==> incremental sync: $INCREMENTAL s"
echo "    changed rows seen in PostgreSQL: $(psql "$PG_URL" -tAc "SELECT count(*) FROM $TABLE WHERE company LIKE 'Moved%'")"
echo "    changed rows seen in SQLite: $(python3 -c "import sqlite3;print(sqlite3.connect('$BENCH_DIR/crm.db').execute(\"SELECT count(*) FROM contacts WHERE owner LIKE 'pg-%'\").fetchone()[0])")"

NOOP=$(run noop)
rss() { cat "$BENCH_DIR/$1.rss"; }
echo
echo "| N | initial (s) | no-op after it (s) | 1% + 1% changed (s) | incremental / initial | no-op (s) | peak RSS initial / incremental / no-op (MB) |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
echo "| $N | $INITIAL | $AFTER | $INCREMENTAL | $(echo "scale=1; 100 * $INCREMENTAL / $INITIAL" | bc)% | $NOOP | $(rss initial) / $(rss incremental) / $(rss noop) |"
