#!/usr/bin/env bash
# Benchmarks vdir → vdir contact sync: Tandem against vdirsyncer and against
# plain file-system floors (cp -r, find -newer, and atomic_copy.rs: a copy under
# the vdir store's write rules), for N = 1000 10000 100000 cards
# or the sizes given as arguments. See bench/README.md.
#
#   bench/vdir.sh [N...]
#
# Environment:
#   BENCH_DIR              scratch folder, never inside the repo (default /tmp/tandem-bench)
#   BENCH_TOOLS            which tools to run: "tandem vdirsyncer" (default), "tandem" or "vdirsyncer"
#   BENCH_SKIP_PEER_ABOVE  skip vdirsyncer for N greater than this (e.g. 10000 skips it at 100k)
#   BENCH_KEEP=1           keep each N's card folders instead of deleting them afterwards
#   TANDEM_BIN             use this tandem binary instead of building one
#   CARGO_TARGET_DIR, TANDEM_VENV   as in .ci/run
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GEN="$REPO/bench/gen_vcards.py"
# Defines ensure_python_venv and exports CARGO_TARGET_DIR and TANDEM_VENV the
# same way CI does.
# shellcheck source=../.ci/run
source "$REPO/.ci/run"

BENCH_DIR="${BENCH_DIR:-/tmp/tandem-bench}"
BENCH_TOOLS="${BENCH_TOOLS:-tandem vdirsyncer}"
BENCH_TOOLS="${BENCH_TOOLS//,/ }"
BENCH_SKIP_PEER_ABOVE="${BENCH_SKIP_PEER_ABOVE:-}"
SCENARIOS=(initial noop modify delete)
declare -A SCENARIO_LABEL=(
    [initial]="initial sync into empty B"
    [noop]="no-op sync"
    [modify]="1% modified on A, sync"
    [delete]="1% deleted on B, sync"
)
declare -A FLOOR_LABEL=([initial]="cp -r A C" [noop]="find A -newer REF" [modify]="find A -newer REF" [delete]="find A -newer REF")

declare -A RESULT=()   # RESULT[N|scenario|column] = value
FAILURES=0

fail() {
    echo "bench: $*" >&2
    exit 1
}
note() {
    echo "bench: $*" >&2
}

