#!/usr/bin/env bash
# services.sh — start/stop private, throw-away service instances for tests.
#
# Usage:
#   scripts/services.sh mariadb [DIR]       start (or reuse) a private MariaDB
#   scripts/services.sh mariadb-stop [DIR]  stop it
#   scripts/services.sh mariadb-env [DIR]   reprint the env of a running one
#   scripts/services.sh redis [DIR]         start (or reuse) a private Redis
#   scripts/services.sh redis-stop [DIR]    stop it
#   scripts/services.sh redis-env [DIR]     reprint the env of a running one
#
# `mariadb` installs mariadb-server with apt-get when it is missing, creates
# its own datadir under DIR (default: $OCCOPUS_SERVICES_DIR or
# /tmp/occopus-services, then /mariadb), listens on 127.0.0.1 only, on
# $MARIADB_PORT or a free port, creates a database and a password user, and
# prints shell exports on stdout (progress goes to stderr), so:
#
#   eval "$(scripts/services.sh mariadb)"
#   go test -race ./health/...
#
# prints/exports: OCCOPUS_TEST_MYSQL_ADDR (127.0.0.1:PORT),
# OCCOPUS_TEST_MYSQL_PORT, OCCOPUS_TEST_MYSQL_USER, OCCOPUS_TEST_MYSQL_PASS,
# OCCOPUS_TEST_MYSQL_DB, OCCOPUS_TEST_MYSQL_SOCKET (root via unix socket).
#
# `redis` likewise installs redis-server when missing, keeps its files in
# DIR/redis, listens on 127.0.0.1 on $REDIS_PORT or a free port, requires a
# random password, persists nothing, and prints/exports
# OCCOPUS_TEST_REDIS_ADDR (127.0.0.1:PORT) and OCCOPUS_TEST_REDIS_PASS:
#
#   eval "$(scripts/services.sh redis)"
#   go test -race ./store/...
set -euo pipefail

log() { printf 'services.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

base_dir() { echo "${1:-${OCCOPUS_SERVICES_DIR:-/tmp/occopus-services}}/mariadb"; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"
	elif command -v sudo >/dev/null; then sudo "$@"
	else die "need root to run: $*"; fi
}

mariadb_install() {
	if command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; then return; fi
	log "mariadb-server missing; installing with apt-get"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q mariadb-server >&2
}

# port_free PORT: nothing accepts connections on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_port() {
	if [ -n "${MARIADB_PORT:-}" ]; then
		port_free "$MARIADB_PORT" || die "port $MARIADB_PORT is in use"
		echo "$MARIADB_PORT"; return
	fi
	local p i
	for i in $(seq 1 50); do
		p=$(( 20000 + RANDOM % 30000 ))
		if port_free "$p"; then echo "$p"; return; fi
	done
	die "no free port found"
}

running() { # running DIR: the instance's pid is alive
	[ -f "$1/mariadbd.pid" ] && kill -0 "$(cat "$1/mariadbd.pid")" 2>/dev/null
}

