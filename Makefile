# asynctask: plain Makefile. Packager flags (CFLAGS, CPPFLAGS, LDFLAGS) are kept and ours added.
#   make              build build/asynctaskd, build/asynctask-launcher, build/asynctask,
#                     build/asynctask-exec, build/asynctask-generator
#   make check        unit tests, fuzz corpus replay, integration tests
#   make check SANITIZE=1   the same under ASan/UBSan (in build-san/)
#   make fuzz         libFuzzer targets (clang)
#   make install      DESTDIR, PREFIX and the directories below are honoured
#   make WERROR=1     warnings are errors (CI)

PREFIX         ?= /usr/local
BINDIR         ?= $(PREFIX)/bin
SBINDIR        ?= $(PREFIX)/sbin
LIBEXECDIR     ?= $(PREFIX)/libexec
DATADIR        ?= $(PREFIX)/share
MANDIR         ?= $(DATADIR)/man
SYSCONFDIR     ?= /etc
SYSTEMDUNITDIR ?= /usr/lib/systemd/system
SYSTEMDGENERATORDIR ?= /usr/lib/systemd/system-generators
SYSUSERSDIR    ?= /usr/lib/sysusers.d
TMPFILESDIR    ?= /usr/lib/tmpfiles.d
CATALOGDIR     ?= /usr/lib/systemd/catalog

PKG_CONFIG ?= pkg-config
CC         ?= cc
CFLAGS     ?= -O2 -g
# The system python, where python3-pytest is installed (a python3 earlier on PATH may lack it).
PYTHON     ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)

ifeq ($(SANITIZE),1)
BUILDDIR ?= build-san
override CFLAGS += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
override LDFLAGS += -fsanitize=address,undefined
else
BUILDDIR ?= build
endif

MYSQL_PC := $(shell $(PKG_CONFIG) --exists libmariadb && echo libmariadb || echo mysqlclient)
DEPS_CFLAGS := $(shell $(PKG_CONFIG) --cflags libsystemd libcjson $(MYSQL_PC))
# The MariaDB client is built against (its headers) but not linked: asynctaskd loads it when the MySQL
# store is configured (src/front/mariadb.h).
DEPS_LIBS   := $(shell $(PKG_CONFIG) --libs libsystemd libcjson) -ldl
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)

VERSION := 0.1.0
override CPPFLAGS += -D_GNU_SOURCE -iquote src -DASYNCTASK_VERSION='"$(VERSION)"' -DLIBEXECDIR='"$(LIBEXECDIR)"' -DSYSCONFDIR='"$(SYSCONFDIR)"' -DBINDIR='"$(BINDIR)"'
override CFLAGS += -std=gnu11 -Wall -Wextra -Wformat=2 -Wno-unused-parameter -Wshadow \
	-Wmissing-prototypes -Wstrict-prototypes -Wvla -MMD -MP $(DEPS_CFLAGS)
# bench/run's front without metrics collection (figure 1m), built by bench-tools in its own directory.
ifeq ($(BENCH_WITHOUT_METRICS),1)
override CPPFLAGS += -DBENCH_WITHOUT_METRICS
endif
ifeq ($(WERROR),1)
override CFLAGS += -Werror
endif
LIBS := $(DEPS_LIBS) -pthread

