# gears: `make` builds redisgears.so and gears-cli, `make run` starts a
# redis-server with it, `make test` installs what the tests need and runs
# them all.
GO      ?= go
PORT    ?= 6379
SO      := redisgears.so
DATA    := .data
SHARED  ?= ../shared
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The default configuration of `make run`, fed to redis-server on stdin.
define REDIS_CONF
bind 127.0.0.1
port $(PORT)
dir $(abspath $(DATA))
save ""
appendonly no
loglevel notice
loadmodule $(abspath $(SO))
endef
export REDIS_CONF

.PHONY: all build run test unit integration conformance deps redis go-deps clean

all: build

build: go-deps
	$(GO) run ./cmd/build-so -o $(SO)
	$(GO) build -o gears-cli ./cmd/gears-cli

run: redis build
	mkdir -p $(DATA)
	printf '%s\n' "$$REDIS_CONF" | redis-server -

test: deps build
	$(GO) test -count=1 -timeout 25m ./...

unit: go-deps
	$(GO) run ./cmd/build-so -tree-only
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /tests)

integration: deps build
	$(GO) test -count=1 -timeout 25m ./tests/...

# Every RedisGears conformance case of a single Redis, of a replica and of
# a real Redis Cluster (see ../shared/conformance).
CONFORMANCE_CASES ?= cases/
CONFORMANCE_TOPOLOGY ?= standalone,replica,cluster
# CONFORMANCE_ARGS adds module arguments, e.g. "IsolationMode shared".
CONFORMANCE_ARGS ?=
conformance: deps build
	cd $(SHARED)/conformance && $(GO) run ./cmd/rgconform -module "$(abspath $(SO))" -module-args "$(CONFORMANCE_ARGS)" -topology $(CONFORMANCE_TOPOLOGY) $(CONFORMANCE_CASES)

deps: redis go-deps

redis:
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "installing redis-server"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server redis-tools >/dev/null; }

go-deps:
	$(GO) mod download

clean:
	rm -rf $(SO) $(DATA) gears-cli
	find pyhome/tree -mindepth 1 ! -name PLACEHOLDER -delete
