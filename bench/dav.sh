#!/usr/bin/env bash
# Benchmarks vdir ↔ CardDAV contact sync on real Radicale and Xandikos servers:
# Tandem against vdirsyncer, and each scenario against a floor: the least any
# client must send over one keep-alive connection.
# See bench/README.md ("CardDAV servers").
#
#   bench/dav.sh
#
# Environment:
#   BENCH_DIR             scratch folder, never inside the repo (default /tmp/tandem-bench-dav)
#   BENCH_SERVERS         "radicale xandikos" (default), or one of them
#   BENCH_UPLOAD_N        cards uploaded into an empty address book (default 1000)
#   BENCH_BIG_N           cards already on both sides for the first sync and no-op (default 10000)
#   BENCH_PEER_TIMEOUT    seconds after which a vdirsyncer run is stopped and shown as "> T" (default: none)
#   BENCH_TOOLS           which tools to run: "tandem vdirsyncer" (default), "tandem" or "vdirsyncer";
#                         the first-sync and no-op floors run on Tandem's collection, so only with tandem
#   BENCH_SKIP_UPLOAD=1   skip the upload scenario (only the first sync and no-op at BENCH_BIG_N)
#   BENCH_FLOOR_BATCH     hrefs per multiget in the first-sync floor (default: Tandem's MULTIGET_BATCH; "all": one REPORT)
#   BENCH_VERBOSE         flags for tandem sync, e.g. -vv to log every request with its time (default none)
#   BENCH_KEEP=1          keep the server storage and card folders afterwards
#   TANDEM_BIN            use this tandem binary instead of building one
#   CARGO_TARGET_DIR, TANDEM_VENV   as in .ci/run
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GEN="$REPO/bench/gen_vcards.py"
# Defines ensure_python_venv and exports CARGO_TARGET_DIR and TANDEM_VENV the
# same way CI does.
# shellcheck source=../.ci/run
source "$REPO/.ci/run"

BENCH_DIR="${BENCH_DIR:-/tmp/tandem-bench-dav}"
BENCH_SERVERS="${BENCH_SERVERS:-radicale xandikos}"
BENCH_SERVERS="${BENCH_SERVERS//,/ }"
UPLOAD_N="${BENCH_UPLOAD_N:-1000}"
BIG_N="${BENCH_BIG_N:-10000}"
PEER_TIMEOUT="${BENCH_PEER_TIMEOUT:-}"
BENCH_TOOLS="${BENCH_TOOLS:-tandem vdirsyncer}"
BENCH_TOOLS="${BENCH_TOOLS//,/ }"
DAV_USER=user # Radicale (auth none) takes any name; Xandikos ignores it.
# The first-sync floor asks for as many items per multiget as Tandem does,
# read from its source (or BENCH_FLOOR_BATCH).
FLOOR_BATCH="${BENCH_FLOOR_BATCH:-$(sed -n 's/^const MULTIGET_BATCH: usize = \([0-9]*\);.*/\1/p' \
    "$REPO/crates/stores/src/dav/mod.rs")}"

declare -A RESULT=() # RESULT[server|scenario|column] = value
FAILURES=0
SERVER_PID=""
LOAD_PID=""

fail() {
    echo "bench: $*" >&2
    exit 1
}
note() { echo "bench: $*" >&2; }

