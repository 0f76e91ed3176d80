# vxnet — make targets. `make test` is what CI runs (.ci/run), as root, on a
# fresh Debian machine: it installs what is missing first.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
# Debian packages the tests and the demo use: command -> package. They are
# installed with services kept stopped (policy-rc.d): docker.io would
# otherwise start the system's Docker, with its bridge and firewall rules,
# and openvswitch-switch the system's OVS; the tests and the benchmark run
# dockerds and OVS daemons of their own.
DEB_TOOLS := etcd:etcd-server etcdctl:etcd-client ip:iproute2 bridge:iproute2 ping:iputils-ping iperf3:iperf3 dig:dnsutils curl:curl ss:iproute2 dnsperf:dnsperf dnsmasq:dnsmasq nft:nftables tcpdump:tcpdump socat:socat dockerd:docker.io busybox:busybox-static podman:podman /usr/lib/cni/portmap:containernetworking-plugins ovs-vswitchd:openvswitch-switch ethtool:ethtool wg:wireguard-tools zip:zip man:man-db
# Packages with concurrency are tested with the race detector.
RACE_PKGS := ./dataplane/... ./agent/... ./gossip/... ./kvs/... ./internal/... ./ipam/... ./dns/... ./driver/... ./hostnet/... ./dhcp/... ./hns/... ./api/... ./plan/... ./tables/... ./hoststate/... ./plugin/...

.PHONY: all build test demo demo-dataplane deps lint unit e2e bench bench-dataplane fuzz windows clean dist

all: build

# The commit `vxnet version` names (the environment may turn Go's own VCS
# stamp off).
COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null)
# The version: the newest v* tag, and the commits since (scripts/dist.sh).
VERSION := $(shell scripts/dist.sh --version 2>/dev/null || echo dev)

build:
	$(GO) build -ldflags "-X main.commit=$(COMMIT) -X main.version=$(VERSION)" -o bin/vxnet ./cmd/vxnet
	$(GO) build -o bin/vxnet-cni ./cmd/vxnet-cni

