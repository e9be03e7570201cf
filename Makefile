# Thorstream — see README.md. Every target works on a fresh clone.
SHELL := /bin/bash
GO ?= go
STATICCHECK_VERSION ?= v0.7.0
FUZZTIME ?= 10s
BIN := bin

# The packages whose goroutines share state: run with the race detector.
RACE_PKGS := ./cluster/... ./groups/... ./reactor/... ./log/... ./client/...

.PHONY: all build run test test-deps test-go test-race test-compat crash abuse chaos bench fuzz lint clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## run: start a broker with data under ./data: the binary protocol on 0.0.0.0:9092 and the Kafka
## protocol on 0.0.0.0:9093 (override with THORSTREAM_* variables)
run: export THORSTREAM_KAFKA_ADDR ?= 0.0.0.0:9093
run:
	$(GO) run ./cmd/thorstream

## test: install what the tests need, then run every test (unit, race, end to end, crash, Kafka
## client compatibility with kafka-python and kcat)
test: test-deps test-go test-race test-compat

# Debian packages the client-compatibility tests use; installed only when missing.
TEST_DEB_PACKAGES := kcat python3-kafka python3-pytest python3-snappy python3-lz4 python3-zstandard
test-deps:
	@missing=""; for p in $(TEST_DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

test-go:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

# -short: storage tests that sweep sizes and seeds run a smaller sweep under the race detector,
# and the slowest in-process cluster fault runs are left out there (test-go runs them all whole).
test-race:
	$(GO) test -count=1 -race -short -timeout 20m $(RACE_PKGS)

# Real Kafka clients (Debian's kafka-python and kcat/librdkafka) against the broker binary.
test-compat: build
	THORSTREAM_BIN=$(CURDIR)/$(BIN)/thorstream /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/kafka_client_compat

## crash: the kill -9 crash test alone, with more rounds
crash:
	THORSTREAM_CRASH_ROUNDS=10 $(GO) test -count=1 -run TestCrash -v -timeout 30m ./tests/...

## abuse: the hostile-client tests in their long versions (more connections, bigger bombs, longer stalls)
abuse:
	THORSTREAM_ABUSE_LONG=1 $(GO) test -count=1 -run TestAbuse -v -timeout 60m ./tests/...

## chaos: randomized kill -9 and network-cut rounds against a three-node replicated cluster, under
## load (THORSTREAM_CHAOS_ROUNDS, default 20; THORSTREAM_CHAOS_SEED replays a run); prints a summary
chaos:
	THORSTREAM_CHAOS=1 $(GO) test -count=1 -run TestChaos -v -timeout 60m ./tests/...

## bench: every benchmark, with allocations
bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

## fuzz: run every fuzz target for FUZZTIME (default 10s) each
fuzz:
	@set -e; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for target in $$(grep -h '^func Fuzz' $$dir/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
			echo "== $$dir $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$dir; \
		done; \
	done

## lint: gofmt, go vet, staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

clean:
	rm -rf $(BIN)
