# nfsrecover — see README.md.
#   make run     build, then start rpc.statd -F -d on a throwaway state directory
#                (with a local rpcbind); make demo-cltrack shows the cltrack applet
#   make test    everything CI runs: oracles (apt), gofmt, vet, race tests, fuzz smoke
#   make bench   side-by-side benchmarks with the real tools
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
TAGS      ?= urfave_cli_no_docs
LDFLAGS   := -s -w -X nfsrecover/pkg/version.Version=$(VERSION)
PREFIX    ?= /usr
DESTDIR   ?=
SBINDIR   ?= $(PREFIX)/sbin
MANDIR    ?= $(PREFIX)/share/man
DATADIR   ?= $(PREFIX)/share/nfsrecover
LINKS     := rpc.statd sm-notify nfsdcltrack nfsdcld
FUZZTIME  ?= 20000x
BIN       := nfsrecover

.PHONY: all build build-small run demo-cltrack install uninstall packages package-test test deps check-fmt vet unit fuzz portable release bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN) .

# Embedded images: no SQLite import/export and no etcd client (the grace
# applet then says so); stays under 6 MiB stripped (tested). The applets
# (flags, config, wiring: run once per process, no hot path) are built
# without inlining, which keeps about 16 KB of room under the limit;
# pkg/ keeps it (without, SM_MON is 20-30% slower).
build-small:
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(TAGS),nosqlite,noetcd' -gcflags 'nfsrecover/applets/...=-l' -ldflags '$(LDFLAGS)' -o $(BIN) .

run: build
	./scripts/run-statd.sh ./$(BIN)

demo-cltrack: build
	./scripts/demo.sh ./$(BIN)

# The binary and its applet links in SBINDIR (links that another package
# owns are reported and left alone: nfs-utils keeps its own until the
# package diverts them), the man page, and the systemd units as examples
# in DATADIR (nfs-utils' units of the same names run the links as they are).
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(SBINDIR)/$(BIN)
	-$(DESTDIR)$(SBINDIR)/$(BIN) --install $(DESTDIR)$(SBINDIR)
	install -D -m 0644 packaging/man/nfsrecover-cltrack.8 $(DESTDIR)$(MANDIR)/man8/nfsrecover-cltrack.8
	install -d $(DESTDIR)$(DATADIR)/systemd
	install -m 0644 packaging/systemd/*.service $(DESTDIR)$(DATADIR)/systemd/
	install -D -m 0644 packaging/completion/nfsrecover.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/nfsrecover
	install -D -m 0644 packaging/completion/_nfsrecover $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_nfsrecover

# Removes what install put there: links only when they are ours.
uninstall:
	@for l in $(LINKS); do f=$(DESTDIR)$(SBINDIR)/$$l; \
	  if [ $$f -ef $(DESTDIR)$(SBINDIR)/$(BIN) ] || cmp -s $$f $(DESTDIR)$(SBINDIR)/$(BIN); then rm -f $$f && echo "removed $$f"; fi; done
	rm -f $(DESTDIR)$(SBINDIR)/$(BIN) $(DESTDIR)$(MANDIR)/man8/nfsrecover-cltrack.8
	rm -rf $(DESTDIR)$(DATADIR)
	rm -f $(DESTDIR)$(PREFIX)/share/bash-completion/completions/nfsrecover $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_nfsrecover

# The oracles (real nfsdcltrack, sqlite3) for the differential tests.
deps:
	./scripts/test-deps.sh

check-fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags nosqlite ./...

# applets/statd runs alone: its flood tests hold SM_MON to the issue's 100 ms
# budget, which a second CPU-heavy test package (etcd, FUSE) would eat into.
unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v '^nfsrecover/applets/statd$$')
	$(GO) test -race -count=1 ./applets/statd
	$(GO) test -count=1 -tags nosqlite ./pkg/legacy/... $$($(GO) list ./applets/... | grep -v '^nfsrecover/applets/grace$$')

# Each fuzz target for FUZZTIME executions (the seed corpora also run in
# "unit"). A count rather than a duration: time-based runs can end with a
# spurious "context deadline exceeded" from the fuzzing engine.
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

# Every platform still builds; FreeBSD vets clean; the native-byte-order
# code (stablerestart, store) passes its tests on big-endian s390x under
# qemu-user.
portable:
	GO=$(GO) TAGS='$(TAGS)' LDFLAGS='$(LDFLAGS)' ./scripts/cross.sh $$(mktemp -d)
	GOOS=freebsd GOARCH=amd64 $(GO) vet ./...
	GOOS=freebsd GOARCH=arm64 $(GO) vet ./...
	./scripts/bigendian.sh

# Release binaries for every platform, with SHA256SUMS, in dist/.
release:
	rm -rf dist
	GO=$(GO) TAGS='$(TAGS)' LDFLAGS='$(LDFLAGS)' ./scripts/cross.sh dist

# The .deb and .rpm (nfpm, pinned) in dist/, version from git.
packages: build
	./scripts/packages.sh ./$(BIN) dist

# Install the .deb here, check the takeover, purge, check the originals
# are back. After the Go tests, which use nfs-utils' programs as oracles.
package-test: build
	./scripts/package-test.sh

test: deps check-fmt vet unit fuzz portable package-test

bench: build
	./bench/cltrack.sh ./$(BIN)
	./bench/statd.sh ./$(BIN)
	./bench/notify.sh ./$(BIN)
	./bench/cld.sh ./$(BIN)
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...

clean:
	rm -rf $(BIN) dist