for n in "$UPLOAD_N" "$BIG_N"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || fail "sizes must be positive integers, got '$n'"
done
[[ "$FLOOR_BATCH" =~ ^([1-9][0-9]*|all)$ ]] || fail "BENCH_FLOOR_BATCH must be a positive number or 'all' (or MULTIGET_BATCH in crates/stores/src/dav/mod.rs is gone)"
[[ -z "$PEER_TIMEOUT" || "$PEER_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || fail "BENCH_PEER_TIMEOUT must be seconds"
for s in $BENCH_SERVERS; do
    [[ "$s" == radicale || "$s" == xandikos ]] || fail "unknown server '$s' in BENCH_SERVERS"
done
for tool in $BENCH_TOOLS; do
    [[ "$tool" == tandem || "$tool" == vdirsyncer ]] || fail "unknown tool '$tool' in BENCH_TOOLS"
done

BENCH_DIR="$(realpath -m "$BENCH_DIR")"
case "$BENCH_DIR/" in
    / | "$REPO"/* | "$HOME"/) fail "BENCH_DIR=$BENCH_DIR must be a scratch folder outside the repo" ;;
esac
case "$REPO/" in
    "$BENCH_DIR"/*) fail "BENCH_DIR=$BENCH_DIR contains the repo" ;;
esac

ensure_gnu_time() {
    if ! /usr/bin/time --version 2>&1 | grep -q GNU; then
        note "installing GNU time"
        apt-get update && apt-get install -y time
    fi
}

ensure_tandem() {
    TANDEM_BIN="${TANDEM_BIN:-}"
    if [[ -z "$TANDEM_BIN" ]]; then
        note "building tandem (release)"
        (cd "$REPO" && cargo build --release -p tandem-cli)
        TANDEM_BIN="$CARGO_TARGET_DIR/release/tandem"
    fi
    [[ -x "$TANDEM_BIN" ]] || fail "no tandem binary at $TANDEM_BIN"
}

# The small HTTP client the script needs (standard library only): the floors
# (a PUT loop, a listing plus multigets, one sync-collection report), extended
# MKCOL, and listings (PROPFIND Depth: 1) to check end states.
write_davtool() {
    cat >"$BENCH_DIR/davtool.py" <<'PY'
import base64, http.client, os, sys, time, urllib.parse, xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

AUTH = "Basic " + base64.b64encode(b"user:bench").decode()

def conn(url):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=900), u.path  # a first listing of 10k items on a busy Radicale takes minutes

def request(c, method, path, body=None, headers=None):
    h = {"Authorization": AUTH}
    h.update(headers or {})
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    return r.status, r.read()

def mkcol(url):
    c, path = conn(url)
    body = ('<?xml version="1.0" encoding="utf-8"?><D:mkcol xmlns:D="DAV:" '
            'xmlns:C="urn:ietf:params:xml:ns:carddav"><D:set><D:prop><D:resourcetype>'
            '<D:collection/><C:addressbook/></D:resourcetype></D:prop></D:set></D:mkcol>')
    status, text = request(c, "MKCOL", path, body, {"Content-Type": "application/xml"})
    if status not in (201, 200):
        sys.exit(f"MKCOL {url}: {status} {text[:300]!r}")

def put(url, folder):
    # One persistent connection, one PUT per card, create-only: the least any
    # client must do to upload these cards.
    c, path = conn(url)
    names = sorted(n for n in os.listdir(folder) if n.endswith(".vcf"))
    for name in names:
        with open(os.path.join(folder, name), "rb") as f:
            data = f.read()
        status, text = request(c, "PUT", path + urllib.parse.quote(name), data, {
            "Content-Type": "text/vcard; charset=utf-8", "If-None-Match": "*"})
        if status not in (200, 201, 204):
            sys.exit(f"PUT {name}: {status} {text[:300]!r}")
    print(len(names))

def listing(c, path):
    # (href as sent, etag) of every item: one PROPFIND Depth: 1 for getetag.
    body = ('<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:">'
            '<D:prop><D:getetag/><D:resourcetype/></D:prop></D:propfind>')
    status, text = request(c, "PROPFIND", path, body, {"Depth": "1", "Content-Type": "application/xml"})
    if status != 207:
        sys.exit(f"PROPFIND {path}: {status} {text[:300]!r}")
    ns = {"D": "DAV:"}
    rows = []
    for resp in ET.fromstring(text).findall("D:response", ns):
        href = resp.findtext("D:href", "", ns)
        if urllib.parse.unquote(href).rstrip("/") == urllib.parse.unquote(path).rstrip("/") or href.endswith("/"):
            continue
        rows.append((href, resp.findtext(".//D:getetag", "", ns)))
    return rows

def etags(url):
    # href<TAB>etag of every vCard in the collection, sorted.
    c, path = conn(url)
    print("\n".join(sorted(f"{urllib.parse.unquote(href)}\t{etag}" for href, etag in listing(c, path))))

def compare(url, folder, batch):
    # The first-sync floor: the least any client must do to compare the
    # items of both sides when nothing is known yet. One keep-alive
    # connection: list the collection (PROPFIND Depth: 1, getetag), then
    # read every item's content with addressbook-multiget REPORTs of BATCH
    # hrefs ("all": one REPORT), parsed; and read every card of the vdir.
    # Prints the time of each step, then how many items each side gave.
    started = time.monotonic()
    c, path = conn(url)
    hrefs = [href for href, _ in listing(c, path)]
    listed = time.monotonic()
    size = len(hrefs) if batch == "all" else int(batch)
    got = 0
    ns = {"D": "DAV:", "C": "urn:ietf:params:xml:ns:carddav"}
    for at in range(0, len(hrefs), max(size, 1)):
        body = ('<?xml version="1.0" encoding="utf-8"?><C:addressbook-multiget xmlns:D="DAV:" '
                'xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/><C:address-data/></D:prop>'
                + "".join(f"<D:href>{escape(href)}</D:href>" for href in hrefs[at:at + size])
                + '</C:addressbook-multiget>')
        status, text = request(c, "REPORT", path, body.encode(), {"Depth": "1", "Content-Type": "application/xml"})
        if status != 207:
            sys.exit(f"REPORT addressbook-multiget {url}: {status} {text[:300]!r}")
        got += sum(1 for data in ET.fromstring(text).iterfind(".//C:address-data", ns) if data.text)
    read = time.monotonic()
    local = 0
    for name in os.listdir(folder):
        if name.endswith(".vcf"):
            with open(os.path.join(folder, name), "rb") as f:
                local += bool(f.read())
    print(f"PROPFIND {listed - started:.2f} s, {-(-len(hrefs) // max(size, 1))} multigets {read - listed:.2f} s, "
          f"local cards {time.monotonic() - read:.2f} s")
    print(got, local)

def sync(url, token=""):
    # One sync-collection report since TOKEN (none: everything); prints the
    # new token. From no token on a fresh collection it also makes a server
    # that keeps a change history (Radicale's history cache, written on each
    # PUT) build it.
    c, path = conn(url)
    body = ('<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:">'
            f'<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>'
            '<D:prop><D:getetag/></D:prop></D:sync-collection>')
    status, text = request(c, "REPORT", path, body, {"Depth": "1", "Content-Type": "application/xml"})
    if status != 207:
        sys.exit(f"REPORT sync-collection {url}: {status} {text[:300]!r}")
    print(ET.fromstring(text).findtext("{DAV:}sync-token", ""))

def phone(folder):
    # Spells multi-valued TYPE parameters as iOS and macOS exports do
    # (EMAIL;type=INTERNET;type=WORK:), which a server like Radicale
    # re-spells (EMAIL;TYPE=INTERNET,WORK:) when it stores the card.
    changed = 0
    for name in sorted(n for n in os.listdir(folder) if n.endswith(".vcf")):
        path = os.path.join(folder, name)
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
        lines = []
        for line in text.split("\r\n"):
            head, sep, value = line.partition(":")
            if sep and not line.startswith((" ", "\t")) and ";" in head:
                prop, *params = head.split(";")
                spelled = []
                for param in params:
                    key, _, values = param.partition("=")
                    if key.upper() == "TYPE":
                        spelled.extend("type=" + v for v in values.split(","))
                    else:
                        spelled.append(param)
                line = ";".join([prop] + spelled) + sep + value
            lines.append(line)
        exported = "\r\n".join(lines)
        if exported != text:
            changed += 1
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(exported)
    print(changed)

cmd, args = sys.argv[1], sys.argv[2:]
{"mkcol": mkcol, "put": put, "etags": etags, "sync": sync, "compare": compare,
 "phone": phone}[cmd](*args)
PY
}
davtool() { python3 "$BENCH_DIR/davtool.py" "$@"; }

# Rewrites each card of a folder the way Radicale's PUT does before storing
# it (radicale/app/put.py: read_components, check_and_sanitize_items, then
# Item.serialize(), which re-serialises through vobject: properties sorted,
# parameters re-spelled), using the Radicale of the venv, so cards placed
# straight into its storage read as if they had been uploaded. Prints how
# many cards came out different from their source.
write_radicale_rewrite() {
    cat >"$BENCH_DIR/radicale_rewrite.py" <<'PY'
import multiprocessing, os, sys
import radicale.item as radicale_item

def rewrite(job):
    src, dst, collection_path = job
    with open(src, encoding="utf-8", newline="") as f:
        text = f.read()
    items = radicale_item.read_components(text)
    radicale_item.check_and_sanitize_items(
        items, max_vevent_rrule_occurrence=10000, is_collection=False, tag="VADDRESSBOOK")
    stored = radicale_item.Item(collection_path=collection_path, vobject_item=items[0]).serialize()
    with open(dst, "w", encoding="utf-8", newline="") as f:
        f.write(stored)
    return stored != text

if __name__ == "__main__":
    src, dst, collection_path = sys.argv[1:4]
    os.makedirs(dst, exist_ok=True)
    jobs = [(os.path.join(src, n), os.path.join(dst, n), collection_path)
            for n in sorted(os.listdir(src)) if n.endswith(".vcf")]
    with multiprocessing.Pool() as pool:
        print(sum(pool.imap_unordered(rewrite, jobs, chunksize=200)))
PY
}
count_server() { davtool etags "$1" | grep -c . || true; }
count_cards() { find "$1" -maxdepth 1 -name '*.vcf' | wc -l; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server NAME — a fresh storage folder, a free port; sets BASE and STORAGE.
start_server() {
    local name="$1" port
    STORAGE="$BENCH_DIR/$name/storage"
    rm -rf "$STORAGE"
    mkdir -p "$STORAGE"
    port="$(free_port)"
    BASE="http://127.0.0.1:$port"
    case "$name" in
        radicale)
            "$TANDEM_VENV/bin/radicale" --config "" --server-hosts "127.0.0.1:$port" \
                --storage-filesystem-folder "$STORAGE" --auth-type none --logging-level info \
                </dev/null >"$BENCH_DIR/logs/$name-server.log" 2>&1 &
            HOME_PATH="/$DAV_USER/"
            ;;
        xandikos)
            "$TANDEM_VENV/bin/xandikos" serve -d "$STORAGE" -l 127.0.0.1 -p "$port" \
                --autocreate --no-detect-systemd \
                </dev/null >"$BENCH_DIR/logs/$name-server.log" 2>&1 &
            HOME_PATH="/$DAV_USER/contacts/"
            ;;
    esac
    SERVER_PID=$!
    local i
    for i in $(seq 1 150); do
        if curl -s -o /dev/null "$BASE/"; then
            note "$name up on $BASE (pid $SERVER_PID)"
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || fail "$name exited at start (log: $BENCH_DIR/logs/$name-server.log)"
        sleep 0.2
    done
    fail "$name did not answer within 30 s"
}

stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}

cleanup() {
    stop_server
    [[ -n "$LOAD_PID" ]] && kill "$LOAD_PID" 2>/dev/null || true
}
trap cleanup EXIT

# measure LOG CMD... — sets M_SECS (wall seconds) and M_MB (peak RSS, MiB) from
# GNU time's "%e %M"; M_SECS is "fail" (or "> T" when BENCH_PEER_TIMEOUT hit).
TIMEFILE=""
measure() {
    local log="$1" rc=0
    shift
    sync
    /usr/bin/time -f "%e %M" -o "$TIMEFILE" "$@" >"$log" 2>&1 </dev/null || rc=$?
    read -r M_SECS M_MB < <(tail -n 1 "$TIMEFILE" | awk '{ printf "%s %.1f\n", $(NF-1), $NF / 1024 }')
    if ((rc == 124)) && [[ "$1" == timeout ]]; then
        note "TIMED OUT after ${PEER_TIMEOUT} s: $* (log: $log)"
        M_SECS="> $PEER_TIMEOUT (stopped)"
        return 1
    elif ((rc)); then
        note "FAILED ($rc): $* (log: $log)"
        tail -n 20 "$log" >&2
        M_SECS=fail
        return 1
    fi
}

# record SERVER SCENARIO TOOL CHECK — stores the last measurement; CHECK is
# "" when the end state is right, else what was wrong.
record() {
    local server="$1" scenario="$2" tool="$3" check="$4" mark=""
    if [[ "$M_SECS" == fail ]]; then
        FAILURES=$((FAILURES + 1))
    elif [[ "$M_SECS" != ">"* && -n "$check" ]]; then
        note "$tool $scenario on $server: wrong end state: $check"
        mark=" (wrong result: $check)"
        FAILURES=$((FAILURES + 1))
    fi
    RESULT["$server|$scenario|$tool s"]="$M_SECS$mark"
    RESULT["$server|$scenario|$tool MB"]="$M_MB"
    note "$tool $scenario on $server: $M_SECS s, $M_MB MB${mark}"
}

write_tandem_config() { # DIR URL
    cat >"$1/tandem.toml" <<EOF
state = ".tandem/state.db"

[stores.local]
type = "vdir"
path = "local"

[stores.dav]
type = "carddav"
url = "$2"
username = "$DAV_USER"
password_cmd = "echo bench"
create_collections = true

[[pairs]]
name = "contacts"
a = "local"
b = "dav"
kind = "contact"
conflict = "newest"
max_delete = "100%"
EOF
}

write_vdirsyncer_config() { # DIR URL
    cat >"$1/vdirsyncer.conf" <<EOF
[general]
status_path = "$1/status/"

[pair bench]
a = "bench_local"
b = "bench_dav"
collections = null
conflict_resolution = "a wins"

[storage bench_local]
type = "filesystem"
path = "$1/local"
fileext = ".vcf"

[storage bench_dav]
type = "carddav"
url = "$2"
username = "$DAV_USER"
password = "bench"
EOF
}

# tool_cmd TOOL DIR URL — writes the tool's config and sets SYNC_CMD.
tool_cmd() {
    local tool="$1" dir="$2" url="$3"
    case "$tool" in
        tandem)
            write_tandem_config "$dir" "$url"
            # shellcheck disable=SC2086 # BENCH_VERBOSE is a list of flags
            SYNC_CMD=("$TANDEM_BIN" ${BENCH_VERBOSE:-} -c "$dir/tandem.toml" sync)
            ;;
        vdirsyncer)
            write_vdirsyncer_config "$dir" "$url"
            (yes || true) | "$TANDEM_VENV/bin/vdirsyncer" -c "$dir/vdirsyncer.conf" discover \
                >"$dir/discover.log" 2>&1 \
                || { tail -n 20 "$dir/discover.log" >&2; fail "vdirsyncer discover failed"; }
            SYNC_CMD=("$TANDEM_VENV/bin/vdirsyncer" -v WARNING -c "$dir/vdirsyncer.conf" sync)
            if [[ -n "$PEER_TIMEOUT" ]]; then SYNC_CMD=(timeout "$PEER_TIMEOUT" "${SYNC_CMD[@]}"); fi
            ;;
    esac
}

# tandem_wrote_nothing LOG — "" when Tandem's summary says it wrote nothing.
tandem_wrote_nothing() {
    if grep -q "created 0/0, updated 0/0, deleted 0/0" "$1"; then
        echo ""
    else
        echo "wrote: $(grep -o 'created [0-9/]*, updated [0-9/]*, deleted [0-9/]*' "$1" | head -n 1)"
    fi
}

# changed_etags BEFORE AFTER — how many items were rewritten, added or removed.
changed_etags() { comm -3 "$1" "$2" | wc -l; }

# writes_sent SERVER COLL — PUT and DELETE requests the server has logged for
# collection COLL so far (Radicale at log level info, Xandikos's access log).
# Counts what a tool sent even when the server stored the same bytes again
# and the ETag did not move.
writes_sent() {
    grep -cE "(PUT|DELETE) response status for '[^']*/$2/|\"(PUT|DELETE) [^ ]*/$2/" \
        "$BENCH_DIR/logs/$1-server.log" || true
}

# The BIG_N cards as SERVER would hold them after a PUT each: Radicale
# re-serialises every card; Xandikos stores a vCard's bytes as sent
# (xandikos/vcard.py's VCardFile keeps File.normalized(), which returns the
# content unchanged). Sets SERVER_CARDS.
server_cards() { # SERVER
    case "$1" in
        radicale)
            SERVER_CARDS="$BENCH_DIR/cards-big-radicale"
            if [[ ! -d "$SERVER_CARDS" ]]; then
                local changed
                changed="$("$TANDEM_VENV/bin/python" "$BENCH_DIR/radicale_rewrite.py" \
                    "$BENCH_DIR/cards-big" "$SERVER_CARDS" "$DAV_USER/big")" \
                    || fail "rewriting the cards as Radicale stores them failed"
                note "radicale: $changed of $BIG_N cards are stored differently from the local copy"
            fi
            ;;
        xandikos)
            SERVER_CARDS="$BENCH_DIR/cards-big"
            ;;
    esac
}

