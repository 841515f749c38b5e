#!/usr/bin/env bash
# services.sh — start/stop private, throw-away service instances for tests.
#
# Usage:
#   scripts/services.sh mariadb [DIR]       start (or reuse) a private MariaDB
#   scripts/services.sh mariadb-stop [DIR]  stop it
#   scripts/services.sh mariadb-env [DIR]   reprint the env of a running one
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

case "${1:-}" in
mariadb) mariadb_start "${2:-}" ;;
mariadb-stop) mariadb_stop "${2:-}" ;;
mariadb-env) d=$(base_dir "${2:-}"); running "$d" && cat "$d/env" || die "not running" ;;
*) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
