# make demo  — the main job: a demo on the embedded defaults
# make test  — the whole test suite (starts Docker and MariaDB when needed)
GO      ?= /usr/local/go/bin/go
export PATH := /usr/local/go/bin:$(PATH)
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: build demo test fuzz bench clean

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

bench:
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
