GO ?= go
BIN := bin/reconcile
# The lab (make demo, lab-up, lab-down) is a binary of its own: bin/reconcile does not link it.
LAB_BIN := bin/reconcile-lab
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build test lint bench
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/reconcile
	$(GO) build -ldflags "$(LDFLAGS)" -o $(LAB_BIN) ./cmd/reconcile-lab

# The lab's binaries (etcd, kube-apiserver, Karmada) are built from source first (cached by
# version); tests that need them fail, not skip, when they are missing.
test: lint lab-bin
	RECONCILE_LAB_REQUIRED=1 $(GO) test -count=1 -timeout 45m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

include Makefile.lab
