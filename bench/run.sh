#!/usr/bin/env bash
# floe against dlt: the same data loaded into Iceberg by both, timed side by side (issue 10).
#
#   bash bench/run.sh [--rows N] [--cases jsonl,csv,parquet,postgres,rest] [--repeat N] [--big]
#                     [--no-dlt] [--rest-items N] [--timeout S] [--keep]
#
#   --rows N       rows of event data for the file and PostgreSQL cases (default 1000000)
#   --cases LIST   which cases to run (default all five)
#   --repeat N     runs per tool, alternating floe, dlt default, dlt fastest; the best counts (1)
#   --big          also load 10M rows of JSONL with floe alone and compare its peak RSS with 1M
#   --no-dlt       floe and the limit only (quick iterations on floe itself)
#   --rest-items N items behind the REST server, 100 per page (default 200000 = 2,000 pages)
#   --timeout S    give up on one run after S seconds (default 1800)
#   --keep         keep the scratch folder (outputs, logs) and print its path
#
# Data sets, the dlt virtualenv and PostgreSQL's data live in a cache outside the clone
# (FLOE_BENCH_CACHE, default ~/.cache/floe-bench; PostgreSQL under /var/tmp, see pg_dir) and
# are reused when present. floe is built with `cargo build --release` into
# CARGO_TARGET_DIR (default ~/.cache/floe-target). Every table is read back with PyIceberg and
# its row count checked; a mismatch makes the script exit 1 after printing every case.
# A floe source that fails (e.g. not finished yet) is reported as "floe: failed (<message>)"
# and the suite goes on.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
CACHE=${FLOE_BENCH_CACHE:-$HOME/.cache/floe-bench}
DATA=$CACHE/data
VENV=$CACHE/venv-dlt
PY=$VENV/bin/python
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/floe-target}
FLOE= # set by build
LIMIT=
PG_BIN=/usr/lib/postgresql/15/bin
# What the dlt peer figures in peers.md were measured with; pip resolves the rest.
PIP_PACKAGES=("dlt[filesystem,pyiceberg,sql_database,postgres]" pyarrow "pyiceberg[sql-sqlite,pyarrow]"
	connectorx "psycopg[binary]" psycopg2-binary pandas)
export RUNTIME__DLTHUB_TELEMETRY=false

ROWS=1000000
CASES=jsonl,csv,parquet,postgres,rest
REPEAT=1
BIG=0
WITH_DLT=1
REST_ITEMS=200000
REST_PAGE=100
TIMEOUT=1800
KEEP=0
THREADS=$(nproc)

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}
usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

while [[ $# -gt 0 ]]; do
	case $1 in
	--rows) ROWS=$2 && shift ;;
	--cases) CASES=$2 && shift ;;
	--repeat) REPEAT=$2 && shift ;;
	--big) BIG=1 ;;
	--no-dlt) WITH_DLT=0 ;;
	--rest-items) REST_ITEMS=$2 && shift ;;
	--timeout) TIMEOUT=$2 && shift ;;
	--keep) KEEP=1 ;;
	-h | --help) usage ;;
	*) log "unknown option $1" && usage ;;
	esac
	shift
done
[[ $ROWS =~ ^[0-9]+$ && $REPEAT =~ ^[1-9][0-9]*$ && $REST_ITEMS =~ ^[0-9]+$ ]] || die "--rows, --repeat and --rest-items take positive integers"
for c in ${CASES//,/ }; do
	case $c in jsonl | csv | parquet | postgres | rest) ;; *) die "unknown case '$c' (known: jsonl, csv, parquet, postgres, rest)" ;; esac
done
wants() { case ",$CASES," in *",$1,"*) return 0 ;; *) return 1 ;; esac }

# ---------------------------------------------------------------------------------------------
# setup