# Places the BIG_N cards, as the server would have stored them, straight into
# the collection COLL's storage folder.
seed_collection() { # SERVER COLL
    local server="$1" coll="$2" src
    server_cards "$server"
    src="$SERVER_CARDS"
    case "$server" in
        radicale)
            local dir="$STORAGE/collection-root/$DAV_USER/$coll"
            mkdir -p "$dir"
            printf '{"tag": "VADDRESSBOOK"}' >"$dir/.Radicale.props"
            cp "$src"/*.vcf "$dir/"
            ;;
        xandikos)
            # Each collection is a git repository (the index is what Xandikos
            # lists): create it over HTTP, then commit the cards with git.
            davtool mkcol "$BASE$HOME_PATH$coll/"
            local dir="$STORAGE$HOME_PATH$coll"
            [[ -d "$dir/.git" ]] || fail "no git repository at $dir after MKCOL"
            cp "$src"/*.vcf "$dir/"
            git -C "$dir" add -A -- '*.vcf'
            git -C "$dir" -c user.name=bench -c user.email=bench@localhost commit -q -m "bench: seed $BIG_N cards"
            ;;
    esac
}

run_server() {
    local server="$1" tool dir url logs="$BENCH_DIR/logs/$server"
    start_server "$server"

    # 1. Upload UPLOAD_N cards into an empty address book (one per tool, made by MKCOL first).
    if [[ "${BENCH_SKIP_UPLOAD:-}" != 1 ]]; then
    dir="$BENCH_DIR/$server/up-floor"
    mkdir -p "$dir"
    url="$BASE${HOME_PATH}up-floor/"
    davtool mkcol "$url"
    measure "$logs-upload-floor.log" python3 "$BENCH_DIR/davtool.py" put "$url" "$BENCH_DIR/cards-up" || true
    got="$(count_server "$url")"
    record "$server" upload floor "$([[ "$got" == "$UPLOAD_N" ]] || echo "$got on server")"

    for tool in $BENCH_TOOLS; do
        dir="$BENCH_DIR/$server/up-$tool"
        url="$BASE${HOME_PATH}up-$tool/"
        mkdir -p "$dir"
        cp -a "$BENCH_DIR/cards-up" "$dir/local"
        davtool mkcol "$url"
        tool_cmd "$tool" "$dir" "$url"
        measure "$logs-upload-$tool.log" "${SYNC_CMD[@]}" || true
        got="$(count_server "$url")"
        record "$server" upload "$tool" "$([[ "$got" == "$UPLOAD_N" ]] || echo "$got on server")"
    done
    fi

    # 2. and 3. BIG_N cards already on both sides: first sync (writes nothing), then a no-op.
    for tool in $BENCH_TOOLS; do
        dir="$BENCH_DIR/$server/big-$tool"
        url="$BASE${HOME_PATH}big-$tool/"
        mkdir -p "$dir"
        cp -a "$BENCH_DIR/cards-big" "$dir/local"
        seed_collection "$server" "big-$tool"
        # Untimed listing: checks the seeding and warms the server's caches
        # (Radicale's item cache) so neither tool pays for it. Then one
        # sync-collection report, untimed: it writes what each PUT would
        # have left behind besides the card (Radicale's history cache, one
        # fsynced file per item), which a client asking for changes would
        # otherwise pay for on the first sync.
        davtool etags "$url" >"$dir/etags-0"
        davtool sync "$url" >/dev/null
        got="$(grep -c . "$dir/etags-0" || true)"
        [[ "$got" == "$BIG_N" ]] || fail "$server: seeded $got of $BIG_N cards into $url"
        tool_cmd "$tool" "$dir" "$url"

        local check scenario i=0
        for scenario in first noop; do
            local sent_before
            sent_before="$(writes_sent "$server" "big-$tool")"
            measure "$logs-$scenario-$tool.log" "${SYNC_CMD[@]}" || true
            RESULT["$server|$scenario|$tool sent"]="$(($(writes_sent "$server" "big-$tool") - sent_before))"
            i=$((i + 1))
            davtool etags "$url" >"$dir/etags-$i"
            check=""
            local changed
            changed="$(changed_etags "$dir/etags-$((i - 1))" "$dir/etags-$i")"
            ((changed == 0)) || check="$changed item(s) changed on the server"
            [[ "$(count_cards "$dir/local")" == "$BIG_N" ]] || check="$check $(count_cards "$dir/local") local cards"
            if [[ "$tool" == tandem && "$M_SECS" != fail ]]; then
                local t
                t="$(tandem_wrote_nothing "$logs-$scenario-$tool.log")"
                [[ -z "$t" ]] || check="$check $t"
            fi
            RESULT["$server|$scenario|$tool writes"]="$changed"
            record "$server" "$scenario" "$tool" "$(echo "$check" | sed 's/^ *//')"
            # A stopped first sync leaves nothing meaningful to time a no-op on.
            if [[ "$M_SECS" == ">"* ]]; then
                RESULT["$server|noop|$tool s"]="not run (first sync stopped)"
                break
            fi
        done
        # The floors run on Tandem's collection after its runs (which wrote
        # nothing). The first sync's: list the collection and read every
        # item in multigets of Tandem's batch size (or BENCH_FLOOR_BATCH),
        # plus every local card. The no-op's: the server's own time for one
        # sync-collection report with a valid token, nothing having changed.
        if [[ "$tool" == tandem ]]; then
            measure "$logs-first-floor.log" python3 "$BENCH_DIR/davtool.py" compare "$url" "$dir/local" "$FLOOR_BATCH" || true
            got="$(tail -n 1 "$logs-first-floor.log")"
            record "$server" first floor "$([[ "$M_SECS" == fail || "$got" == "$BIG_N $BIG_N" ]] || echo "read $got (server, local)")"
            local token
            token="$(davtool sync "$url")"
            measure "$logs-noop-floor.log" python3 "$BENCH_DIR/davtool.py" sync "$url" "$token" || true
            record "$server" noop floor ""
        fi
    done
    stop_server
    [[ "${BENCH_KEEP:-}" == 1 ]] || rm -rf "$BENCH_DIR/$server"
}

