# The two commands of the README's Quick start are `make run` and `make test`.
GO ?= go
STATICCHECK_VERSION := v0.8.2

SQLC_VERSION := v1.31.1

.PHONY: run test test-root check build deps deps-all bench-deps generate fuzz bench

## run: the service in development mode; on a throwaway local PostgreSQL unless DATABASE_URL or DIRECT_URL is set
run: deps build
	@export APP_ENV=$${APP_ENV:-development}; \
	if [ -n "$$DATABASE_URL$$DIRECT_URL" ]; then exec bin/app; else exec bin/devdb -- bin/app; fi

## test: every test of the root module and of the nested modules (scripts/modules), with the race
## detector, against real servers the tests start: PostgreSQL, PgBouncer, a pg_auto_failover cluster
test: deps-all
	ROTATION_TEST_DURATION=60s $(GO) test -race -count=1 ./...
	@for dir in $$(./scripts/modules); do echo "== $$dir"; (cd $$dir && $(GO) test -race -count=1 ./...) || exit 1; done

## test-root: the root module's tests alone: all a user of the library runs; needs only Go and PostgreSQL
test-root: deps
	$(GO) test -race -count=1 ./...

## check: formatting, go vet and staticcheck
check:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt:"; echo "$$unformatted"; exit 1; fi
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@for dir in . $$(./scripts/modules); do echo "== vet and staticcheck $$dir"; \
		(cd $$dir && $(GO) vet ./... && "$$($(GO) env GOPATH)/bin/staticcheck" ./...) || exit 1; done

## generate: regenerate store/*.sql.go from store/queries and store/migrations
generate:
	@command -v sqlc >/dev/null 2>&1 || [ -x "$$($(GO) env GOPATH)/bin/sqlc" ] || \
		{ echo "installing sqlc $(SQLC_VERSION) (cgo; about six minutes)"; CGO_ENABLED=1 $(GO) install github.com/sqlc-dev/sqlc/cmd/sqlc@$(SQLC_VERSION); }
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" sqlc generate

## bench: the full benchmark against raw pgxpool, database/sql and pgbench (25-80 minutes, by how noisy the machine is), into docs/
# The harness is the nested module bench/ (its own go.mod). With two CPUs or
# more, the server gets CPU 1 and the client CPU 0: runs vary less.
# BENCH_FLAGS shrink a run (bin/dbbench -h); BENCH_OUT sends it elsewhere.
BENCH_OUT ?= docs
bench: bench-deps build
	cd bench && CGO_ENABLED=0 $(GO) build -o ../bin/ ./cmd/dbbench && CGO_ENABLED=0 $(GO) build -o ../bin/cycle/ ./cycle/...
	@if [ "$$(nproc)" -ge 2 ]; then pin="taskset -c 0"; cpus="-server-cpus 1"; fi; \
	set -x; $$pin bin/dbbench -out $(BENCH_OUT) -root . -app bin/app -cycle bin/cycle $$cpus $(BENCH_FLAGS)

## fuzz: five minutes of the differential password fuzzer, one of the config parser
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzPasswordNeverShown -fuzztime 5m ./dbmodule/
	$(GO) test -run '^$$' -fuzz FuzzParseDB -fuzztime 1m ./config/

# Static binaries: no libc, a pure-Go DNS resolver, and a smaller footprint.
build:
	CGO_ENABLED=0 $(GO) build -o bin/ ./cmd/...

# deps: what running and the root module's tests need (PostgreSQL); deps-all: what every test needs.
deps:
	@./scripts/ensure-deps
deps-all:
	@./scripts/ensure-deps pgbouncer hyperfine pg_auto_failover

# Only the benchmarks time whole processes with hyperfine.
bench-deps:
	@./scripts/ensure-deps hyperfine