# One folder per process role (docs/HACKING.md): src/shared/ (both daemons and the CLI), src/front/
# (asynctaskd, unprivileged), src/launcher/ (asynctask-launcher, root), src/exec/ (asynctask-exec,
# libc only), src/cli/ (asynctask), src/generator/ (asynctask-generator, run by PID 1). Each role is
# one archive, and each program's link line names the archives and libraries it may use: only
# asynctaskd links libmariadb; asynctask-exec links libc; the generator libc and cJSON.
SHARED_SRCS   := $(sort $(wildcard src/shared/*.c))
FRONT_SRCS    := $(filter-out src/front/main.c,$(sort $(wildcard src/front/*.c)))
LAUNCHER_SRCS := $(filter-out src/launcher/main.c,$(sort $(wildcard src/launcher/*.c)))
CLI_SRCS      := $(filter-out src/cli/main.c,$(sort $(wildcard src/cli/*.c)))
GENERATOR_SRCS := $(filter-out src/generator/main.c,$(sort $(wildcard src/generator/*.c)))

objs = $(patsubst src/%.c,$(BUILDDIR)/%.o,$(1))
LIB_SHARED   := $(BUILDDIR)/libshared.a
LIB_FRONT    := $(BUILDDIR)/libfront.a
LIB_LAUNCHER := $(BUILDDIR)/liblauncher.a
LIB_CLI      := $(BUILDDIR)/libcli.a
LIB_GENERATOR := $(BUILDDIR)/libgenerator.a

SYSTEMD_LIBS := $(shell $(PKG_CONFIG) --libs libsystemd)
CJSON_LIBS   := $(shell $(PKG_CONFIG) --libs libcjson)
FRONT_LIBS    := $(SYSTEMD_LIBS) $(CJSON_LIBS) -ldl -pthread
LAUNCHER_LIBS := $(SYSTEMD_LIBS) $(CJSON_LIBS)
CLI_LIBS      := $(SYSTEMD_LIBS) $(CJSON_LIBS)
GENERATOR_LIBS := $(CJSON_LIBS)

PROGRAMS := $(BUILDDIR)/asynctaskd $(BUILDDIR)/asynctask-launcher $(BUILDDIR)/asynctask $(BUILDDIR)/asynctask-exec \
	$(BUILDDIR)/asynctask-generator

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILDDIR)/%,$(wildcard tests/unit/test-*.c))
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz-*.c)
FUZZ_REPLAY := $(patsubst tests/fuzz/%.c,$(BUILDDIR)/%-replay,$(FUZZ_SRCS))

all: $(PROGRAMS)

$(BUILDDIR)/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILDDIR)/lib%.a:
	rm -f $@
	$(AR) rcs $@ $^
$(LIB_SHARED): $(call objs,$(SHARED_SRCS))
$(LIB_FRONT): $(call objs,$(FRONT_SRCS))
$(LIB_LAUNCHER): $(call objs,$(LAUNCHER_SRCS))
$(LIB_CLI): $(call objs,$(CLI_SRCS))
$(LIB_GENERATOR): $(call objs,$(GENERATOR_SRCS))

$(BUILDDIR)/asynctaskd: $(BUILDDIR)/front/main.o $(LIB_FRONT) $(LIB_SHARED)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(FRONT_LIBS)

$(BUILDDIR)/asynctask-launcher: $(BUILDDIR)/launcher/main.o $(LIB_LAUNCHER) $(LIB_SHARED)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LAUNCHER_LIBS)

$(BUILDDIR)/asynctask: $(BUILDDIR)/cli/main.o $(LIB_CLI) $(LIB_SHARED)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(CLI_LIBS)

# The systemd generator PID 1 runs at boot: it reads task files, so libc and cJSON; no libsystemd.
$(BUILDDIR)/asynctask-generator: $(BUILDDIR)/generator/main.o $(LIB_GENERATOR) $(LIB_SHARED)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(GENERATOR_LIBS)

# The systemd executor's exec helper: libc only, it runs inside every task unit.
$(BUILDDIR)/asynctask-exec: $(BUILDDIR)/exec/main.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^

# Unit tests: tests/unit/test-<module>.c, cmocka, linked against the shared modules.
$(BUILDDIR)/tests/%.o: tests/unit/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

TEST_ARCHIVES := $(LIB_FRONT) $(LIB_LAUNCHER) $(LIB_CLI) $(LIB_GENERATOR) $(LIB_SHARED)
$(BUILDDIR)/test-%: $(BUILDDIR)/tests/test-%.o $(TEST_ARCHIVES)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) $(CMOCKA_LIBS)

# The helper's test runs the helper built next to it; the launcher's lookup test finds it there.
$(BUILDDIR)/test-asynctask-exec $(BUILDDIR)/test-exec-helper: | $(BUILDDIR)/asynctask-exec

# Fuzz targets built with a small main() that replays the corpus (runs under gcc and sanitizers).
$(BUILDDIR)/fuzz/%.o: tests/fuzz/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILDDIR)/fuzz-%-replay: $(BUILDDIR)/fuzz/fuzz-%.o $(BUILDDIR)/fuzz/replay-main.o $(LIB_FRONT) $(LIB_SHARED)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILDDIR)/fuzz/replay-main.o: tests/fuzz/replay-main.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

check-unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; $$t; done

check-fuzz-corpus: $(FUZZ_REPLAY)
	@set -e; for f in $(FUZZ_REPLAY); do n=$$(basename $$f -replay); \
		echo "== $$n corpus"; $$f tests/fuzz/corpus/$${n#fuzz-}; done

check-integration: $(PROGRAMS)
	ASYNCTASK_BUILDDIR=$(abspath $(BUILDDIR)) $(PYTHON) -m pytest -q tests/integration

# PHP client tests (PHPUnit) against the real daemons; skipped with a notice when PHP is missing.
check-php: $(PROGRAMS)
	@if command -v phpunit >/dev/null && command -v php >/dev/null; then \
		cd clients/php && ASYNCTASK_BUILDDIR=$(abspath $(BUILDDIR)) phpunit; \
	else echo "check-php: php or phpunit not installed, PHP client tests skipped"; fi

# The layout rule (scripts/check-includes; its self-test plants each kind of violation in a copy), and
# what each program links: only asynctaskd may need libmariadb, asynctask-exec needs libc alone, and
# asynctask-generator no libsystemd.
check-layout: $(PROGRAMS)
	scripts/check-includes
	scripts/check-includes --self-test >/dev/null
	@! grep -rn '^#include ".*\.c"' tests/unit tests/fuzz || { echo "tests include .c files (link the module instead)"; exit 1; }
	scripts/check-linkage $(BUILDDIR)

check: check-layout check-unit check-fuzz-corpus check-integration check-php check-cockpit

# libFuzzer builds (clang): make fuzz; then e.g. build-fuzz/fuzz-request tests/fuzz/corpus/request
FUZZ_CC ?= clang
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 -D_GNU_SOURCE -DASYNCTASK_VERSION='"$(VERSION)"' -iquote src $(DEPS_CFLAGS)
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRCS))
fuzz: $(FUZZ_TARGETS)
# The release-time pass: every target for FUZZ_SECONDS at once (3 targets x 600 s = 30 CPU-minutes).
FUZZ_SECONDS ?= 600
fuzz-long: fuzz
	tests/fuzz/run $(FUZZ_SECONDS)
build-fuzz/fuzz-%: tests/fuzz/fuzz-%.c $(SHARED_SRCS) $(FRONT_SRCS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(SHARED_SRCS) $(FRONT_SRCS) $(LIBS)

# Man pages from scdoc sources (man/*.scd -> $(BUILDDIR)/man/NAME.SECTION).
MAN_SRCS  := $(wildcard man/*.scd)
MAN_PAGES := $(patsubst man/%.scd,$(BUILDDIR)/man/%,$(MAN_SRCS))
SCDOC     ?= scdoc
man: $(MAN_PAGES)
$(BUILDDIR)/man/%: man/%.scd
	@mkdir -p $(@D)
	$(SCDOC) < $< > $@

format:
	clang-format -i src/*/*.c src/*/*.h tests/unit/*.c tests/fuzz/*.c bench/*.c 2>/dev/null || true
format-check:
	clang-format --dry-run -Werror src/*/*.c src/*/*.h tests/unit/*.c tests/fuzz/*.c $(wildcard bench/*.c)

install: $(PROGRAMS)
	install -D -m 0755 $(BUILDDIR)/asynctaskd $(DESTDIR)$(SBINDIR)/asynctaskd
	install -D -m 0755 $(BUILDDIR)/asynctask-launcher $(DESTDIR)$(LIBEXECDIR)/asynctask/asynctask-launcher
	install -D -m 0755 $(BUILDDIR)/asynctask-exec $(DESTDIR)$(LIBEXECDIR)/asynctask/asynctask-exec
	install -D -m 0755 $(BUILDDIR)/asynctask $(DESTDIR)$(BINDIR)/asynctask
	install -D -m 0755 $(BUILDDIR)/asynctask-generator $(DESTDIR)$(SYSTEMDGENERATORDIR)/asynctask-generator
	install -D -m 0644 etc/asynctask.json $(DESTDIR)$(SYSCONFDIR)/asynctask/asynctask.json
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/asynctask/tasks.d
	for u in asynctask.socket asynctask.service asynctask-launcher.socket asynctask-launcher.service \
		asynctask.slice asynctask-metrics.socket asynctask-metrics@.service; do \
		sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' \
			units/$$u.in > units/$$u.tmp && \
		install -D -m 0644 units/$$u.tmp $(DESTDIR)$(SYSTEMDUNITDIR)/$$u && rm -f units/$$u.tmp; done
	install -D -m 0644 catalog/asynctask.catalog $(DESTDIR)$(CATALOGDIR)/asynctask.catalog
	install -D -m 0644 units/asynctask.sysusers $(DESTDIR)$(SYSUSERSDIR)/asynctask.conf
	install -D -m 0644 units/asynctask.tmpfiles $(DESTDIR)$(TMPFILESDIR)/asynctask.conf
	install -D -m 0644 sql/asynctask-schema.sql $(DESTDIR)$(DATADIR)/asynctask/asynctask-schema.sql
	if command -v $(SCDOC) >/dev/null; then $(MAKE) man && for p in $(MAN_PAGES); do \
		s=$${p##*.}; install -D -m 0644 $$p $(DESTDIR)$(MANDIR)/man$$s/$$(basename $$p); done; \
	else echo "scdoc not found: man pages not installed"; fi

clean:
	rm -rf build build-san build-fuzz

# The Cockpit page (package cockpit-asynctask, docs/cockpit.md): plain JavaScript modules and
# PatternFly's CSS, which npm ci installs at the version cockpit/package-lock.json pins and
# cockpit/build.mjs cuts down into cockpit/dist/. No bundler. The package builds run make cockpit
# before they export the tree and carry cockpit/dist along, as a release tarball would, so that the
# package builds themselves need neither node nor npm (and make clean, which they run, keeps it).
COCKPITDIR  ?= $(DATADIR)/cockpit/asynctask
COCKPIT_SRCS := $(wildcard cockpit/src/*) cockpit/build.mjs
# $(call npm_ci,DIR): npm ci in DIR, quietly: one line, npm's output in build/npm-ci-*.log (shown
# if it fails).
npm_ci = @mkdir -p build && log=build/npm-ci-$(subst /,-,$(1)).log && echo "npm ci in $(1) (log: $$log)" && \
	{ (cd $(1) && npm ci --no-audit --no-fund) >$$log 2>&1 || { cat $$log; exit 1; }; }

cockpit/node_modules/.package-lock.json: cockpit/package.json cockpit/package-lock.json
	$(call npm_ci,cockpit)

cockpit/dist/manifest.json: $(COCKPIT_SRCS) cockpit/node_modules/.package-lock.json
	node cockpit/build.mjs cockpit/dist

cockpit: cockpit/dist/manifest.json

install-cockpit:
	@test -f cockpit/dist/manifest.json || { echo "cockpit/dist is missing: run make cockpit first" >&2; exit 1; }
	install -d -m 0755 $(DESTDIR)$(COCKPITDIR)
	install -m 0644 cockpit/dist/* $(DESTDIR)$(COCKPITDIR)/

# The page's modules under node's test runner: protocol framing, rates, paging, formatting.
check-cockpit:
	node --test cockpit/test/

.PHONY: cockpit install-cockpit check-cockpit


.PHONY: man
.PHONY: all check check-layout check-unit check-fuzz-corpus check-integration check-php fuzz fuzz-long format format-check install clean

-include $(wildcard $(BUILDDIR)/*/*.d $(BUILDDIR)/tests/*.d $(BUILDDIR)/fuzz/*.d)

# End-to-end suite under a booted systemd in a container (root; tests/e2e/run, docs/systemd.md).
# Needs mmdebstrap, systemd-container (systemd-nspawn) and util-linux (nsenter), plus what packaging/
# build-deb needs. It installs the .deb into the container, and upgrades it to the same sources built
# as VERSION+1. Both packages are rebuilt when a file they are built from (what git tracks, less this
# suite) is newer; a package from a fresh `make deb` is used as it is. The unit tests are not run
# again inside these builds (nocheck): make check runs them.
$(BUILDDIR)/e2e/exec-probe.o: tests/e2e/exec-probe.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILDDIR)/exec-probe: $(BUILDDIR)/e2e/exec-probe.o $(LIB_LAUNCHER) $(LIB_SHARED)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

E2E_DEB_ARCH := $(shell dpkg-architecture -qDEB_HOST_ARCH 2>/dev/null || echo unknown)
E2E_DEB      := build/packages/asynctask_$(VERSION)_$(E2E_DEB_ARCH).deb
E2E_DEB_NEXT := build/packages/asynctask_$(VERSION)+1_$(E2E_DEB_ARCH).deb
# Built with E2E_DEB, by the same packaging/build-deb.
E2E_COCKPIT_DEB := build/packages/cockpit-asynctask_$(VERSION)_all.deb
E2E_DEB_LOG  := $(BUILDDIR)/e2e/build-deb.log
# Only on the e2e targets: `git ls-files` runs only when one of them is asked for.
ifneq ($(filter e2e e2e-build e2e-packages,$(MAKECMDGOALS)),)
E2E_PKG_SOURCES := $(filter-out tests/e2e/%,$(wildcard $(shell git ls-files 2>/dev/null)))
endif
E2E_BUILD_DEB = mkdir -p $(dir $(E2E_DEB_LOG)) && \
	DEB_BUILD_OPTIONS="nocheck parallel=$$(nproc) $(DEB_BUILD_OPTIONS)" packaging/build-deb $(1) \
		>$(E2E_DEB_LOG) 2>&1 || { tail -n 40 $(E2E_DEB_LOG); echo "e2e: packaging/build-deb $(1) failed (log: $(E2E_DEB_LOG))"; exit 1; }

$(E2E_DEB): $(E2E_PKG_SOURCES)
	@echo "e2e: building $@"
	@$(call E2E_BUILD_DEB,)
# Built after the first (order-only prerequisite): both builds use build/pkg/.
$(E2E_DEB_NEXT): $(E2E_PKG_SOURCES) | $(E2E_DEB)
	@echo "e2e: building $@"
	@$(call E2E_BUILD_DEB,--version-suffix +1)

e2e-packages: $(E2E_DEB) $(E2E_DEB_NEXT)

# The browser test of the Cockpit page (scenario cockpit-page) drives Debian's Chromium with the
# playwright-core that tests/e2e/cockpit/package-lock.json pins.
tests/e2e/cockpit/node_modules/.package-lock.json: tests/e2e/cockpit/package.json tests/e2e/cockpit/package-lock.json
	$(call npm_ci,tests/e2e/cockpit)

e2e-build: $(BUILDDIR)/exec-probe $(BUILDDIR)/asynctask-exec e2e-packages tests/e2e/cockpit/node_modules/.package-lock.json

e2e: e2e-build
	BUILDDIR=$(BUILDDIR) E2E_DEB=$(E2E_DEB) E2E_DEB_NEXT=$(E2E_DEB_NEXT) E2E_COCKPIT_DEB=$(E2E_COCKPIT_DEB) \
		tests/e2e/run

.PHONY: e2e e2e-build e2e-packages

# Packages from a clean export of the tree (git ls-files), into build/packages/ (docs/install.md).
# deb: dpkg-buildpackage with packaging/debian as debian/; rpm: rpmbuild on asynctask.spec;
# check-packages: file lists, maintainer scripts and scriptlets, lintian, rpmlint.
deb:
	packaging/build-deb
rpm:
	packaging/build-rpm
check-packages:
	packaging/check-packages

.PHONY: deb rpm check-packages

# Benchmarks (bench/run, docs/benchmarks.md): the load generator, the spawn baseline, then every figure.
# BENCH_ARGS passes options to bench/run, e.g. make bench BENCH_ARGS=--quick
BENCH_TOOLS := $(BUILDDIR)/bench/loadgen $(BUILDDIR)/bench/spawn-baseline $(BUILDDIR)/bench/stamp \
	$(BUILDDIR)/bench/transient-ceiling
$(BUILDDIR)/bench/%: bench/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< -lm
$(BUILDDIR)/bench/transient-ceiling: bench/transient-ceiling.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBS)

# The same front with metrics collection compiled out, to measure what collecting them costs.
# (A make of its own in its own directory: the objects differ.)
bench-no-metrics:
	$(MAKE) BUILDDIR=$(BUILDDIR)/bench/no-metrics BENCH_WITHOUT_METRICS=1 $(BUILDDIR)/bench/no-metrics/asynctaskd

bench-tools: $(BENCH_TOOLS) bench-no-metrics

bench: all bench-tools
	BUILDDIR=$(BUILDDIR) bench/run $(BENCH_ARGS)

.PHONY: bench bench-tools bench-no-metrics

# The soak (bench/soak): 1,000,000 tasks through each store (memory, MySQL) from 256 clients,
# checking that nothing is lost, no error but `unavailable`, and flat RSS past max_records; 35-130
# minutes on 2 CPUs, not part of `make check`. A quick pass: make soak SOAK_TASKS=20000 (SOAK_ARGS: more options).
soak: all bench-tools
	BUILDDIR=$(BUILDDIR) bench/soak $(if $(SOAK_TASKS),--tasks $(SOAK_TASKS)) $(SOAK_ARGS)

.PHONY: soak
