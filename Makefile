# walship — build, test, install.
#   make                 build ./walship
#   make check           unit tests (C, TAP) + integration tests (prove, real PostgreSQL, S3 servers)
#   make check SANITIZE=1  the same with ASan + UBSan (objects in build/san/)
#   make demo            point-in-time recovery of a scratch cluster (a DROP TABLE undone), end to end
#   make bench           benchmarks against the floor and the peers (writes docs/benchmarks.md)
#   make install         PREFIX=/usr/local DESTDIR=

VERSION    := 0.1.0
# the commit walship --version reports; "unknown" when built outside git (a release tarball)
GIT_COMMIT := $(or $(shell git describe --always --dirty 2>/dev/null),unknown)
PREFIX     ?= /usr/local
DESTDIR    ?=
# systemd units: systemd reads /usr/local/lib/systemd/system and /usr/lib/systemd/system
UNITDIR    ?= $(PREFIX)/lib/systemd/system
CC         ?= cc
PKGS       := libpq liblz4 libcurl openssl libuv
SANITIZE   ?= 0

ifeq ($(SANITIZE),1)
BUILD      := build/san
SANFLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
OPT        := -O1 -g
else
BUILD      := build
SANFLAGS   :=
OPT        := -O2 -g
endif

PKG_CONFIG ?= pkg-config
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
# The Debian package that provides each pkg-config module, for the message below.
DEB_libpq   := libpq-dev
DEB_liblz4  := liblz4-dev
DEB_libcurl := libcurl4-openssl-dev
DEB_openssl := libssl-dev
DEB_libuv   := libuv1-dev
MISSING    := $(strip $(foreach p,$(PKGS),$(if $(shell $(PKG_CONFIG) --exists $(p) 2>/dev/null && echo y),,$(p))))
# make check / demo / bench run scripts/deps.sh first; the build itself then runs in a sub-make,
# so that pkg-config is asked again after deps.sh has installed the -dev packages.
DEPS       ?= scripts/deps.sh
DEMO       ?= scripts/demo.sh
CFLAGS     ?= $(OPT)
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-format-truncation \
              -I. $(PKG_CFLAGS) -DWS_VERSION='"$(VERSION)"' -DWS_GIT_COMMIT='"$(GIT_COMMIT)"' $(SANFLAGS) $(CFLAGS) -MMD -MP
ALL_LDFLAGS := $(SANFLAGS) -Wl,--as-needed $(LDFLAGS)
LIBS       := $(PKG_LIBS) -lpthread