cell() { echo "${RESULT[$1]:-–}"; }

ratio() {
    if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]]; then
        awk -v t="$1" -v f="$2" 'BEGIN { if (f > 0) printf "%.2f×", t / f; else print "–" }'
    else
        echo "–"
    fi
}

declare -A SCENARIO_LABEL=(
    [upload]="upload $UPLOAD_N cards into an empty address book"
    [first]="first sync, $BIG_N identical cards on both sides"
    [noop]="no-op sync at $BIG_N"
)

render_table() {
    local server s
    echo "| server | scenario | tandem s | tandem MB | vdirsyncer s | vdirsyncer MB | floor s | floor MB | tandem ÷ floor | vdirsyncer ÷ floor | writes sent (tandem / vdirsyncer) | server items changed (tandem / vdirsyncer) |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
    for server in "${DONE_SERVERS[@]}"; do
        for s in upload first noop; do
            local t v f tr="" vr="" w="" sent=""
            t="$(cell "$server|$s|tandem s")"
            v="$(cell "$server|$s|vdirsyncer s")"
            f="$(cell "$server|$s|floor s")"
            tr="$(ratio "$t" "$f")"
            vr="$(ratio "$v" "$f")"
            if [[ "$s" != upload ]]; then
                w="$(cell "$server|$s|tandem writes") / $(cell "$server|$s|vdirsyncer writes")"
                sent="$(cell "$server|$s|tandem sent") / $(cell "$server|$s|vdirsyncer sent")"
            fi
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
                "$server" "${SCENARIO_LABEL[$s]}" "$t" "$(cell "$server|$s|tandem MB")" \
                "$v" "$(cell "$server|$s|vdirsyncer MB")" "$f" "$(cell "$server|$s|floor MB")" \
                "$tr" "$vr" "$sent" "$w"
        done
    done
}