apt_install() {
	[[ $EUID -eq 0 ]] || die "missing Debian packages: $* (install them: apt-get install -y $*)"
	log "apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

ensure_tools() {
	local missing=()
	[[ -x /usr/bin/time ]] || missing+=(time)
	command -v curl >/dev/null || missing+=(curl)
	python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
	if wants postgres; then
		[[ -x $PG_BIN/pg_ctl ]] || missing+=(postgresql-15)
		[[ -x $PG_BIN/psql ]] || missing+=(postgresql-client-15)
	fi
	[[ ${#missing[@]} -eq 0 ]] || apt_install "${missing[@]}"
}

ensure_venv() {
	# The marker records what was installed, so a changed package list reinstalls.
	if [[ -x $PY && "$(cat "$VENV/.bench-packages" 2>/dev/null)" == "${PIP_PACKAGES[*]}" ]] &&
		"$PY" -c 'import dlt, pyarrow, pyiceberg, connectorx, psycopg' 2>/dev/null; then
		return
	fi
	log "installing dlt into $VENV"
	python3 -m venv "$VENV"
	"$PY" -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}" >&2
	printf '%s\n' "${PIP_PACKAGES[*]}" >"$VENV/.bench-packages"
}

build() {
	log "cargo build --release (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
	(cd "$ROOT" && cargo build --release --quiet --bin floe --example limit) >&2 || die "cargo build failed"
	# Private copies: another build into the same target folder must not swap the binary
	# between two cases of one run.
	mkdir -p "$SCRATCH/bin"
	cp "$CARGO_TARGET_DIR/release/floe" "$CARGO_TARGET_DIR/release/examples/limit" "$SCRATCH/bin/"
	FLOE=$SCRATCH/bin/floe
	LIMIT=$SCRATCH/bin/limit
}

# data_file KIND ROWS: the path of a cached data set, generated on first use.
data_file() {
	local kind=$1 rows=$2 path
	path=$DATA/events-$rows.$kind
	if [[ ! -s $path ]]; then
		mkdir -p "$DATA"
		log "generating $path"
		case $kind in
		parquet) "$PY" "$BENCH/gen_data.py" parquet "$(data_file jsonl "$rows")" "$path" ;;
		*) "$PY" "$BENCH/gen_data.py" "$kind" "$rows" "$path" ;;
		esac
	fi
	echo "$path"
}

free_port() { # the first port from $1 up that nobody listens on
	local p=$1
	while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
	echo "$p"
}

# ---------------------------------------------------------------------------------------------
# services: a private PostgreSQL and the REST server, stopped by their recorded pids on exit

as_postgres() { if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# Outside $HOME (often mode 0700): the postgres user must traverse every parent folder. Kept
# between runs so the table is loaded once.
pg_dir() { echo "${FLOE_BENCH_PG_DIR:-/var/tmp/floe-bench-pg-$(id -u)}"; }
PG_URL=
PG_DATA=
REST_PID=

start_postgres() {
	local dir port rows
	dir=$(pg_dir)
	mkdir -p "$dir"
	[[ $EUID -ne 0 ]] || chown postgres:postgres "$dir"
	if [[ ! -f $dir/data/PG_VERSION ]]; then
		as_postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
			die "initdb failed: see $dir/initdb.log"
	fi
	port=$(free_port 55450)
	PG_DATA=$dir/data
	# Durability off, as in peers.md: only the read side is measured.
	as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$dir/server.log" -w -t 60 \
		-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
		start >/dev/null || die "PostgreSQL did not start: see $dir/server.log"
	PG_URL=postgresql://postgres@127.0.0.1:$port/bench
	"$PG_BIN/psql" "postgresql://postgres@127.0.0.1:$port/postgres" -Atqc "select 1 from pg_database where datname = 'bench'" | grep -q 1 ||
		"$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres bench
	rows=$("$PG_BIN/psql" "$PG_URL" -Atqc "select count(*) from events" 2>/dev/null || echo none)
	if [[ $rows != "$ROWS" ]]; then
		log "loading $ROWS rows into PostgreSQL (table had: $rows)"
		"$PG_BIN/psql" "$PG_URL" -v ON_ERROR_STOP=1 -q <<-SQL >&2
			drop table if exists events;
			create table events (id bigint primary key, ts timestamptz, "user" text, amount float8, payload jsonb);
			\copy events from '$(data_file csv "$ROWS")' with (format csv, header true)
		SQL
	fi
	# Set hint bits and the visibility map now: otherwise the first tool to scan the freshly
	# loaded table pays for writing them (measured: floe 5.3 s instead of 2.8 s).
	"$PG_BIN/psql" "$PG_URL" -v ON_ERROR_STOP=1 -qc "vacuum (freeze, analyze) events" >&2
	log "PostgreSQL $PG_URL ready ($ROWS rows in events)"
}

stop_postgres() {
	[[ -n $PG_DATA && -f $PG_DATA/postmaster.pid ]] || return 0
	as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
	PG_DATA=
}

start_rest() {
	local port i
	port=$(free_port 18480)
	rm -f "$SCRATCH/rest.ready"
	"$PY" "$BENCH/rest_server.py" --port "$port" --items "$REST_ITEMS" --page-size "$REST_PAGE" \
		--ready-file "$SCRATCH/rest.ready" >"$SCRATCH/rest.log" 2>&1 &
	REST_PID=$!
	REST_URL=http://127.0.0.1:$port
	for ((i = 0; i < 600; i++)); do
		[[ -f $SCRATCH/rest.ready ]] && curl -sf -o /dev/null "$REST_URL/healthz" && return 0
		kill -0 "$REST_PID" 2>/dev/null || die "the REST server exited: $(tail -3 "$SCRATCH/rest.log")"
		sleep 0.1
	done
	die "the REST server did not answer within 60 s"
}

stop_rest() {
	[[ -n $REST_PID ]] || return 0
	kill "$REST_PID" 2>/dev/null || true
	wait "$REST_PID" 2>/dev/null || true
	REST_PID=
}

cleanup() {
	stop_rest
	stop_postgres
	if [[ $KEEP == 1 ]]; then
		log "kept $SCRATCH"
	else
		rm -rf "$SCRATCH"
	fi
}

# ---------------------------------------------------------------------------------------------
# measuring

# Best run per case and tool: WALL, RSS (KB), CPU (%), LOAD (1-min load average at its start),
# FAIL (why it never succeeded), DETAIL (dlt phases, limit split).
declare -A WALL RSS CPU LOAD FAIL DETAIL
ROWCHECK_FAILED=0
SUMMARY=()

# measure KEY LOG cmd...: run under GNU time; keep it in WALL/RSS/… if it is KEY's best run.
measure() {
	local key=$1 log=$2 rc load wall rss user sys
	shift 2
	load=$(cut -d' ' -f1 /proc/loadavg)
	set +e
	/usr/bin/time -f '%e %M %U %S' -o "$log.time" timeout "$TIMEOUT" "$@" >"$log.out" 2>"$log.err"
	rc=$?
	set -e
	# time writes "Command exited with non-zero status N" before the figures on failure.
	read -r wall rss user sys < <(tail -1 "$log.time")
	if [[ $rc -ne 0 ]]; then
		[[ -n ${WALL[$key]:-} ]] || FAIL[$key]=$(failure_reason "$log" "$rc")
		log "$key: failed (exit $rc): ${FAIL[$key]:-see $log.err}"
		return 1
	fi
	if [[ -z ${WALL[$key]:-} ]] || awk -v a="$wall" -v b="${WALL[$key]}" 'BEGIN { exit !(a < b) }'; then
		WALL[$key]=$wall
		RSS[$key]=$rss
		CPU[$key]=$(awk -v u="$user" -v s="$sys" -v w="$wall" 'BEGIN { printf "%.0f", (w > 0 ? 100 * (u + s) / w : 0) }')
		LOAD[$key]=$load
		DETAIL[$key]=$(grep -h -E '^(dlt phases|rows=)' "$log.out" "$log.err" 2>/dev/null | tail -1 || true)
		unset 'FAIL[$key]'
	fi
	log "$key: ${wall}s, $((rss / 1024)) MB"
}

# Why a run failed, on one line: floe's report error, else the last line of stderr.
failure_reason() {
	local log=$1 rc=$2 msg=
	if [[ $rc -eq 124 ]]; then
		echo "timed out after ${TIMEOUT}s"
		return
	fi
	if [[ -s $log.out ]]; then
		msg=$("$PY" -c 'import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception:
    sys.exit(0)
errors = [x["error"] for x in r.get("results", []) if x.get("error")]
if errors:
    e = errors[0]
    print("{} {}: {}".format(e.get("category"), e.get("code"), e.get("message")))' "$log.out" 2>/dev/null || true)
	fi
	[[ -n $msg ]] || msg=$(grep -v '^\s*$' "$log.err" | grep -v '^Command exited' | tail -1 || true)
	msg=${msg//$'\n'/ }
	echo "exit $rc: ${msg:0:240}"
}

# floe_project DIR: manifest and spec for one entry named events; the spec's dlt block on stdin.
floe_project() {
	local dir=$1
	mkdir -p "$dir"
	# One attempt: a retry would only add the policy's delay to the measured time.
	cat >"$dir/manifest.yaml" <<-YAML
		plugins:
		  ingestion:
		    type: dlt
		    retry: {max_attempts: 1}
	YAML
	{
		printf 'ingestion:\n  - name: events\n    type: dlt\n    destination: bench.events\n'
		cat
	} >"$dir/floe.yaml"
}

run_floe() { # run_floe CASE DIR
	local dir=$2
	rm -rf "$dir/.floe" # a fresh catalog every run: the filesystem source skips files it loaded
	measure "$1/floe" "$SCRATCH/$1-floe" "$FLOE" ingest run --output json \
		--manifest "$dir/manifest.yaml" --spec "$dir/floe.yaml" || true
}

run_dlt() { # run_dlt CASE VARIANT INPUT
	local out=$SCRATCH/dlt-$1-$2
	rm -rf "$out" "$SCRATCH/dlt-work"
	measure "$1/dlt_$2" "$SCRATCH/$1-dlt-$2" "$PY" "$BENCH/dlt_load.py" "$1" "$2" \
		--input "$3" --out "$out" --work "$SCRATCH/dlt-work" || true
}

run_limit() { # run_limit CASE THREADS FILE
	rm -rf "$SCRATCH/limit-out"
	measure "$1/limit$2" "$SCRATCH/$1-limit$2" "$LIMIT" --format "$1" --threads "$2" "$3" "$SCRATCH/limit-out" || true
	rm -rf "$SCRATCH/limit-out"
}

# check_rows CASE EXPECTED: read every table back and compare with the rows generated.
check_rows() {
	local case=$1 expected=$2 key n parts=() bad=0 tool
	for tool in floe dlt_default dlt_fastest dlt_pyarrow; do
		key=$case/$tool
		[[ -n ${WALL[$key]:-} ]] || continue
		if [[ $tool == floe ]]; then
			n=$("$PY" "$BENCH/count_rows.py" floe --catalog-db "$SCRATCH/floe-$case/.floe/catalog.db" \
				--warehouse "$SCRATCH/floe-$case/.floe/warehouse" --table bench.events 2>"$SCRATCH/count.err") ||
				n="unreadable ($(tail -1 "$SCRATCH/count.err"))"
		else
			n=$("$PY" "$BENCH/count_rows.py" dlt --table-dir "$SCRATCH/dlt-$case-${tool#dlt_}/bench/events" 2>"$SCRATCH/count.err") ||
				n="unreadable ($(tail -1 "$SCRATCH/count.err"))"
		fi
		parts+=("$(label "$case" "$tool") $(num "$n")")
		[[ $n == "$expected" ]] || bad=1
	done
	if [[ ${#parts[@]} -eq 0 ]]; then
		echo "rows: nothing loaded, nothing to check"
	elif [[ $bad -eq 0 ]]; then
		echo "rows read back with PyIceberg: $(join ' · ' "${parts[@]}") (expected $(num "$expected")): OK"
	else
		ROWCHECK_FAILED=1
		echo "!!! ROW COUNT MISMATCH: $(join ' · ' "${parts[@]}") (expected $(num "$expected")) !!!"
		log "ROW COUNT MISMATCH in case $case"
	fi
}

# ---------------------------------------------------------------------------------------------
# reporting

join() {
	local sep=$1 out=$2
	shift 2
	for x in "$@"; do out+="$sep$x"; done
	echo "$out"
}
num() { sed ':a; s/\B[0-9]\{3\}\>/,&/; ta' <<<"$1"; } # 1234567 -> 1,234,567
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

label() {
	case $2 in
	floe) echo "floe" ;;
	limit1) echo "limit, 1 thread" ;;
	limit*) echo "limit, ${2#limit} threads" ;;
	dlt_default)
		case $1 in
		jsonl) echo "dlt default (read_jsonl)" ;; csv) echo "dlt default (read_csv)" ;;
		parquet) echo "dlt default (read_parquet)" ;; postgres) echo "dlt default (sqlalchemy)" ;;
		rest) echo "dlt rest_api" ;;
		esac
		;;
	dlt_fastest)
		case $1 in
		jsonl) echo "dlt fastest (pyarrow.json)" ;; csv) echo "dlt fastest (pyarrow.csv)" ;;
		parquet) echo "dlt fastest (pyarrow)" ;; postgres) echo "dlt fastest (connectorx)" ;;
		esac
		;;
	dlt_pyarrow) echo "dlt pyarrow backend" ;;
	esac
}

