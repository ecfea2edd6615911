# cordon — see README.md. Every target works on a fresh Debian machine with Go.
SHELL      := /bin/bash
GO         ?= go
BIN        := bin
export GOFLAGS ?= -buildvcs=false
TEST_FLAGS ?= -race -shuffle=on -timeout 30m
PKGS       := ./...

BTCD_VERSION := v0.26.2

.PHONY: all build btcd dev-deps run test test-deps soak bench fuzz lint vet clean proto

all: build

## build: compile bin/cordon and the signer plugins (bin/cordon-devkey, bin/cordon-pkcs11, bin/cordon-threshold)
build:
	$(GO) build -o $(BIN)/cordon ./cmd/cordon
	$(GO) build -o $(BIN)/cordon-devkey ./plugins/devkey
	$(GO) build -o $(BIN)/cordon-pkcs11 ./plugins/pkcs11
	$(GO) build -o $(BIN)/cordon-threshold ./plugins/threshold

## btcd: install btcd $(BTCD_VERSION) into bin/ (the dev and test Bitcoin node)
btcd: $(BIN)/btcd
$(BIN)/btcd:
	GOBIN=$(CURDIR)/$(BIN) GOFLAGS= $(GO) install github.com/btcsuite/btcd@$(BTCD_VERSION)

## dev-deps: install clickhouse-server for cordon dev when possible (never fails)
dev-deps:
	@./scripts/dev-deps.sh

## run: build and start the whole system on embedded defaults (cordon dev)
run: build btcd dev-deps
	./$(BIN)/cordon dev --partners 2 $(ARGS)

## test-deps: install what the tests need (kcat, clickhouse-server and clickhouse-client from Debian's packages)
test-deps:
	./scripts/test-deps.sh

## test: install test dependencies, lint (vet, golangci-lint with the layout's depguard rules), then run every test with the race detector
test: test-deps btcd lint
	CORDON_TEST_REQUIRE_TOOLS=1 $(GO) test $(TEST_FLAGS) $(PKGS)

## soak: the long exactly-once runs of the crediting service (SOAK_RESTARTS kills and restarts on kfake) and engine (SOAK_RUNS histories)
SOAK_RESTARTS ?= 3000
SOAK_UPDATES  ?= 3000
SOAK_RUNS     ?= 5000
soak: test-deps
	CORDON_SOAK_RUNS=$(SOAK_RUNS) $(GO) test ./credit/ -run '^TestEngineProperty$$' -count=1 -v -timeout 60m
	CORDON_SOAK_RESTARTS=$(SOAK_RESTARTS) CORDON_SOAK_UPDATES=$(SOAK_UPDATES) $(GO) test ./credit/ -run '^TestServiceExactlyOnce$$' -count=1 -v -timeout 120m

## bench: run the benchmarks recorded in BENCHMARKS.md
bench:
	$(GO) test ./watchers/eth/ -run '^$$' -bench 'Mainnet' -benchmem -cpu 1
	$(GO) test ./watchers/eth/ -run '^$$' -bench 'BenchmarkHeadLatency' -benchtime 1x
	CORDON_BENCH_BLOCKS=10000 $(GO) test ./watchers/eth/ -run '^$$' -bench 'BenchmarkBackfill' -benchtime 1x -timeout 60m
	$(GO) test ./watchers/btc/ -run '^$$' -bench 'NormalizeMainnet|WireDecode' -benchmem -cpu 1
	$(GO) test ./watchers/btc/ -run '^$$' -bench 'PublishMainnet' -benchtime 30x
	GOGC=400 $(GO) test ./watchers/btc/ -run '^$$' -bench 'BenchmarkBackfill' -benchtime 1x -timeout 60m
	$(GO) test ./ingest/clickhouse/ -run '^$$' -bench 'BenchmarkLoadTransfers' -benchtime 1x -timeout 60m
	$(GO) test ./forensics/trace/ -run '^$$' -bench 'BenchmarkTrace' -benchtime 1x -timeout 60m
	$(GO) test ./intel/ -run '^$$' -bench 'BenchmarkIndex|BenchmarkScreenAPI|BenchmarkImportSTIX' -benchtime 1x -timeout 60m
	$(GO) test ./registry/ -run '^$$' -bench 'BenchmarkRegistry' -benchtime 1x -timeout 60m
	$(GO) test ./credit/ -run '^$$' -bench 'BenchmarkCreditLatency|BenchmarkCreditThroughput' -benchtime 1x -timeout 60m
	$(GO) test ./signer/intent/ -run '^$$' -bench 'ApprovalVerify' -benchmem -cpu 1
	$(GO) test ./signer/policy/ -run '^$$' -bench 'CheckQuorum' -benchmem -cpu 1
	$(GO) test ./integration/gatebench/ -run '^$$' -bench 'BenchmarkGateAssess' -benchmem -timeout 60m
	GOGC=400 $(GO) test ./integration/gatebench/ -run '^$$' -bench 'BenchmarkGateAPI' -benchtime 1x -timeout 60m
	$(GO) test ./signer/pluginhost/ -run '^$$' -bench 'BenchmarkPKCS11' -benchtime 3000x
	$(GO) test ./integration/detectbench/ -run '^$$' -bench 'BenchmarkDetectLatency|BenchmarkDetectThroughput' -benchtime 1x -timeout 60m

## fuzz: run every fuzz target (found with go test -list) for FUZZTIME (default 20s)
FUZZTIME ?= 20s
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## vet: go vet
vet:
	$(GO) vet ./...

## lint: go vet, then golangci-lint $(GOLANGCI_VERSION) with .golangci.yml (installed into bin/ on first use, then cached)
GOLANGCI_VERSION := v2.15.0
lint: vet $(BIN)/golangci-lint
	./$(BIN)/golangci-lint run ./...
$(BIN)/golangci-lint:
	GOBIN=$(CURDIR)/$(BIN) GOFLAGS= $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)

clean:
	rm -rf $(BIN) .cordon

## proto: regenerate plugins/sdk/proto's Go code (protoc from Debian's protobuf-compiler; the generators installed into bin/)
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1
proto: $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc
	protoc --plugin=protoc-gen-go=$(BIN)/protoc-gen-go --plugin=protoc-gen-go-grpc=$(BIN)/protoc-gen-go-grpc \
	  --go_out=. --go_opt=paths=source_relative \
	  --go-grpc_out=. --go-grpc_opt=paths=source_relative \
	  plugins/sdk/proto/signer.proto
$(BIN)/protoc-gen-go:
	GOBIN=$(CURDIR)/$(BIN) GOFLAGS= $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(BIN)/protoc-gen-go-grpc:
	GOBIN=$(CURDIR)/$(BIN) GOFLAGS= $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
