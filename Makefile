# make demo  — the main job: a demo on the embedded defaults
# make test  — the whole test suite (starts Docker and MariaDB when needed)
GO      ?= /usr/local/go/bin/go
export PATH := /usr/local/go/bin:$(PATH)
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: build demo test fuzz bench bench-all clean chaos

build:
	$(GO) build -ldflags "-X main.Version=$(VERSION)" -o bin/occopus ./cmd/occopus

demo: build
	scripts/demo.sh

test:
	scripts/test.sh

# Long runs, on purpose only.
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzLoad -fuzztime=5m ./descr
	$(GO) test -run='^$$' -fuzz=FuzzRender -fuzztime=5m ./tmpl
	$(GO) test -run='^$$' -fuzz=FuzzCreate -fuzztime=5m ./rest
	$(GO) test -run='^$$' -fuzz=FuzzScale -fuzztime=5m ./rest
	$(GO) test -run='^$$' -fuzz=FuzzTargets -fuzztime=5m ./engine

# make bench — the issue-17 figures, BENCH_COUNT runs each (default 5),
# as one table (min/median/max, targets); raw output in bin/bench.txt.
# Needs Docker for DockerReady (skipped without). About 25 min on 2 cores.
BENCH_COUNT ?= 5
bench:
	@mkdir -p bin
	@uptime | tee bin/bench.txt
	$(GO) test ./bench -run='^$$' -bench='DockerReady|Pass10k' -benchtime=1x -count=$(BENCH_COUNT) -timeout=120m | tee -a bin/bench.txt
	$(GO) test ./cloudtest -run='^$$' -bench='Build200$$' -benchtime=1x -count=$(BENCH_COUNT) -timeout=60m | tee -a bin/bench.txt
	$(GO) test ./rest -run='^$$' -bench='GetInfra$$' -benchtime=3s -count=$(BENCH_COUNT) -timeout=60m | tee -a bin/bench.txt
	@uptime | tee -a bin/bench.txt
	$(GO) run ./internal/benchtab < bin/bench.txt

# Every benchmark of the repository, once.
bench-all:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

# The dashboard's screenshots (README) from real local infrastructures in
# headless Chromium, and its load time with 100 infrastructures (logged).
.PHONY: screenshots
screenshots:
	mkdir -p docs/screenshots
	OCCOPUS_SCREENSHOTS=$(CURDIR)/docs/screenshots OCCOPUS_DASH_TIMING=1 $(GO) test ./rest -count=1 -v \
		-run '^(TestScreenshots|TestDashboardLoadTiming)$$' 2>&1 | grep -E '^(---|=== RUN|ok|FAIL|PASS)|round|screenshots_test'

clean:
	rm -rf bin

# The template engine against Python's Jinja2, long and on purpose
# (JINJA2_CASES generated templates from JINJA2_SEED; needs python3-jinja2).
.PHONY: difftest
difftest:
	JINJA2_CASES=$${JINJA2_CASES:-1000000} JINJA2_SEED=$${JINJA2_SEED:-1} $(GO) test ./tmpl -count=1 -run TestJinja2Differential -v -timeout 0

# The reliability suite (issue 11), long and on purpose: kill -9 and SIGINT
# of the CLI at random instants of builds, scale-ups and destroys, on Docker
# and on the EC2 fake with 30 % throttling; prints the figures.
# CHAOS_SEED=N repeats a run; CHAOS_KILLS, CHAOS_SIGINTS, CHAOS_BACKENDS.
chaos:
	images/build.sh >&2
	$(GO) vet -tags chaos ./chaos
	$(GO) test -tags chaos ./chaos -count=1 -run TestChaos -v -timeout 0
# HA: 1, 2 and 3 replicas over 300 local infrastructures on a three-member
# etcd: full maintenance round and failover after kill -9 (BENCHMARKS.md).
.PHONY: bench-ha
bench-ha:
	OCCOPUS_HA_BENCH=1 $(GO) test ./cmd/occopus -count=1 -run TestHABench -v -timeout 60m
