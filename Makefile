# onramp: `make demo` runs the mesh demo, `make test` runs the tests.
SHELL := /bin/bash
GO ?= go
BIN := bin
APT_PACKAGES := protobuf-compiler bind9-dnsutils dnsperf iproute2 nftables libc-bin debootstrap systemd-container zstd dnsmasq-base
VERSION ?= 0.1.0
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null)
ARCH ?= $(shell $(GO) env GOARCH)
export GOFLAGS := -buildvcs=false
# The agent is built static (no cgo: no libc dependency, runs on any glibc or musl distribution with
# systemd), without local paths, and stripped.
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
STATIC_BUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)"
# The architectures `make deb rpm` packages, and where they go.
PKG_ARCHES ?= amd64 arm64
DIST ?= dist

.PHONY: all build test bench proto demo deps clean deb rpm docs lint-packages

all: build

# deps installs what the targets need from Debian's packages (apt mirror as configured on this machine).
# systemd-container (for testbed/nspawn) brings libnss-mymachines, which adds itself to the hosts: line of
# /etc/nsswitch.conf; the test machines are not registered, so deps removes it and keeps that line as it was.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 $$missing >/dev/null; \
	fi
	@if dpkg -s libnss-mymachines >/dev/null 2>&1; then \
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq -o DPkg::Lock::Timeout=600 libnss-mymachines >/dev/null; \
	fi; \
	if grep -qE '^hosts:.*mymachines' /etc/nsswitch.conf; then \
		sed -i -E '/^hosts:/s/[[:space:]]+mymachines([[:space:]]+\[[^]]*\])?//' /etc/nsswitch.conf; \
	fi

build:
	$(STATIC_BUILD) -o $(BIN)/onramp ./agent/cmd/onramp
	$(GO) build -o $(BIN)/onramp-testbed ./testbed/cmd/onramp-testbed

test: deps build
	@unformatted=$$(gofmt -l $$(find . -name '*.go' -not -path './testbed/bench/out/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt -w these files:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

# bench compares onramp's DNS proxy with unbound, dnsmasq, CoreDNS and a UDP echo ceiling under dnsperf
# (testbed/bench/README.md); BENCH_SECONDS=3 for a quick run.
bench: deps
	bash testbed/bench/bench.sh

# demo: the testbed control plane and a namespace VM running the agent resolve the seed scenarios (needs root).
demo: deps build
	$(BIN)/onramp-testbed demo

proto: deps
	PATH="$$(dirname $$($(GO) tool -n protoc-gen-go)):$$PATH" protoc --go_out=. --go_opt=module=github.com/onramp-mesh/onramp agent/xds/ndspb/nds.proto

# docs: the man pages and the bash/zsh/fish completions, generated from the command tree, into $(BIN)/docs
# (man/man1/onramp*.1.gz, completions/bash/onramp, completions/zsh/_onramp, completions/fish/onramp.fish).
docs: build
	rm -rf $(BIN)/docs
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || date +%s) $(BIN)/onramp gen-docs --dir $(BIN)/docs --gzip

# deb, rpm: the packages for each of PKG_ARCHES, into dist/ (nfpm pinned in go.mod; packaging/nfpm.yaml).
deb rpm: docs
	mkdir -p $(DIST)
	@set -e; for a in $(PKG_ARCHES); do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$a $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/pkg/onramp ./agent/cmd/onramp; \
		VERSION=$(VERSION) ARCH=$$a $(GO) tool nfpm package --config packaging/nfpm.yaml --packager $@ --target $(DIST)/; \
	done

# lint-packages: lintian on the .debs (0 errors, 0 warnings; each override has its reason in
# packaging/lintian-overrides). rpmlint runs inside an nspawn machine in testbed/packaging (it unpacks into /).
lint-packages: deb
	lintian --fail-on error --info $(DIST)/onramp_$(VERSION)-1_*.deb

clean:
	rm -rf $(BIN) dist
