# SPDX-License-Identifier: MIT
# ssf: pam_ssf.so, ssf-sessiond, ssfctl. Non-recursive GNU make.
#
#   make            build everything into build/
#   make check      install build/test dependencies, build, run every test
#   make demo       install dependencies, build, run the seed scenario against the local transmitter
#   make install DESTDIR=…
#   make asan       build and run the unit tests and fuzz corpora with ASan+UBSan

CC ?= gcc
PKG_CONFIG ?= pkg-config
PYTHON ?= /usr/bin/python3
B ?= build
V ?= 0
Q := $(if $(filter 1,$(V)),,@)

prefix ?= /usr
sbindir ?= $(prefix)/sbin
bindir ?= $(prefix)/bin
mandir ?= $(prefix)/share/man
multiarch := $(shell $(CC) -print-multiarch 2>/dev/null)
libdir ?= /lib/$(multiarch)
pamdir ?= $(libdir)/security
sysconfdir ?= /etc
unitdir ?= /lib/systemd/system
sysusersdir ?= /usr/lib/sysusers.d
tmpfilesdir ?= /usr/lib/tmpfiles.d
polkitrulesdir ?= /usr/share/polkit-1/rules.d

VERSION := 0.1.0

cc-option = $(shell $(CC) -Werror $(1) -c -x c /dev/null -o /dev/null 2>/dev/null && echo $(1))

WARN  = -Wall -Wextra -Wformat=2 -Werror=format-security -Wshadow -Wpointer-arith
WARN += -Wcast-qual -Wwrite-strings -Wstrict-prototypes -Wmissing-prototypes -Wmissing-declarations
WARN += -Wold-style-definition -Wredundant-decls -Wnested-externs -Wundef -Winit-self -Wdate-time
WARN += -Wimplicit-fallthrough -Wmisleading-indentation -Wnull-dereference -Wvla
WARN += -Werror=implicit-function-declaration -Werror=incompatible-pointer-types -Werror=int-conversion -Werror=return-type
WARN += -Wno-unused-parameter -Wno-missing-field-initializers
WARN += $(call cc-option,-Wlogical-op)
HARDEN  = -fno-common -fno-strict-aliasing -fstack-protector-strong -fvisibility=hidden
HARDEN += $(call cc-option,-ftrivial-auto-var-init=zero) $(call cc-option,-fzero-call-used-regs=used)
HARDEN += $(call cc-option,-fstack-clash-protection) $(call cc-option,-fcf-protection=full)
WERROR ?= -Werror
OPT ?= -O2
SAN ?=
FORTIFY ?= -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2

CPPFLAGS += -D_GNU_SOURCE $(FORTIFY) -DSSF_VERSION=\"$(VERSION)\"
CFLAGS ?=
CFLAGS += -std=gnu11 $(OPT) -g -pipe -fPIC $(WARN) $(HARDEN) $(WERROR) $(SAN)
LDFLAGS += -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack $(SAN)

# ssf-sessiond's libraries (libseccomp: the network worker's filter, receiver/sandbox.c); never
# linked into pam_ssf.so, which links only libc and libpam.
DEP_PKGS = libcurl jansson libcrypto libssl libsystemd sqlite3 inih libseccomp
DEP_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(DEP_PKGS) 2>/dev/null)
DEP_LIBS = $(shell $(PKG_CONFIG) --libs $(DEP_PKGS) 2>/dev/null) -lpthread
JANSSON_CFLAGS = $(shell $(PKG_CONFIG) --cflags jansson 2>/dev/null)
JANSSON_LIBS = $(shell $(PKG_CONFIG) --libs jansson 2>/dev/null)
CMOCKA_LIBS = $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)