if (($#)); then SIZES=("$@"); else SIZES=(1000 10000 100000); fi
for n in "${SIZES[@]}"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || fail "N must be a positive integer, got '$n'"
done
for tool in $BENCH_TOOLS; do
    [[ "$tool" == tandem || "$tool" == vdirsyncer ]] || fail "unknown tool '$tool' in BENCH_TOOLS"
done
[[ -z "$BENCH_SKIP_PEER_ABOVE" || "$BENCH_SKIP_PEER_ABOVE" =~ ^[0-9]+$ ]] \
    || fail "BENCH_SKIP_PEER_ABOVE must be a number of cards"

runs_tool() { [[ " $BENCH_TOOLS " == *" $1 "* ]]; }

# The scratch folder is wiped per N, so it must never be (or contain) the repo.
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

# measure LOG CMD... — runs CMD (after flushing earlier writes to disk, so a
# step does not pay for the one before it) and sets M_SECS (wall seconds),
# M_CPU (CPU seconds, user and system, of CMD and what it waited for) and M_MB
# (peak RSS in MiB). Returns non-zero, after showing the log's tail, when CMD
# fails.
TIMEFILE=""
measure() {
    local log="$1" t0 t1 kb cpu
    shift
    sync
    t0=$EPOCHREALTIME
    if ! /usr/bin/time -f "%U %S %M" -o "$TIMEFILE" "$@" >"$log" 2>&1; then
        note "FAILED: $* (log: $log)"
        tail -n 20 "$log" >&2
        M_SECS=fail M_CPU=fail M_MB=fail
        return 1
    fi
    t1=$EPOCHREALTIME
    read -r cpu kb < <(tail -n 1 "$TIMEFILE" | awk '{ printf "%.2f %s\n", $1 + $2, $3 }')
    M_SECS="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
    M_CPU="$cpu"
    M_MB="$(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }')"
}

count_cards() { find "$1" -maxdepth 1 -name '*.vcf' | wc -l; }

# record N SCENARIO TOOL EXPECTED ACTUAL — stores the last measurement; a run
# that failed or left the wrong end state is marked so it can't pass as a result.
record() {
    local n="$1" scenario="$2" tool="$3" expected="$4" actual="$5" mark=""
    if [[ "$M_SECS" != fail && "$expected" != "$actual" ]]; then
        note "$tool $scenario at N=$n: expected $expected, found $actual"
        mark=" (wrong result)"
        FAILURES=$((FAILURES + 1))
    fi
    [[ "$M_SECS" == fail ]] && FAILURES=$((FAILURES + 1))
    RESULT["$n|$scenario|$tool s"]="$M_SECS$mark"
    RESULT["$n|$scenario|$tool MB"]="$M_MB"
    RESULT["$n|$scenario|$tool CPU"]="$M_CPU"
    note "$tool $scenario N=$n: ${M_SECS} s, ${M_CPU} CPU s, ${M_MB} MB"
}

write_tandem_config() {
    cat >"$1/tandem.toml" <<'EOF'
state = ".tandem/state.db"

[stores.a]
type = "vdir"
path = "A"

[stores.b]
type = "vdir"
path = "B"

[[pairs]]
name = "contacts"
a = "a"
b = "b"
kind = "contact"
conflict = "newest"
max_delete = "100%"
EOF
}

write_vdirsyncer_config() {
    cat >"$1/vdirsyncer.conf" <<EOF
[general]
status_path = "$1/status/"

[pair bench]
a = "bench_a"
b = "bench_b"
collections = null
conflict_resolution = "a wins"

[storage bench_a]
type = "filesystem"
path = "$1/A"
fileext = ".vcf"

[storage bench_b]
type = "filesystem"
path = "$1/B"
fileext = ".vcf"
EOF
}

# run_tool N TOOL — the four scenarios for one tool, in its own copy of the cards.
run_tool() {
    local n="$1" tool="$2" work="$BENCH_DIR/n$1/$2" logs="$BENCH_DIR/logs/n$1-$2"
    local changed deleted
    mkdir -p "$work/B"
    cp -a "$BENCH_DIR/n$n/src" "$work/A"

    local -a sync_cmd
    case "$tool" in
        tandem)
            write_tandem_config "$work"
            sync_cmd=("$TANDEM_BIN" -c "$work/tandem.toml" sync)
            ;;
        vdirsyncer)
            write_vdirsyncer_config "$work"
            "$TANDEM_VENV/bin/vdirsyncer" -c "$work/vdirsyncer.conf" discover </dev/null >"$logs-discover.log" 2>&1 \
                || { tail -n 20 "$logs-discover.log" >&2; fail "vdirsyncer discover failed"; }
            sync_cmd=("$TANDEM_VENV/bin/vdirsyncer" -v WARNING -c "$work/vdirsyncer.conf" sync)
            ;;
    esac

    measure "$logs-initial.log" "${sync_cmd[@]}" </dev/null || true
    record "$n" initial "$tool" "$n" "$(count_cards "$work/B")"

    measure "$logs-noop.log" "${sync_cmd[@]}" </dev/null || true
    record "$n" noop "$tool" "$n" "$(count_cards "$work/B")"

    changed="$(python3 "$GEN" modify "$work/A" --percent 1 --seed "$n" --tag "n$n" 2>/dev/null)"
    measure "$logs-modify.log" "${sync_cmd[@]}" </dev/null || true
    record "$n" modify "$tool" "$changed" "$(python3 "$GEN" count-tag "$work/B" "n$n")"

    deleted="$(python3 "$GEN" delete "$work/B" --percent 1 --seed "$n" 2>/dev/null)"
    measure "$logs-delete.log" "${sync_cmd[@]}" </dev/null || true
    record "$n" delete "$tool" "$((n - deleted))" "$(count_cards "$work/A")"
}