deps:
	@missing=""; for t in $(DEB_TOOLS); do cmd=$${t%%:*}; pkg=$${t##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing:$$missing"; \
	    policy=""; if [ ! -e /usr/sbin/policy-rc.d ]; then policy=1; \
	      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; fi; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; rc=$$?; \
	    if [ -n "$$policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; [ $$rc = 0 ]; \
	  else echo "missing (run as root to install):$$missing"; fi; fi
	$(GO) mod download
	@# cnitool (libcni's runner) drives the CNI plugin's tests, as runtimes do.
	@command -v cnitool >/dev/null 2>&1 || [ -x "$$($(GO) env GOPATH)/bin/cnitool" ] || \
	  $(GO) install github.com/containernetworking/cni/cnitool@v1.3.0
	@# crictl drives containerd's CRI plugin as a kubelet does.
	@command -v crictl >/dev/null 2>&1 || [ -x "$$($(GO) env GOPATH)/bin/crictl" ] || \
	  $(GO) install sigs.k8s.io/cri-tools/cmd/crictl@v1.34.0
	@# wireguard-go, the userspace WireGuard the data-plane benchmark measures
	@# vxnet's encrypted networks against: the version go.mod names.
	@[ -x "$$($(GO) env GOPATH)/bin/wireguard" ] || \
	  $(GO) install golang.zx2c4.com/wireguard@$$($(GO) list -m -f '{{.Version}}' golang.zx2c4.com/wireguard)
	@# nfpm builds the Debian package (make dist).
	@command -v nfpm >/dev/null 2>&1 || [ -x "$$($(GO) env GOPATH)/bin/nfpm" ] || \
	  $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

windows:
	GOOS=windows $(GO) build ./...
	GOOS=windows $(GO) vet ./...
	GOOS=windows GOARCH=arm64 $(GO) build ./...
	GOOS=windows GOARCH=arm64 $(GO) vet ./...
	@echo "the Windows-only tests of hns compile (they run on Windows only):"
	GOOS=windows $(GO) test -c -o /dev/null ./hns

unit:
	$(GO) test -race -count=1 $(RACE_PKGS)
	@echo "allocation tests again, without the race detector (they skip under it)"
	$(GO) test -count=1 -run 'ZeroAllocs|zeroAllocs|noAllocations|NoAllocations' ./dataplane/... ./dns/...
	$(GO) test -count=1 $$($(GO) list ./... | grep -v -e /dataplane -e /agent -e /e2e -e /gossip -e /kvs -e /internal -e /ipam -e /dns -e /driver -e /hostnet -e /dhcp -e /hns -e /api -e /plan -e /tables -e /hoststate -e /plugin)
	@echo "kvs: large in-process clusters again, without the race detector (too slow under it)"
	$(GO) test -count=1 -run 'TestCluster' ./kvs

# Release artifacts in dist/: a static tarball and a Debian package per
# Linux architecture (amd64, arm64), the Windows zip (scripts/dist.sh).
dist: deps
	GO=$(GO) scripts/dist.sh

# End-to-end tests need root; without it they skip and say so.
e2e: build
	$(GO) test -count=1 -timeout 20m ./e2e/...

test: deps lint windows unit e2e

demo: deps build
	bin/vxnet lab demo --binary bin/vxnet

# The data plane alone, from static files: two hosts, ping and TCP.
demo-dataplane: deps build
	scripts/demo.sh bin/vxnet

bench:
	$(GO) test -run '^$$' -bench . -skip PortMemory -benchmem ./dataplane/... ./ipam
	@echo "RSS per endpoint (root: real TUN devices), each size in a process of its own"
	for n in 1 100 500; do $(GO) test -run '^$$' -bench "PortMemory/$$n\$$" -benchtime 20x ./dataplane || exit 1; done
	$(GO) test -run '^$$' -bench Gossip -benchtime 1x -timeout 30m ./bench
	$(GO) test -run '^$$' -bench IPAMFirstAddress -benchtime 3x -timeout 10m ./bench
	$(GO) test -run '^$$' -bench . -benchmem ./dns
	$(GO) test -run '^$$' -bench DNS -benchtime 1x -timeout 10m ./bench

# vxnet's data plane against the kernel's VXLAN and the bare underlay, in
# namespaces (root; about 7 minutes): Markdown on stdout, JSON and a chart.
bench-dataplane: deps build
	bin/vxnet bench dataplane --chart bench-dataplane.svg --json bench-dataplane.json

# Each native fuzzer for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecap -fuzztime $(FUZZTIME) ./dataplane/vxlan
	$(GO) test -run '^$$' -fuzz FuzzOutside -fuzztime $(FUZZTIME) ./dataplane
	$(GO) test -run '^$$' -fuzz FuzzCoalesce -fuzztime $(FUZZTIME) ./dataplane
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./dataplane/static
	$(GO) test -run '^$$' -fuzz FuzzNames_acceptedEverywhere -fuzztime $(FUZZTIME) ./agent
	$(GO) test -run '^$$' -fuzz FuzzNetwork -fuzztime $(FUZZTIME) ./internal/names
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./kvs
	$(GO) test -run '^$$' -fuzz FuzzDecodeState -fuzztime $(FUZZTIME) ./hoststate
	$(GO) test -run '^$$' -fuzz FuzzDecodeEndpoint -fuzztime $(FUZZTIME) ./tables
	$(GO) test -run '^$$' -fuzz FuzzNewPool -fuzztime $(FUZZTIME) ./ipam
	$(GO) test -run '^$$' -fuzz FuzzParsePrefix -fuzztime $(FUZZTIME) ./ipam
	$(GO) test -run '^$$' -fuzz FuzzParseOptions -fuzztime $(FUZZTIME) ./ipam
	$(GO) test -run '^$$' -fuzz FuzzParseAuxAddress -fuzztime $(FUZZTIME) ./ipam
	$(GO) test -run '^$$' -fuzz FuzzGlobal_rows -fuzztime $(FUZZTIME) ./ipam
	$(GO) test -run '^$$' -fuzz FuzzHandler -fuzztime $(FUZZTIME) ./dns
	$(GO) test -run '^$$' -fuzz FuzzSplitVirtio -fuzztime $(FUZZTIME) ./dataplane
	$(GO) test -run '^$$' -fuzz FuzzSum -fuzztime $(FUZZTIME) ./dataplane
	$(GO) test -run '^$$' -fuzz FuzzParseDHCPReply -fuzztime $(FUZZTIME) ./dhcp
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./hns
	$(GO) test -run '^$$' -fuzz FuzzBuild -fuzztime $(FUZZTIME) ./hns

clean:
	rm -rf bin

.PHONY: docker-plugin
# The managed Docker plugin's directory: docker plugin create vxnet bin/docker-plugin
docker-plugin:
	CGO_ENABLED=0 $(GO) build -o bin/vxnet-static ./cmd/vxnet
	scripts/docker-plugin.sh bin/vxnet-static bin/docker-plugin