# target CASE TEXT VALUE OP LIMIT UNIT: record a target of issue 10 as met or missed.
target() {
	local case=$1 text=$2 value=$3 op=$4 bound=$5 unit=$6 verdict
	if [[ -z $value || $value == - ]]; then
		verdict="n/a"
	elif awk -v v="$value" -v b="$bound" -v op="$op" 'BEGIN { exit !(op == ">=" ? v >= b : v <= b) }'; then
		verdict=MET
	else
		verdict=MISSED
	fi
	SUMMARY+=("$(printf '%-9s %-40s %10s   %s' "$case" "$text $op $bound$unit" "${value:--}$unit" "$verdict")")
	printf '  target %s %s%s: %s%s %s\n' "$text" "$op" "$bound$unit" "${value:--}" "$unit" "$verdict"
}

print_case() { # print_case CASE ROWS DESCRIPTION
	local case=$1 rows=$2 tool key fw fr
	echo
	echo "=== $case → Iceberg: $(num "$rows") rows, $3; best of $REPEAT ==="
	printf '%-28s %8s %11s %8s %6s %5s %9s %10s %9s\n' tool "wall s" "rows/s" "RSS MB" "CPU %" load speed-up "floe/x t" "floe/x RSS"
	fw=${WALL[$case/floe]:-}
	fr=${RSS[$case/floe]:-}
	for tool in floe dlt_default dlt_fastest dlt_pyarrow limit1 "limit$THREADS"; do
		key=$case/$tool
		[[ -n ${WALL[$key]:-} || -n ${FAIL[$key]:-} ]] || continue
		if [[ -z ${WALL[$key]:-} ]]; then
			echo "$(label "$case" "$tool"): failed (${FAIL[$key]})"
			continue
		fi
		local speed=- tr=- rr=-
		if [[ $tool != floe && -n $fw ]]; then
			speed=$(ratio "${WALL[$key]}" "$fw")×
			tr=$(ratio "$fw" "${WALL[$key]}")
			rr=$(ratio "$fr" "${RSS[$key]}")
		fi
		printf '%-28s %8.2f %11s %8d %6s %5s %9s %10s %9s\n' "$(label "$case" "$tool")" "${WALL[$key]}" \
			"$(num "$(awk -v r="$rows" -v w="${WALL[$key]}" 'BEGIN { printf "%.0f", (w > 0 ? r / w : 0) }')")" \
			"$((RSS[$key] / 1024))" "${CPU[$key]}" "${LOAD[$key]}" "$speed" "$tr" "$rr"
	done
	for tool in dlt_default dlt_fastest dlt_pyarrow limit1 "limit$THREADS"; do
		[[ -n ${DETAIL[$case/$tool]:-} ]] && echo "  $(label "$case" "$tool"): ${DETAIL[$case/$tool]}"
	done
	return 0
}