# Every module under walship/, basebackup/ and restore/ is compiled; main.c only into the binary.
LIB_SRCS   := $(filter-out walship/main.c,$(wildcard walship/*.c walship/*/*.c basebackup/*.c restore/*.c))
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ   := $(BUILD)/obj/walship/main.o
BIN        := $(BUILD)/walship
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TAP_LIB    := $(BUILD)/tests/tap.o

.PHONY: all check check-unit check-integration deps demo bench install uninstall clean format lint \
        pkgcheck

all: walship

.PHONY: walship

# The binary is build/walship (build/san/walship with SANITIZE=1): walship/ is the source.
walship: $(BIN)

$(BIN): $(LIB_OBJS) $(MAIN_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# Every compile waits on this: with a library's headers missing, say which packages to install
# rather than fail in the compiler on the first #include.
pkgcheck:
ifeq ($(shell command -v $(PKG_CONFIG) 2>/dev/null),)
	@echo "walship: cannot build, $(PKG_CONFIG) is not installed: apt-get install pkg-config (or run 'make deps')" >&2
	@exit 1
endif
ifneq ($(MISSING),)
	@echo "walship: cannot build, missing development files for: $(MISSING)" >&2
	@echo "  install them with: apt-get install $(foreach p,$(MISSING),$(DEB_$(p)))" >&2
	@echo "  or run 'make deps' (scripts/deps.sh installs every build and test dependency)" >&2
	@exit 1
endif

$(BUILD)/obj/%.o: %.c | pkgcheck
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/tap.o: tests/unit/tap.c | pkgcheck
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIB_OBJS) $(TAP_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB_OBJS) $(TAP_LIB) $(LIBS)

deps:
	@$(DEPS)

check: deps
	$(MAKE) --no-print-directory SANITIZE=$(SANITIZE) $(BIN) $(UNIT_BINS)
	WALSHIP_BIN=$(CURDIR)/$(BIN) WALSHIP_UNIT_DIR=$(CURDIR)/$(BUILD)/tests SANITIZE=$(SANITIZE) \
	  prove -v --timer tests/unit.t tests/t/

demo: deps
	$(MAKE) --no-print-directory SANITIZE=$(SANITIZE) $(BIN)
	WALSHIP_BIN=$(CURDIR)/$(BIN) $(DEMO)

bench: deps
	$(MAKE) --no-print-directory SANITIZE=$(SANITIZE) $(BIN)
	WALSHIP_BIN=$(CURDIR)/$(BIN) bench/run.sh

install: walship
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/doc/walship
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/walship
	install -m 0644 docs/walship.1 $(DESTDIR)$(PREFIX)/share/man/man1/walship.1
	install -m 0644 conf/walship.conf.sample $(DESTDIR)$(PREFIX)/share/doc/walship/walship.conf.sample
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/share/doc/walship/examples \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	sed 's|/usr/local/bin/walship|$(PREFIX)/bin/walship|g' contrib/walship-basebackup.service \
	  > $(DESTDIR)$(UNITDIR)/walship-basebackup.service
	install -m 0644 contrib/walship-basebackup.timer $(DESTDIR)$(UNITDIR)/walship-basebackup.timer
	sed 's|^PATH=/usr/local/bin:|PATH=$(PREFIX)/bin:|' contrib/walship-basebackup.cron \
	  > $(DESTDIR)$(PREFIX)/share/doc/walship/examples/walship-basebackup.cron
	chmod 0644 $(DESTDIR)$(UNITDIR)/walship-basebackup.service \
	  $(DESTDIR)$(PREFIX)/share/doc/walship/examples/walship-basebackup.cron
	install -m 0644 contrib/walship.bash-completion $(DESTDIR)$(PREFIX)/share/bash-completion/completions/walship

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/walship $(DESTDIR)$(PREFIX)/share/man/man1/walship.1
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/walship
	rm -f $(DESTDIR)$(UNITDIR)/walship-basebackup.service $(DESTDIR)$(UNITDIR)/walship-basebackup.timer
	rm -f $(DESTDIR)$(PREFIX)/share/bash-completion/completions/walship

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

lint:
	# no include cycle, a core that includes only the core, no call cycle between units (issue 12)
	scripts/include-graph.sh $(if $(wildcard $(BUILD)/obj),--objects $(BUILD)/obj)
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr -I. \
	  $$(git ls-files 'walship/*.c' 'basebackup/*.c' 'restore/*.c')

clean:
	rm -rf build

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJ:.o=.d)

# version.o is rebuilt when the commit changes (the other objects do not use WS_GIT_COMMIT)
$(BUILD)/obj/walship/version.o: $(BUILD)/git-commit
$(BUILD)/git-commit: FORCE
	@mkdir -p $(dir $@)
	@echo '$(GIT_COMMIT)' | cmp -s - $@ || echo '$(GIT_COMMIT)' > $@
.PHONY: FORCE
FORCE:

# make deb: build/walship_<version>_<arch>.deb (scripts/mkdeb.sh; dpkg-deb, no debhelper)
.PHONY: deb
deb: walship
	scripts/mkdeb.sh $(BIN) $(VERSION) $(BUILD)

# ---- the archive module (issue 17): archive_library = 'walship', PostgreSQL 15+ (PGXS) ----
#   make module           build/module/walship.so (needs postgresql-server-dev-N: pg_config)
#   make install-module   into pg_config --pkglibdir (PG_CONFIG=/usr/lib/postgresql/N/bin/pg_config)
# The module links module/client.c and the walship objects it needs (spool, config, ...),
# compiled -fPIC into build/pic/libwalship.a (the linker takes only what is referenced).
PG_CONFIG  ?= pg_config
PIC        := build/pic
PIC_SRCS   := $(LIB_SRCS) module/client.c
PIC_OBJS   := $(PIC_SRCS:%.c=$(PIC)/%.o)
MODULE_SO  := build/module/walship.so
MODULE_MK  := $(MAKE) --no-print-directory -C build/module -f $(CURDIR)/module/Makefile \
              VPATH=$(CURDIR)/module PG_CONFIG=$(PG_CONFIG) WS_ROOT=$(CURDIR) \
              WS_PIC=$(CURDIR)/$(PIC) WS_BIN=$(PREFIX)/bin/walship WS_LIBS="$(PKG_LIBS) -lpthread"

.PHONY: module install-module uninstall-module

# never with the sanitizers: the module is loaded into a postgres built without their runtime
$(PIC)/%.o: %.c | pkgcheck
	@mkdir -p $(dir $@)
	$(CC) $(filter-out $(SANFLAGS),$(ALL_CFLAGS)) -fPIC -c -o $@ $<

$(PIC)/libwalship.a: $(filter-out $(PIC)/module/%,$(PIC_OBJS))
	rm -f $@
	ar rcs $@ $^

module: $(PIC)/libwalship.a $(PIC)/module/client.o
	@command -v $(PG_CONFIG) >/dev/null 2>&1 || { echo "walship: make module needs pg_config: apt-get install postgresql-server-dev-15" >&2; exit 1; }
	@mkdir -p build/module
	+$(MODULE_MK)

install-module: module
	+$(MODULE_MK) install

uninstall-module:
	+$(MODULE_MK) uninstall

-include $(PIC_OBJS:.o=.d)
# ---------------------------------------------------------------------------------------------
# Proof (issue 18): make fuzz, make trials, make pitr-trials — docs/reliability.md
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="wal tar ..."]   libFuzzer targets (tests/fuzz/)
#                                           (all targets at the default 60 s: docs/reliability.md rewritten)
#   make trials [TRIALS=200] [KILL_TRIALS=20]                   kill -9 / fault trials (tests/trials/)
#   make pitr-trials [PITR_TRIALS=50] [PITR_SEED=N]             randomized PITR trials
# The fuzz build is its own tree (build/fuzz/): every library module compiled by clang with
# -fsanitize=fuzzer-no-link,address,undefined, each target linked with -fsanitize=fuzzer.
# ---------------------------------------------------------------------------------------------
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build/fuzz
FUZZ_SRCS    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES   := $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=%)
FUZZ_TARGETS ?= $(FUZZ_NAMES)
FUZZ_BINS    := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_OBJS    := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
                -Wno-unknown-warning-option -I. $(PKG_CFLAGS) -DWS_VERSION='"$(VERSION)"' \
                -DWS_GIT_COMMIT='"$(GIT_COMMIT)"' -O1 -g -fno-omit-frame-pointer \
                -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -MMD -MP
# the full form (every target, 60 s) writes its figures into docs/reliability.md
FUZZ_DOC     := $(if $(and $(filter 60,$(FUZZ_SECONDS)),$(filter $(FUZZ_NAMES),$(FUZZ_TARGETS)),$(if $(filter-out $(FUZZ_TARGETS),$(FUZZ_NAMES)),,y)),y)
TRIALS       ?= 200
PITR_TRIALS  ?= 50
KILL_TRIALS  ?= 20

.PHONY: fuzz fuzz-build trials pitr-trials

$(FUZZ_BUILD)/obj/%.o: %.c | pkgcheck
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_OBJS) | pkgcheck
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: deps
	$(MAKE) --no-print-directory fuzz-build
	rm -f $(FUZZ_BUILD)/report.md
	FUZZ_REPORT=$(if $(FUZZ_DOC),$(CURDIR)/$(FUZZ_BUILD)/report.md) tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)
	$(if $(FUZZ_DOC),tests/fuzz/write-doc.sh $(FUZZ_BUILD)/report.md $(FUZZ_SECONDS))

trials: deps
	$(MAKE) --no-print-directory $(BIN)
	@# posix and S3 run side by side (their time goes to waiting, not CPU), each its own table
	WALSHIP_BIN=$(CURDIR)/$(BIN) tests/trials/crash.pl --trials $$(( $(TRIALS) / 2 )) --only posix-sync,posix-async \
	  --write-doc --section crash-trials & p=$$!; \
	WALSHIP_BIN=$(CURDIR)/$(BIN) tests/trials/crash.pl --trials $$(( $(TRIALS) - $(TRIALS) / 2 )) --only s3-sync,s3-async \
	  --write-doc --section crash-trials-s3; s=$$?; wait $$p && exit $$s
	WALSHIP_BIN=$(CURDIR)/$(BIN) tests/trials/killbr.pl --trials $(KILL_TRIALS) --write-doc

pitr-trials: deps
	$(MAKE) --no-print-directory $(BIN)
	WALSHIP_BIN=$(CURDIR)/$(BIN) tests/trials/pitr.pl --trials $(PITR_TRIALS) --write-doc $(if $(PITR_SEED),--seed $(PITR_SEED))

.SECONDARY: $(FUZZ_OBJS)
-include $(FUZZ_OBJS:.o=.d)