mariadb_start() {
	local dir; dir=$(base_dir "${1:-}")
	if running "$dir" && [ -f "$dir/env" ]; then
		log "reusing running instance in $dir"
		cat "$dir/env"; return
	fi
	mariadb_install
	local bin=/usr/sbin/mariadbd; command -v mariadbd >/dev/null && bin=$(command -v mariadbd)
	local installdb; installdb=$(command -v mariadb-install-db || command -v mysql_install_db) \
		|| die "mariadb-install-db not found"

	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	local data="$dir/data" sock="$dir/mariadbd.sock" port
	# mariadbd refuses to run as root; as root run it as the mysql user.
	local user=(); [ "$(id -u)" -eq 0 ] && user=(--user=mysql)

	if [ ! -d "$data/mysql" ]; then
		log "initialising datadir $data"
		rm -rf "$data"; mkdir -p "$data"
		[ "$(id -u)" -eq 0 ] && chown -R mysql:mysql "$dir"
		# --no-defaults: ignore /etc/mysql so the system config can't leak in.
		"$installdb" --no-defaults --datadir="$data" "${user[@]}" \
			--auth-root-authentication-method=socket --skip-test-db >"$dir/install.log" 2>&1 \
			|| { cat "$dir/install.log" >&2; die "mariadb-install-db failed"; }
	fi
	[ "$(id -u)" -eq 0 ] && chown -R mysql:mysql "$dir"

	port=$(pick_port)
	log "starting mariadbd on 127.0.0.1:$port (datadir $data)"
	# setsid+nohup: the server outlives this script (and its caller's job).
	setsid nohup "$bin" --no-defaults --datadir="$data" --socket="$sock" \
		--port="$port" --bind-address=127.0.0.1 --skip-name-resolve \
		--pid-file="$dir/mariadbd.pid" --log-error="$dir/error.log" \
		"${user[@]}" </dev/null >/dev/null 2>&1 &

	local i
	for i in $(seq 1 120); do
		if mariadb-admin --no-defaults --socket="$sock" -uroot ping >/dev/null 2>&1; then break; fi
		[ "$i" -eq 120 ] && { tail -20 "$dir/error.log" >&2 || true; die "mariadbd did not answer within 60 s"; }
		sleep 0.5
	done

	local db=occopus_test usr=occopus pass
	pass=$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
	# Root authenticates through the socket (unix_socket plugin); the test
	# user has a real password so a wrong one can be shown to fail.
	mariadb --no-defaults --socket="$sock" -uroot <<SQL
CREATE DATABASE IF NOT EXISTS \`$db\`;
CREATE OR REPLACE USER '$usr'@'127.0.0.1' IDENTIFIED BY '$pass';
GRANT ALL PRIVILEGES ON \`$db\`.* TO '$usr'@'127.0.0.1';
SQL
	# TCP check with the new credentials, so callers get a usable instance.
	mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$port" -u"$usr" -p"$pass" "$db" -e 'SELECT 1' >/dev/null \
		|| die "cannot log in over TCP as $usr"

	cat >"$dir/env" <<ENV
export OCCOPUS_TEST_MYSQL_ADDR=127.0.0.1:$port
export OCCOPUS_TEST_MYSQL_PORT=$port
export OCCOPUS_TEST_MYSQL_USER=$usr
export OCCOPUS_TEST_MYSQL_PASS=$pass
export OCCOPUS_TEST_MYSQL_DB=$db
export OCCOPUS_TEST_MYSQL_SOCKET=$sock
ENV
	log "mariadb ready on 127.0.0.1:$port; stop with: $0 mariadb-stop ${1:-}"
	cat "$dir/env"
}

mariadb_stop() {
	local dir; dir=$(base_dir "${1:-}")
	if ! running "$dir"; then log "no running instance in $dir"; return; fi
	local pid; pid=$(cat "$dir/mariadbd.pid")
	mariadb-admin --no-defaults --socket="$dir/mariadbd.sock" -uroot shutdown 2>/dev/null || kill "$pid"
	local i
	for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
	rm -f "$dir/env"
	log "stopped mariadbd (pid $pid)"
}

# --- redis ---------------------------------------------------------------

redis_dir() { echo "${1:-${OCCOPUS_SERVICES_DIR:-/tmp/occopus-services}}/redis"; }

redis_install() {
	if command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ]; then return; fi
	log "redis-server missing; installing with apt-get"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >&2
}

redis_running() { # redis_running DIR: the instance's pid is alive
	[ -f "$1/redis.pid" ] && kill -0 "$(cat "$1/redis.pid")" 2>/dev/null
}

# redis_cli DIR ARGS...: redis-cli against the instance in DIR (password
# through the environment, not the command line).
redis_cli() {
	local dir=$1; shift
	REDISCLI_AUTH=$(cat "$dir/password") redis-cli --no-auth-warning -h 127.0.0.1 -p "$(cat "$dir/port")" "$@"
}

redis_start() {
	local dir; dir=$(redis_dir "${1:-}")
	if redis_running "$dir" && [ -f "$dir/env" ]; then
		log "reusing running instance in $dir"
		cat "$dir/env"; return
	fi
	redis_install
	local bin=/usr/bin/redis-server; command -v redis-server >/dev/null && bin=$(command -v redis-server)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	chmod 700 "$dir"

	local port pass
	if [ -n "${REDIS_PORT:-}" ]; then
		port_free "$REDIS_PORT" || die "port $REDIS_PORT is in use"
		port=$REDIS_PORT
	else
		port=$(MARIADB_PORT='' pick_port)
	fi
	pass=$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
	echo "$port" >"$dir/port"
	( umask 077; echo "$pass" >"$dir/password" )
	rm -f "$dir/redis.pid"
	# The password lives in the config file, not in the process list.
	( umask 077; cat >"$dir/redis.conf" <<CONF
bind 127.0.0.1
port $port
protected-mode yes
requirepass $pass
dir $dir
pidfile $dir/redis.pid
logfile $dir/redis.log
daemonize no
save ""
appendonly no
databases 16
CONF
	)
	log "starting redis-server on 127.0.0.1:$port (dir $dir)"
	setsid nohup "$bin" "$dir/redis.conf" </dev/null >/dev/null 2>&1 &

	local i
	for i in $(seq 1 60); do
		if [ "$(redis_cli "$dir" ping 2>/dev/null)" = PONG ]; then break; fi
		[ "$i" -eq 60 ] && { tail -20 "$dir/redis.log" >&2 || true; die "redis-server did not answer within 30 s"; }
		sleep 0.5
	done

	cat >"$dir/env" <<ENV
export OCCOPUS_TEST_REDIS_ADDR=127.0.0.1:$port
export OCCOPUS_TEST_REDIS_PASS=$pass
ENV
	log "redis ready on 127.0.0.1:$port; stop with: $0 redis-stop ${1:-}"
	cat "$dir/env"
}

redis_stop() {
	local dir; dir=$(redis_dir "${1:-}")
	if ! redis_running "$dir"; then log "no running instance in $dir"; return; fi
	local pid; pid=$(cat "$dir/redis.pid")
	redis_cli "$dir" shutdown nosave >/dev/null 2>&1 || kill "$pid"
	local i
	for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
	rm -f "$dir/env"
	log "stopped redis-server (pid $pid)"
}

case "${1:-}" in
mariadb) mariadb_start "${2:-}" ;;
mariadb-stop) mariadb_stop "${2:-}" ;;
mariadb-env) d=$(base_dir "${2:-}"); running "$d" && cat "$d/env" || die "not running" ;;
redis) redis_start "${2:-}" ;;
redis-stop) redis_stop "${2:-}" ;;
redis-env) d=$(redis_dir "${2:-}"); redis_running "$d" && cat "$d/env" || die "not running" ;;
*) sed -n '2,/^set -e/p' "$0" | sed -n 's/^# \{0,1\}//p' >&2; exit 2 ;;
esac