load_summary() {
    [[ -s "$BENCH_DIR/load.log" ]] || { echo "n/a"; return; }
    awk '{ s += $1; n++; if (n == 1 || $1 < lo) lo = $1; if ($1 > hi) hi = $1 }
         END { printf "1-min load average during the run: min %.2f, mean %.2f, max %.2f (%d samples)", lo, s / n, hi, n }' \
        "$BENCH_DIR/load.log"
}

write_results() {
    {
        echo "# vdir ↔ CardDAV sync benchmark"
        echo
        echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -sr), load average at start $LOAD_AT_START."
        echo "$(load_summary)."
        echo "tandem: $TANDEM_DESC; $VDIRSYNCER_DESC; $RADICALE_DESC; $XANDIKOS_DESC."
        echo "Wall seconds and peak RSS (MiB) per run, from GNU time; '–' = not applicable."
        echo "Floor, one keep-alive connection (Python http.client): upload, a PUT of each card with If-None-Match: *; first sync, one PROPFIND Depth: 1 for getetag, then $([[ "$FLOOR_BATCH" == all ]] && echo "one addressbook-multiget REPORT naming every item" || echo "addressbook-multiget REPORTs of $FLOOR_BATCH hrefs"), plus reading every local card; no-op, one sync-collection REPORT with a valid token."
        echo "Writes sent: PUT and DELETE requests the server logged for the collection during the run."
        echo "Server items changed: items whose ETag moved (or appeared/vanished) across the run, from PROPFIND before and after."
        echo
        render_table
    } >"$BENCH_DIR/dav-results.md"
}

