# The two commands of the README's Quick start are `make run` and `make test`.
GO ?= go
STATICCHECK_VERSION := v0.8.2

SQLC_VERSION := v1.31.1

.PHONY: run test check build deps generate fuzz bench

## run: the service in development mode; on a throwaway local PostgreSQL unless DATABASE_URL or DIRECT_URL is set
run: deps build
	@export APP_ENV=$${APP_ENV:-development}; \
	if [ -n "$$DATABASE_URL$$DIRECT_URL" ]; then exec bin/app; else exec bin/devdb -- bin/app; fi

## test: every test, with the race detector, against a real PostgreSQL the tests start
test: deps
	@./scripts/ensure-deps pg_auto_failover
	$(GO) test -race -count=1 ./...

## check: formatting, go vet and staticcheck
check:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	"$$($(GO) env GOPATH)/bin/staticcheck" ./...

## generate: regenerate store/*.sql.go from store/queries and store/migrations
generate:
	@command -v sqlc >/dev/null 2>&1 || [ -x "$$($(GO) env GOPATH)/bin/sqlc" ] || \
		{ echo "installing sqlc $(SQLC_VERSION) (cgo; about six minutes)"; CGO_ENABLED=1 $(GO) install github.com/sqlc-dev/sqlc/cmd/sqlc@$(SQLC_VERSION); }
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" sqlc generate

## bench: the full benchmark against raw pgxpool, database/sql and pgbench (about 35 minutes), into docs/
# With two CPUs or more, the server gets CPU 1 and the client CPU 0: runs vary less.
bench: deps build
	CGO_ENABLED=0 $(GO) build -o bin/cycle/ ./bench/cycle/...
	@if [ "$$(nproc)" -ge 2 ]; then pin="taskset -c 0"; cpus="-server-cpus 1"; fi; \
	set -x; $$pin bin/dbbench -out docs -app bin/app -cycle bin/cycle $$cpus

## fuzz: five minutes of fuzzing the config parser and URL handling
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseDB -fuzztime 5m ./config/

# Static binaries: no libc, a pure-Go DNS resolver, and a smaller footprint.
build:
	CGO_ENABLED=0 $(GO) build -o bin/ ./cmd/...

deps:
	@./scripts/ensure-deps hyperfine