# Floors: what the file system alone needs to copy every card (a first sync
# can't beat it) and to find what changed since a moment (a no-op can't beat
# listing one side). A second first-sync floor copies under the rules a vdir
# store must write by (atomic_copy.rs: temporary name and rename, a syncfs
# every 1,000 files and at the end), with no parsing and no state.
run_floors() {
    local n="$1" dir="$BENCH_DIR/n$1" logs="$BENCH_DIR/logs/n$1-floor"
    # Floors are cheap and sensitive to noise, so each is the fastest of three.
    # Each copy goes to a folder of its own, all removed only when the size is
    # done: on an ext4 without a journal (this machine's disk), files created
    # within a minute of many deletes cost several times more (the inode
    # allocator skips every recently freed inode), and the runs after the
    # floors would pay for the floors' deletes.
    (
        cd "$dir"
        local i cp=999999 fd=999999 ac=999999
        for i in 1 2 3; do
            measure "$logs-cp.log" cp -r src "C$i" || exit 1
            cp="$(awk -v a="$cp" -v b="$M_SECS" 'BEGIN { print (b < a ? b : a) }')"
            measure "$logs-atomic.log" "$ATOMIC_COPY" src "D$i" || exit 1
            ac="$(awk -v a="$ac" -v b="$M_SECS" 'BEGIN { print (b < a ? b : a) }')"
            measure "$logs-find.log" find src -newer REF || exit 1
            fd="$(awk -v a="$fd" -v b="$M_SECS" 'BEGIN { print (b < a ? b : a) }')"
        done
        echo "$cp" >floor-cp
        echo "$ac" >floor-atomic
        echo "$fd" >floor-find
    ) || fail "floor measurement failed at N=$n"
    RESULT["$n|initial|floor s"]="$(cat "$dir/floor-cp")"
    RESULT["$n|initial|atomic s"]="$(cat "$dir/floor-atomic")"
    local s
    for s in noop modify delete; do RESULT["$n|$s|floor s"]="$(cat "$dir/floor-find")"; done
    note "floors N=$n: cp -r ${RESULT[$n|initial|floor s]} s, atomic copy ${RESULT[$n|initial|atomic s]} s, find ${RESULT[$n|noop|floor s]} s"
}

# Builds atomic_copy.rs (standard library only) into the scratch folder.
ensure_atomic_copy() {
    ATOMIC_COPY="$BENCH_DIR/atomic_copy"
    rustc -O --edition 2021 "$REPO/bench/atomic_copy.rs" -o "$ATOMIC_COPY" \
        || fail "could not build bench/atomic_copy.rs"
}

cell() { echo "${RESULT[$1]:-–}"; }

ratio() {
    local tool="$1" floor="$2"
    if [[ "$tool" =~ ^[0-9.]+$ && "$floor" =~ ^[0-9.]+$ ]]; then
        awk -v t="$tool" -v f="$floor" 'BEGIN { if (f > 0) printf "%.1f×", t / f; else print "–" }'
    else
        echo "–"
    fi
}

render_table() {
    local n s
    echo "| N | scenario | tandem s | tandem CPU s | tandem MB | vdirsyncer s | vdirsyncer CPU s | vdirsyncer MB | floor | floor s | tandem ÷ floor | vdirsyncer ÷ floor | atomic floor s | tandem ÷ atomic floor |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"
    for n in "${DONE_SIZES[@]}"; do
        for s in "${SCENARIOS[@]}"; do
            local t v f tr="" vr="" af="" ar=""
            t="$(cell "$n|$s|tandem s")"
            v="$(cell "$n|$s|vdirsyncer s")"
            f="$(cell "$n|$s|floor s")"
            if [[ "$s" == initial || "$s" == noop ]]; then
                tr="$(ratio "$t" "$f")"
                vr="$(ratio "$v" "$f")"
            fi
            if [[ "$s" == initial ]]; then
                af="$(cell "$n|$s|atomic s")"
                ar="$(ratio "$t" "$af")"
            fi
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
                "$n" "${SCENARIO_LABEL[$s]}" "$t" "$(cell "$n|$s|tandem CPU")" "$(cell "$n|$s|tandem MB")" \
                "$v" "$(cell "$n|$s|vdirsyncer CPU")" "$(cell "$n|$s|vdirsyncer MB")" \
                "${FLOOR_LABEL[$s]}" "$f" "$tr" "$vr" "$af" "$ar"
        done
    done
}