main() {
    mkdir -p "$BENCH_DIR/logs"
    TIMEFILE="$BENCH_DIR/.time"
    LOAD_AT_START="$(cut -d' ' -f1 /proc/loadavg)"
    if awk -v l="$LOAD_AT_START" 'BEGIN { exit !(l > 0.5) }'; then
        note "warning: load average is $LOAD_AT_START; other work on this machine will skew the timings"
    fi
    : >"$BENCH_DIR/load.log"
    (while sleep 5; do cut -d' ' -f1 /proc/loadavg >>"$BENCH_DIR/load.log"; done) &
    LOAD_PID=$!

    ensure_gnu_time
    command -v python3 >/dev/null || fail "python3 not found"
    command -v curl >/dev/null || fail "curl not found"
    command -v git >/dev/null || fail "git not found"
    ensure_tandem
    TANDEM_DESC="$TANDEM_BIN ($(git -C "$REPO" describe --always --dirty 2>/dev/null || echo 'no commit'))"
    ensure_python_venv >&2
    VDIRSYNCER_DESC="$("$TANDEM_VENV/bin/vdirsyncer" --version)"
    RADICALE_DESC="Radicale $("$TANDEM_VENV/bin/radicale" --version)"
    XANDIKOS_DESC="Xandikos $("$TANDEM_VENV/bin/xandikos" --version 2>&1 | tail -n 1)"
    write_davtool
    write_radicale_rewrite

    note "generating $UPLOAD_N and $BIG_N cards"
    rm -rf "$BENCH_DIR/cards-up" "$BENCH_DIR/cards-big" "$BENCH_DIR/cards-big-radicale"
    python3 "$GEN" gen "$BENCH_DIR/cards-up" "$UPLOAD_N" --seed 1 2>/dev/null
    python3 "$GEN" gen "$BENCH_DIR/cards-big" "$BIG_N" --seed 2 2>/dev/null
    # The big address book as a phone exports it; see davtool's phone().
    note "$(davtool phone "$BENCH_DIR/cards-big") of $BIG_N cards spell TYPE as a phone exports it"

    DONE_SERVERS=()
    local server
    for server in $BENCH_SERVERS; do
        DONE_SERVERS+=("$server")
        run_server "$server"
        write_results # after each server, so an interrupted run keeps what it measured
    done
    [[ "${BENCH_KEEP:-}" == 1 ]] || rm -rf "$BENCH_DIR/cards-up" "$BENCH_DIR/cards-big" "$BENCH_DIR/cards-big-radicale"
    write_results

    echo
    render_table
    echo
    load_summary
    echo
    echo "Written to $BENCH_DIR/dav-results.md; logs in $BENCH_DIR/logs/."
    if ((FAILURES)); then
        note "$FAILURES run(s) failed or left the wrong end state: see the marks above and the logs"
        exit 1
    fi
}

main