# Where each part may look for headers. The include paths are the process boundary (README,
# "Layout"): the network worker's code (receiver/) cannot include a header of the root daemon
# (daemon/) or the reverse, both see shared/ and common/, and pam_ssf.so and ssfctl see only
# common/. tests/check-layout.sh says in words which #include crosses a line.
SD := ssf-sessiond
INC_COMMON   := -Icommon
INC_PAM      := -Icommon -Ipam_ssf
INC_SHARED   := -Icommon -I$(SD)/shared
INC_DAEMON   := $(INC_SHARED) -I$(SD)/daemon
INC_RECEIVER := $(INC_SHARED) -I$(SD)/receiver
INC_MAIN     := $(INC_SHARED) -I$(SD)/daemon -I$(SD)/receiver
INC_SSFCTL   := -Icommon -Issfctl
INC_TESTS    := $(INC_MAIN) -Ipam_ssf -Issfctl

COMMON_SRC := $(sort $(wildcard common/*.c))
PAM_CORE_SRC := $(filter-out pam_ssf/pam_ssf.c,$(sort $(wildcard pam_ssf/*.c)))
SHARED_SRC := $(sort $(wildcard $(SD)/shared/*.c))
DAEMON_CORE_SRC := $(sort $(wildcard $(SD)/daemon/*.c))
RECEIVER_SRC := $(sort $(wildcard $(SD)/receiver/*.c))
SSFCTL_CORE_SRC := $(filter-out ssfctl/ssfctl.c,$(sort $(wildcard ssfctl/*.c)))
UNIT_SRC := $(sort $(wildcard tests/unit/test-*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz-*.c))
HELPER_SRC := $(sort $(wildcard tests/helpers/*.c))

O := $(B)/obj
obj = $(patsubst %.c,$(O)/%.o,$(1))

LIBCOMMON := $(B)/libssfcommon.a
LIBPAMCORE := $(B)/libpamssf-core.a
LIBSHARED := $(B)/libsessiond-shared.a
LIBDAEMON := $(B)/libsessiond-daemon.a
LIBRECEIVER := $(B)/libsessiond-receiver.a
LIBSSFCTL := $(B)/libssfctl-core.a
# Everything the daemon binary links (both processes' code: the worker is the same binary).
SESSIOND_LIBS := $(LIBDAEMON) $(LIBRECEIVER) $(LIBSHARED) $(LIBCOMMON)
PAM_MODULE := $(B)/pam_ssf.so
DAEMON := $(B)/ssf-sessiond
SSFCTL := $(B)/ssfctl
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRC))
HELPER_BINS := $(patsubst tests/helpers/%.c,$(B)/helpers/%,$(HELPER_SRC))

all: $(PAM_MODULE) $(DAEMON) $(SSFCTL)
# The daemon as the tests need it to play a compromised network worker: root runs the program
# named by $SSF_TEST_WORKER as its worker (daemon/broker.c, SSF_TEST_BUILD). Never installed.
TEST_DAEMON := $(B)/helpers/ssf-sessiond-test

# An NSS module for nss_wrapper whose lookups of one name wait for a file: a slow user database.
NSS_GATE := $(B)/helpers/libnss_ssfgate.so

tests: all $(UNIT_BINS) $(FUZZ_BINS) $(HELPER_BINS) $(TEST_DAEMON) $(NSS_GATE)

# One compile rule; each folder sets which headers it sees (INC) and whether the daemon's
# libraries' headers are visible at all (XCFLAGS): the PAM module and common/ must not see them.
$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(XCFLAGS) $(INC) -MMD -MP -c $< -o $@

$(O)/common/%.o: INC := $(INC_COMMON)
$(O)/pam_ssf/%.o: INC := $(INC_PAM)
$(O)/$(SD)/shared/%.o: INC := $(INC_SHARED)
$(O)/$(SD)/daemon/%.o: INC := $(INC_DAEMON)
$(O)/$(SD)/receiver/%.o: INC := $(INC_RECEIVER)
$(O)/$(SD)/main.o: INC := $(INC_MAIN)
$(O)/ssfctl/%.o: INC := $(INC_SSFCTL)
$(O)/ssfctl/%.o: XCFLAGS := $(JANSSON_CFLAGS)
$(O)/tests/%.o: INC := $(INC_TESTS)
$(O)/$(SD)/%.o $(O)/tests/%.o: XCFLAGS := $(DEP_CFLAGS)

$(LIBCOMMON): $(call obj,$(COMMON_SRC))
$(LIBPAMCORE): $(call obj,$(PAM_CORE_SRC))
$(LIBSHARED): $(call obj,$(SHARED_SRC))
$(LIBDAEMON): $(call obj,$(DAEMON_CORE_SRC))
$(LIBRECEIVER): $(call obj,$(RECEIVER_SRC))
$(LIBSSFCTL): $(call obj,$(SSFCTL_CORE_SRC))
$(LIBCOMMON) $(LIBPAMCORE) $(LIBSHARED) $(LIBDAEMON) $(LIBRECEIVER) $(LIBSSFCTL):
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(PAM_MODULE): $(O)/pam_ssf/pam_ssf.o $(LIBPAMCORE) $(LIBCOMMON) pam_ssf/pam_ssf.sym
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) -shared -Wl,-z,defs -Wl,--version-script=pam_ssf/pam_ssf.sym $(LDFLAGS) \
		-o $@ $(O)/pam_ssf/pam_ssf.o $(LIBPAMCORE) $(LIBCOMMON) -lpam

$(DAEMON): $(O)/$(SD)/main.o $(SESSIOND_LIBS)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) -pie $(LDFLAGS) -o $@ $^ $(DEP_LIBS)

$(SSFCTL): $(O)/ssfctl/ssfctl.o $(LIBSSFCTL) $(LIBCOMMON)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) -pie $(LDFLAGS) -o $@ $^ $(JANSSON_LIBS)

# Unit tests (cmocka): each links every core library.
$(B)/tests/%: $(O)/tests/unit/%.o $(LIBDAEMON) $(LIBRECEIVER) $(LIBSHARED) $(LIBSSFCTL) $(LIBPAMCORE) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(DEP_LIBS) $(CMOCKA_LIBS) -lpam

# Fuzz targets: LLVMFuzzerTestOneInput + standalone.c, which replays a corpus directory (make
# check). `make fuzz` builds them with clang's libFuzzer instead.
$(B)/fuzz/%: $(O)/tests/fuzz/%.o $(O)/tests/fuzz/standalone.o $(LIBDAEMON) $(LIBRECEIVER) $(LIBSHARED) $(LIBPAMCORE) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(DEP_LIBS) -lpam
$(O)/tests/fuzz/standalone.o: tests/fuzz/standalone.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(INC_COMMON) -Wno-missing-prototypes -c $< -o $@

$(O)/test-build/broker.o: $(SD)/daemon/broker.c
	@mkdir -p $(dir $@)
	@echo "  CC      $< (test build)"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(DEP_CFLAGS) $(INC_DAEMON) -DSSF_TEST_BUILD -MMD -MP -c $< -o $@

$(TEST_DAEMON): $(O)/$(SD)/main.o $(O)/test-build/broker.o $(SESSIOND_LIBS)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) -pie $(LDFLAGS) -o $@ $^ $(DEP_LIBS)

# Small C helpers the integration tests use (e.g. a PAM harness).
$(B)/helpers/%: $(O)/tests/helpers/%.o $(LIBCOMMON)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lpam -lpam_misc $(shell $(PKG_CONFIG) --libs libpamtest 2>/dev/null)

$(NSS_GATE): tests/helpers/nss/nss-gate.c
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) -fvisibility=default -Wno-unused-parameter -shared $(LDFLAGS) -o $@ $<

# ---------------------------------------------------------------------------------------------
deps:
	$(Q)scripts/install-deps.sh

check: deps
	$(Q)tests/check-layout.sh --sources
	$(Q)$(MAKE) --no-print-directory tests
	$(Q)scripts/run-checks.sh $(B)

check-unit: tests
	$(Q)scripts/run-checks.sh $(B) unit

check-integration: tests
	$(Q)scripts/run-checks.sh $(B) integration

check-e2e: tests
	$(Q)scripts/run-checks.sh $(B) e2e

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(PYTHON) tests/demo.py --build $(B)

asan:
	$(Q)$(MAKE) --no-print-directory B=build-asan OPT=-O1 FORTIFY=-U_FORTIFY_SOURCE \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" tests
	$(Q)scripts/run-checks.sh build-asan unit

# libFuzzer binaries (clang, ASan+UBSan) in build-fuzz/libfuzzer/; run one with its corpus, e.g.
#   build-fuzz/libfuzzer/fuzz-set -max_total_time=60 tests/fuzz/corpus/set
FUZZ_SAN = -fsanitize=fuzzer-no-link,address,undefined
fuzz:
	$(Q)$(MAKE) --no-print-directory B=build-fuzz CC=clang OPT=-O1 FORTIFY=-U_FORTIFY_SOURCE WERROR= \
		SAN="$(FUZZ_SAN)" $(patsubst $(B)/%,build-fuzz/%,$(LIBDAEMON) $(LIBRECEIVER) $(LIBSHARED) $(LIBPAMCORE) $(LIBCOMMON)) \
		$(patsubst $(O)/%,build-fuzz/obj/%,$(call obj,$(FUZZ_SRC)))
	$(Q)mkdir -p build-fuzz/libfuzzer
	$(Q)for f in $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRC)); do \
		echo "  LD      build-fuzz/libfuzzer/$$f"; \
		clang -fsanitize=fuzzer,address,undefined -o build-fuzz/libfuzzer/$$f build-fuzz/obj/tests/fuzz/$$f.o \
			$(patsubst $(B)/%,build-fuzz/%,$(LIBDAEMON) $(LIBRECEIVER) $(LIBSHARED) $(LIBPAMCORE) $(LIBCOMMON)) \
			$(DEP_LIBS) -lpam || exit 1; \
	done

install: all
	install -d $(DESTDIR)$(sbindir) $(DESTDIR)$(bindir) $(DESTDIR)$(pamdir)
	install -m 0755 $(DAEMON) $(DESTDIR)$(sbindir)/ssf-sessiond
	install -m 0755 $(SSFCTL) $(DESTDIR)$(bindir)/ssfctl
	install -m 0644 $(PAM_MODULE) $(DESTDIR)$(pamdir)/pam_ssf.so
	install -d $(DESTDIR)$(mandir)/man5 $(DESTDIR)$(mandir)/man8
	for m in man/*.5; do [ -e "$$m" ] && install -m 0644 "$$m" $(DESTDIR)$(mandir)/man5/ || true; done
	for m in man/*.8; do [ -e "$$m" ] && install -m 0644 "$$m" $(DESTDIR)$(mandir)/man8/ || true; done
	install -d -m 0755 $(DESTDIR)$(sysconfdir)/ssf
	install -d -m 0755 $(DESTDIR)$(sysconfdir)/ssf/ssf-sessiond.conf.d
	install -d -m 0755 $(DESTDIR)$(sysconfdir)/ssf/hooks.d
	[ "$(INSTALL_CONFIG)" = no ] || [ -e $(DESTDIR)$(sysconfdir)/ssf/ssf-sessiond.conf ] || \
		install -m 0644 conf/ssf-sessiond.conf $(DESTDIR)$(sysconfdir)/ssf/ssf-sessiond.conf
	for h in conf/hooks.d/*; do [ -e "$$h" ] && install -m 0755 "$$h" $(DESTDIR)$(sysconfdir)/ssf/hooks.d/ || true; done
	install -d $(DESTDIR)$(unitdir)
	for u in conf/ssf-sessiond.service conf/ssf-sessiond.socket; do [ -e "$$u" ] && install -m 0644 "$$u" $(DESTDIR)$(unitdir)/ || true; done
	[ ! -e conf/ssf-sessiond.sysusers ] || { install -d $(DESTDIR)$(sysusersdir); install -m 0644 conf/ssf-sessiond.sysusers $(DESTDIR)$(sysusersdir)/ssf-sessiond.conf; }
	[ ! -e conf/ssf-sessiond.tmpfiles ] || { install -d $(DESTDIR)$(tmpfilesdir); install -m 0644 conf/ssf-sessiond.tmpfiles $(DESTDIR)$(tmpfilesdir)/ssf-sessiond.conf; }
	[ ! -e conf/ssf-sessiond.polkit.rules ] || { install -d $(DESTDIR)$(polkitrulesdir); install -m 0644 conf/ssf-sessiond.polkit.rules $(DESTDIR)$(polkitrulesdir)/50-ssf-sessiond.rules; }
	install -d $(DESTDIR)$(prefix)/share/doc/ssf
	install -m 0644 conf/pam.d/ssf.example $(DESTDIR)$(prefix)/share/doc/ssf/pam.d-ssf.example
	install -d $(DESTDIR)$(prefix)/share/doc/ssf/examples
	install -m 0644 conf/ssf-sessiond.conf $(DESTDIR)$(prefix)/share/doc/ssf/examples/ssf-sessiond.conf
	install -m 0644 conf/ssf-sessiond-okta-omnissa.conf $(DESTDIR)$(prefix)/share/doc/ssf/examples/ssf-sessiond-okta-omnissa.conf

clean:
	rm -rf build build-asan build-fuzz

.PHONY: all tests deps check check-unit check-integration check-e2e demo asan fuzz install clean

-include $(shell find $(B) -path '$(B)/deb' -prune -o -name '*.d' -type f -print 2>/dev/null)

# Benchmarks (bench/README.md): ratios against baselines measured in the same run.
bench: tests
	$(Q)B=$(B) CC=$(CC) bench/run.sh $(if $(BENCH_JSON),--json $(BENCH_JSON))

.PHONY: bench

# ---------------------------------------------------------------------------------------------
# Debian package (debian/): `make deb` builds $(B)/ssf_VERSION_ARCH.deb with dpkg-buildpackage,
# in a copy of the source tree under $(B)/deb/ (so dh_auto_clean never cleans this tree's build),
# and checks it with lintian (LINTIAN= skips that). debian/rules builds and installs with the
# targets above (`make install INSTALL_CONFIG=no`: the package ships the example configuration
# under /usr/share/doc/ssf/examples/ only).
#   INSTALL_CONFIG=no   make install without /etc/ssf/ssf-sessiond.conf
INSTALL_CONFIG ?= yes
LINTIAN ?= lintian
DEB_VERSION = $(shell dpkg-parsechangelog -l debian/changelog -S Version 2>/dev/null)
DEB_ARCH = $(shell dpkg-architecture -qDEB_HOST_ARCH 2>/dev/null)
DEB_WORK = $(B)/deb
DEB_SRC = $(DEB_WORK)/ssf-$(VERSION)
DEB_FILE = ssf_$(VERSION)_$(DEB_ARCH)
deb:
	$(Q)if [ "$(DEB_VERSION)" != "$(VERSION)" ]; then \
		echo "deb: debian/changelog says $(DEB_VERSION), the Makefile's VERSION is $(VERSION)" >&2; exit 1; fi
	$(Q)rm -rf $(DEB_WORK) $(B)/$(DEB_FILE).deb && mkdir -p $(DEB_SRC)
	@echo "  COPY    source tree -> $(DEB_SRC)"
	$(Q)find . -mindepth 1 \( -name .git -o -path ./build -o -path './build-*' -o -path './$(B)' \
		-o -name __pycache__ -o -name .pytest_cache \) -prune -o \( -type f -o -type l \) -print0 | \
		tar --null -T - -cf - | tar -C $(DEB_SRC) -xf -
	@echo "  DPKG    $(DEB_FILE).deb"
	$(Q)cd $(DEB_SRC) && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL dpkg-buildpackage -us -uc -b -Jauto \
		>../build.log 2>&1 || \
		{ tail -n 40 ../build.log >&2; echo "deb: dpkg-buildpackage failed, log: $(DEB_WORK)/build.log" >&2; exit 1; }
	$(Q)cp $(DEB_WORK)/$(DEB_FILE).deb $(B)/$(DEB_FILE).deb
	$(Q)if [ -n "$(LINTIAN)" ]; then echo "  LINTIAN $(DEB_FILE).changes"; \
		$(LINTIAN) --fail-on error,warning --info $(DEB_WORK)/$(DEB_FILE).changes || \
		{ echo "deb: lintian reported errors or warnings" >&2; exit 1; }; fi
	@echo "  DEB     $(B)/$(DEB_FILE).deb"

.PHONY: deb
