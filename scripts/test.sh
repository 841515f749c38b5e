#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it. It starts what the
# tests need (Docker daemon, a private MariaDB) and builds the test images.
# Under CI=true a service that cannot be started fails the run; elsewhere
# the tests that need it skip with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
ci=${CI:-false}

need() { # need WHAT MESSAGE: fail under CI, warn elsewhere
	if [ "$ci" = true ]; then echo "test.sh: $1 unavailable: $2" >&2; exit 1; fi
	echo "test.sh: warning: $1 unavailable ($2); tests that need it will skip" >&2
}

# Docker: start dockerd when no engine answers.
if ! docker info >/dev/null 2>&1; then
	if command -v dockerd >/dev/null; then
		echo "test.sh: starting dockerd" >&2
		(dockerd >/tmp/occopus-dockerd.log 2>&1 &)
		for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
	fi
	docker info >/dev/null 2>&1 || need docker "no Docker engine answers and dockerd could not be started"
fi
if docker info >/dev/null 2>&1; then
	images/build.sh >&2
fi

# MariaDB for the mysqldbs health check.
if envs=$(scripts/services.sh mariadb 2>/tmp/occopus-mariadb.log); then
	eval "$envs"
else
	cat /tmp/occopus-mariadb.log >&2
	need mariadb "scripts/services.sh mariadb failed"
fi

# A real browser for the dashboard test.
if ! command -v chromium >/dev/null; then
	echo "test.sh: installing chromium (Debian's package)" >&2
	if ! (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/tmp/occopus-chromium.log 2>&1; then
		tail -5 /tmp/occopus-chromium.log >&2
		need chromium "apt-get install chromium failed"
	fi
fi

# Debian's Jinja2 for the template engine's differential test, in the
# interpreter that test runs (tmpl/differential_test.go).
jinja2_python=${JINJA2_PYTHON:-/usr/bin/python3}
if ! "$jinja2_python" -c 'import jinja2' >/dev/null 2>&1; then
	echo "test.sh: installing python3-jinja2 (Debian's package) for $jinja2_python" >&2
	if ! (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-jinja2) >/tmp/occopus-jinja2.log 2>&1; then
		tail -5 /tmp/occopus-jinja2.log >&2
		need python3-jinja2 "apt-get install python3-jinja2 failed"
	fi
fi

# Redis for the redis store's conformance suite.
if envs=$(scripts/services.sh redis 2>/tmp/occopus-redis.log); then
	eval "$envs"
else
	cat /tmp/occopus-redis.log >&2
	need redis "scripts/services.sh redis failed"
fi

# etcd (Debian's etcd-server) for the etcd store and the HA test, which
# run their own members of it on free loopback ports (internal/etcdtest).
if ! command -v etcd >/dev/null && [ ! -x /usr/bin/etcd ]; then
	echo "test.sh: installing etcd-server (Debian's package)" >&2
	if ! (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server) >/tmp/occopus-etcd.log 2>&1; then
		tail -5 /tmp/occopus-etcd.log >&2
		need etcd "apt-get install etcd-server failed"
	fi
fi
# The Debian package starts a system etcd on 2379; the tests never use it.

go vet ./...
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted" >&2; exit 1; fi
go test -race -timeout 20m "$@" ./...