# print_targets CASE: the targets of issue 10 for this case.
print_targets() {
	local case=$1 fw=${WALL[$1/floe]:-} fr=${RSS[$1/floe]:-}
	speedup() { [[ -n $fw && -n ${WALL[$case/$1]:-} ]] && ratio "${WALL[$case/$1]}" "$fw" || echo -; }
	local mb=-
	[[ -z $fr ]] || mb=$((fr / 1024))
	case $case in
	jsonl | csv)
		local d=20
		[[ $case == csv ]] && d=10
		[[ $WITH_DLT == 0 ]] || target "$case" "speed-up vs dlt default" "$(speedup dlt_default)" ">=" "$d" ×
		[[ $WITH_DLT == 0 ]] || target "$case" "speed-up vs dlt fastest" "$(speedup dlt_fastest)" ">=" 2 ×
		target "$case" "floe peak RSS" "$mb" "<=" 200 " MB"
		;;
	postgres)
		[[ $WITH_DLT == 0 ]] || target "$case" "speed-up vs dlt connectorx" "$(speedup dlt_fastest)" ">=" 2 ×
		[[ $WITH_DLT == 0 ]] || target "$case" "speed-up vs dlt pyarrow backend" "$(speedup dlt_pyarrow)" ">=" 2 ×
		target "$case" "floe peak RSS" "$mb" "<=" 300 " MB"
		;;
	rest) [[ $WITH_DLT == 0 ]] || target "$case" "speed-up vs dlt rest_api" "$(speedup dlt_default)" ">=" 5 × ;;
	esac
	case $case in
	jsonl | csv | parquet)
		local lw=${WALL[$case/limit$THREADS]:-}
		target "$case" "floe / limit ($THREADS threads) time" "$([[ -n $fw && -n $lw ]] && ratio "$fw" "$lw" || echo -)" "<=" 1.3 ×
		;;
	esac
	return 0
}