write_results() {
    {
        echo "# vdir → vdir sync benchmark"
        echo
        echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -sr), load average at start $LOAD_AT_START."
        echo "tandem: ${TANDEM_DESC:-not run}; vdirsyncer: ${VDIRSYNCER_DESC:-not run}."
        echo "Wall seconds, CPU seconds (user + system) and peak RSS (MiB) per run, warm page cache; '–' = not run or skipped."
        echo "Floors: \`cp -r\` of all cards (initial), \`find A -newer REF\` over one side (the rest);"
        echo "atomic floor: bench/atomic_copy.rs, a copy under the vdir store's write rules (temporary name and rename, syncfs every 1,000 files)."
        echo
        render_table
    } >"$BENCH_DIR/results.md"
}

main() {
    mkdir -p "$BENCH_DIR/logs"
    TIMEFILE="$BENCH_DIR/.time"
    LOAD_AT_START="$(cut -d' ' -f1 /proc/loadavg)"
    if awk -v l="$LOAD_AT_START" 'BEGIN { exit !(l > 0.5) }'; then
        note "warning: load average is $LOAD_AT_START; other work on this machine will skew the timings"
    fi
    ensure_gnu_time
    ensure_atomic_copy
    command -v python3 >/dev/null || fail "python3 not found"
    if runs_tool tandem; then
        ensure_tandem
        TANDEM_DESC="$TANDEM_BIN ($(git -C "$REPO" describe --always --dirty 2>/dev/null || echo 'no commit'))"
    fi
    if runs_tool vdirsyncer; then
        ensure_python_venv >&2
        VDIRSYNCER_DESC="$("$TANDEM_VENV/bin/vdirsyncer" --version)"
    fi

    DONE_SIZES=()
    local n
    for n in "${SIZES[@]}"; do
        local dir="$BENCH_DIR/n$n"
        rm -rf "$dir"
        mkdir -p "$dir"
        note "N=$n: generating cards"
        python3 "$GEN" gen "$dir/src" "$n" --seed "$n" 2>/dev/null
        touch "$dir/REF"
        DONE_SIZES+=("$n")
        run_floors "$n"
        if runs_tool tandem; then
            run_tool "$n" tandem
        fi
        if runs_tool vdirsyncer; then
            if [[ -n "$BENCH_SKIP_PEER_ABOVE" ]] && ((n > BENCH_SKIP_PEER_ABOVE)); then
                note "skipping vdirsyncer at N=$n (BENCH_SKIP_PEER_ABOVE=$BENCH_SKIP_PEER_ABOVE)"
                for s in "${SCENARIOS[@]}"; do RESULT["$n|$s|vdirsyncer s"]="skipped"; done
            else
                run_tool "$n" vdirsyncer
            fi
        fi
        if [[ "${BENCH_KEEP:-}" != 1 ]]; then
            rm -rf "$dir"
            # The next size's runs would pay for these deletes (see run_floors).
            if ((n >= 10000)) && [[ "$n" != "${SIZES[-1]}" ]]; then
                sync
                sleep "${BENCH_DELETE_WAIT:-65}"
            fi
        fi
        write_results   # after every N, so a long run leaves what it has measured
    done

    echo
    render_table
    echo
    echo "Written to $BENCH_DIR/results.md; logs in $BENCH_DIR/logs/."
    if ((FAILURES)); then
        note "$FAILURES run(s) failed or left the wrong end state: see the marks above and the logs"
        exit 1
    fi
}

main