# ---------------------------------------------------------------------------------------------
# cases

file_case() { # file_case FORMAT ROWS WITH_DLT
	local fmt=$1 rows=$2 dlt=$3 file dir rep
	file=$(data_file "$fmt" "$rows")
	dir=$SCRATCH/floe-$fmt
	floe_project "$dir" <<-YAML
		    dlt:
		      source: filesystem
		      write_disposition: append
		      config: {bucket_url: "$(dirname "$file")", file_glob: "$(basename "$file")", format: $fmt}
	YAML
	for ((rep = 1; rep <= REPEAT; rep++)); do
		log "$fmt: run $rep of $REPEAT"
		run_floe "$fmt" "$dir"
		if [[ $dlt == 1 ]]; then
			run_dlt "$fmt" default "$file"
			run_dlt "$fmt" fastest "$file"
		fi
		run_limit "$fmt" 1 "$file"
		[[ $THREADS -eq 1 ]] || run_limit "$fmt" "$THREADS" "$file"
	done
	print_case "$fmt" "$rows" "$(basename "$file") ($(($(stat -c %s "$file") / 1000000)) MB)"
	check_rows "$fmt" "$rows"
	print_targets "$fmt"
}

postgres_case() {
	local dir=$SCRATCH/floe-postgres rep
	start_postgres
	floe_project "$dir" <<-YAML
		    dlt:
		      source: sql_database
		      write_disposition: append
		      config: {credentials: "\${secrets.db}", table: events, chunk_size: 50000}
		    secret_refs: {db: bench-db}
	YAML
	export FLOE_SECRET_BENCH_DB=$PG_URL
	for ((rep = 1; rep <= REPEAT; rep++)); do
		log "postgres: run $rep of $REPEAT"
		run_floe postgres "$dir"
		if [[ $WITH_DLT == 1 ]]; then
			run_dlt postgres default "$PG_URL"
			run_dlt postgres fastest "$PG_URL"
			run_dlt postgres pyarrow "$PG_URL"
		fi
	done
	unset FLOE_SECRET_BENCH_DB
	stop_postgres
	print_case postgres "$ROWS" "table events (id bigint pk, ts timestamptz, user text, amount float8, payload jsonb)"
	check_rows postgres "$ROWS"
	print_targets postgres
}

rest_case() {
	local dir=$SCRATCH/floe-rest rep pager="{type: page_number, base_page: 1, page_param: page, total_path: total_pages}"
	start_rest
	floe_project "$dir" <<-YAML
		    dlt:
		      source: rest_api
		      resource: events
		      write_disposition: append
		      config:
		        client: {base_url: "$REST_URL", paginator: $pager}
		        resources:
		          - name: events
		            endpoint: {path: items, data_selector: data, paginator: $pager}
	YAML
	for ((rep = 1; rep <= REPEAT; rep++)); do
		log "rest: run $rep of $REPEAT"
		run_floe rest "$dir"
		[[ $WITH_DLT == 0 ]] || run_dlt rest default "$REST_URL"
	done
	stop_rest
	print_case rest "$REST_ITEMS" "$(((REST_ITEMS + REST_PAGE - 1) / REST_PAGE)) pages of $REST_PAGE items from a local server"
	check_rows rest "$REST_ITEMS"
	print_targets rest
}

big_case() {
	local big=$((ROWS * 10)) small_rss
	# The 1M figure comes from the same run, so both see the same machine load.
	if [[ -z ${RSS[jsonl/floe]:-} ]]; then
		log "big: measuring floe on $(num "$ROWS") rows of JSONL first"
		file_case jsonl "$ROWS" 0 >/dev/null
	fi
	small_rss=${RSS[jsonl/floe]:-}
	# Under its own key so the 1M row of the jsonl table stays as printed.
	local file dir=$SCRATCH/floe-big rep
	file=$(data_file jsonl "$big")
	floe_project "$dir" <<-YAML
		    dlt:
		      source: filesystem
		      write_disposition: append
		      config: {bucket_url: "$(dirname "$file")", file_glob: "$(basename "$file")", format: jsonl}
	YAML
	for ((rep = 1; rep <= REPEAT; rep++)); do
		log "big: run $rep of $REPEAT"
		run_floe big "$dir"
	done
	echo
	echo "=== big: floe alone, JSONL, $(num "$big") rows vs $(num "$ROWS") ($(basename "$file"), $(($(stat -c %s "$file") / 1000000)) MB) ==="
	if [[ -z ${WALL[big/floe]:-} ]]; then
		echo "floe: failed (${FAIL[big/floe]:-unknown})"
		target big "peak RSS at 10× rows / at 1×" - "<=" 1.25 ×
		return
	fi
	printf '%-28s %8s %11s %8s %6s %5s\n' tool "wall s" "rows/s" "RSS MB" "CPU %" load
	printf '%-28s %8.2f %11s %8d %6s %5s\n' "floe, $(num "$big") rows" "${WALL[big/floe]}" \
		"$(num "$(awk -v r="$big" -v w="${WALL[big/floe]}" 'BEGIN { printf "%.0f", r / w }')")" \
		"$((RSS[big/floe] / 1024))" "${CPU[big/floe]}" "${LOAD[big/floe]}"
	[[ -z $small_rss ]] || printf '%-28s %8.2f %11s %8d %6s %5s\n' "floe, $(num "$ROWS") rows" "${WALL[jsonl/floe]}" \
		"$(num "$(awk -v r="$ROWS" -v w="${WALL[jsonl/floe]}" 'BEGIN { printf "%.0f", r / w }')")" \
		"$((small_rss / 1024))" "${CPU[jsonl/floe]}" "${LOAD[jsonl/floe]}"
	check_rows big "$big"
	target big "peak RSS at 10× rows / at 1×" "$([[ -n $small_rss ]] && ratio "${RSS[big/floe]}" "$small_rss" || echo -)" "<=" 1.25 ×
}

# ---------------------------------------------------------------------------------------------
# main

ensure_tools
ensure_venv
# /tmp, not the clone: PostgreSQL's user must be able to traverse it.
SCRATCH=$(mktemp -d /tmp/floe-bench.XXXXXX)
chmod 755 "$SCRATCH"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
build

echo "floe $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo '+local changes') vs" \
	"$("$PY" -c 'import dlt, pyarrow, pyiceberg; print(f"dlt {dlt.__version__}, pyarrow {pyarrow.__version__}, pyiceberg {pyiceberg.__version__}")')"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg); warm page cache"
echo "speed-up = x's wall time / floe's; floe/x t and floe/x RSS = floe's wall time and peak RSS over x's"

for c in jsonl csv parquet; do
	! wants "$c" || file_case "$c" "$ROWS" "$WITH_DLT"
done
! wants postgres || postgres_case
! wants rest || rest_case
[[ $BIG == 0 ]] || big_case

echo
echo "=== targets of issue 10 ==="
printf '%s\n' "${SUMMARY[@]}"
if [[ $ROWCHECK_FAILED == 1 ]]; then
	echo "!!! a row count check failed (see above) !!!"
	exit 1
fi
