# dim -- Deep InfoMax in C, a literate program.
#
#   make            tangle the book (when noweb is installed) and build build/dim
#   make check      every test: tangle check, unit tests (float and double), gradient checks,
#                   float-vs-double agreement, the sanitizer build, and the book
#   make doc        weave the book into build/doc/dim.pdf
#   make deps       install the Debian packages the project needs (as root or with sudo)
#   make demo       the main job: train and show the loss falling
#
# doc/*.nw are the source of truth; src/ is tangled from them and committed, so the code can be
# built without noweb. Never edit src/ by hand: edit the chapter and run make.

CC       ?= cc
PREFIX   ?= /usr/local
ARCH     ?= -march=native
OPT      ?= -O2
WARN     := -std=c99 -Wall -Wextra -Wpedantic -Werror
DEFS     := -D_DEFAULT_SOURCE
CFLAGS_COMMON = $(WARN) $(DEFS) $(ARCH) -fopenmp
LDLIBS   := -lm -lz
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lpthread)

# An optional build against CBLAS: make BLAS=openblas (needs Debian's libopenblas-dev)
ifeq ($(BLAS),openblas)
  DEFS   += -DAG_USE_CBLAS
  LDLIBS += -lopenblas
endif

BUILD    ?= build
CHAPTERS := $(sort $(wildcard doc/*.nw))

# Sources are found after tangling (a sub-make), so new chapters need no Makefile edit.
AG_SRC    := $(sort $(wildcard src/autograd/*.c))
DIM_SRC   := $(sort $(filter-out src/dim/main.c,$(wildcard src/dim/*.c)))
HEADERS   := $(wildcard src/autograd/*.h src/dim/*.h)
UNIT_SRC  := $(sort $(wildcard tests/unit/*.c))
GC_SRC    := $(sort $(wildcard tests/gradcheck/*.c))
TEST_HDRS := $(wildcard tests/unit/*.h tests/gradcheck/*.h)

.PHONY: all build tangle check-tangle check test unit gradcheck precision sanitize doc deps \
        deps-fuzz demo install clean

all: tangle
	@$(MAKE) --no-print-directory build

# ---------------------------------------------------------------------------------------------
# Literate workflow
# ---------------------------------------------------------------------------------------------

# Every root chunk named src/... is a file; cpif leaves unchanged files (and their times) alone.
tangle:
	@if command -v notangle >/dev/null 2>&1; then \
	  for root in $$(noroots $(CHAPTERS) | sed -n 's/^<<\(src\/.*\)>>$$/\1/p'); do \
	    mkdir -p "$$(dirname "$$root")"; \
	    notangle -R"$$root" $(CHAPTERS) | cpif "$$root"; \
	  done; \
	else \
	  echo "noweb is not installed: building the committed src/ (make deps installs noweb)"; \
	fi

# Fails, naming the file, when the committed src/ differs from what the chapters tangle to,
# when a file under src/ comes from no chapter, or when a chunk is defined but never used.
check-tangle:
	@command -v notangle >/dev/null 2>&1 || { echo "check-tangle needs noweb (make deps)"; exit 1; }
	@status=0; tmp=$$(mktemp); \
	roots=$$(noroots $(CHAPTERS) | sed 's/^<<\(.*\)>>$$/\1/'); \
	for root in $$roots; do \
	  case "$$root" in \
	    src/*) notangle -R"$$root" $(CHAPTERS) > "$$tmp"; \
	           if ! cmp -s "$$tmp" "$$root"; then \
	             echo "check-tangle: $$root differs from what doc/*.nw tangles to (edit the book, run make)"; \
	             status=1; fi ;; \
	    *) echo "check-tangle: chunk <<$$root>> is defined but never used"; status=1 ;; \
	  esac; \
	done; \
	for f in $$(find src -type f | sort); do \
	  if ! printf '%s\n' $$roots | grep -qx "$$f"; then \
	    echo "check-tangle: $$f comes from no chapter (a root chunk <<$$f>>= in doc/*.nw)"; status=1; fi; \
	done; \
	rm -f "$$tmp"; \
	if [ $$status = 0 ]; then echo "check-tangle: src/ matches doc/*.nw"; fi; \
	exit $$status

# ---------------------------------------------------------------------------------------------
# Builds: float (the default), double (gradient checks), asan (sanitizers, double)
# ---------------------------------------------------------------------------------------------

CFLAGS_float  := $(CFLAGS_COMMON) $(OPT)
CFLAGS_double := $(CFLAGS_COMMON) $(OPT) -DAG_DOUBLE
CFLAGS_asan   := $(CFLAGS_COMMON) -O1 -g -DAG_DOUBLE -fsanitize=address,undefined \
                 -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS_asan  := -fsanitize=address,undefined

define variant
$(BUILD)/$(1)/%.o: %.c $(HEADERS) $(TEST_HDRS)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS_$(1)) $(CHECK_CFLAGS) -c $$< -o $$@

$(BUILD)/$(1)/libdim.a: $(AG_SRC:%.c=$(BUILD)/$(1)/%.o) $(DIM_SRC:%.c=$(BUILD)/$(1)/%.o)
	@rm -f $$@
	$$(AR) rcs $$@ $$^

$(BUILD)/$(1)/dim: $(BUILD)/$(1)/src/dim/main.o $(BUILD)/$(1)/libdim.a
	$$(CC) $$(CFLAGS_$(1)) $$(LDFLAGS_$(1)) $$^ $(LDLIBS) -o $$@

$(BUILD)/$(1)/unit: $(UNIT_SRC:%.c=$(BUILD)/$(1)/%.o) $(BUILD)/$(1)/libdim.a
	$$(CC) $$(CFLAGS_$(1)) $$(LDFLAGS_$(1)) $$^ $(CHECK_LIBS) $(LDLIBS) -o $$@

$(BUILD)/$(1)/gradcheck: $(GC_SRC:%.c=$(BUILD)/$(1)/%.o) $(BUILD)/$(1)/libdim.a
	$$(CC) $$(CFLAGS_$(1)) $$(LDFLAGS_$(1)) $$^ $(LDLIBS) -o $$@
endef

$(eval $(call variant,float))
$(eval $(call variant,double))
$(eval $(call variant,asan))

build: $(BUILD)/float/dim
	@cp $(BUILD)/float/dim $(BUILD)/dim

# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------

check: tangle
	@$(MAKE) --no-print-directory check-tangle
	@$(MAKE) --no-print-directory test
	@$(MAKE) --no-print-directory doc

test: build unit gradcheck precision sanitize

# The float run also drives the dim program itself on bad input (tests/unit/test_cli.c).
unit: $(BUILD)/float/unit $(BUILD)/double/unit $(BUILD)/float/dim
	@echo "== unit tests, float build (with the dim program's bad-input tests)"
	@DIM_BIN=$(BUILD)/float/dim $(BUILD)/float/unit
	@echo "== unit tests, double build"; $(BUILD)/double/unit

gradcheck: $(BUILD)/double/gradcheck
	@echo "== gradient checks, double build"; $(BUILD)/double/gradcheck

# The float build's forward results must agree with the double build's on the same inputs.
precision: $(BUILD)/float/gradcheck $(BUILD)/double/gradcheck
	@echo "== float build against double build"
	@$(BUILD)/float/gradcheck --dump $(BUILD)/float/forward.txt
	@$(BUILD)/double/gradcheck --dump $(BUILD)/double/forward.txt
	@$(BUILD)/double/gradcheck --compare $(BUILD)/float/forward.txt $(BUILD)/double/forward.txt

sanitize: $(BUILD)/asan/unit $(BUILD)/asan/gradcheck
	@echo "== unit tests and gradient checks under AddressSanitizer and UBSan"
	@ASAN_OPTIONS=detect_leaks=1 $(BUILD)/asan/unit
	@ASAN_OPTIONS=detect_leaks=1 $(BUILD)/asan/gradcheck

# ---------------------------------------------------------------------------------------------
# The book
# ---------------------------------------------------------------------------------------------

doc: $(BUILD)/doc/dim.pdf

$(BUILD)/doc/dim.tex: $(CHAPTERS)
	@mkdir -p $(BUILD)/doc
	noweave -delay -index -autodefs c $(CHAPTERS) > $@.tmp
	@# noweave may put the index entries before our own preamble; they belong after it.
	@grep '^\\nwixlogsorted' $@.tmp > $@.index || true
	@grep -v '^\\nwixlogsorted' $@.tmp | \
	  awk -v index_file=$@.index '{ print } /^\\begin\{document\}/ && !done { \
	    while ((getline line < index_file) > 0) print line; done = 1 }' > $@
	@rm -f $@.tmp $@.index

# pdflatex is rerun until the cross references settle; a book that does not build fails.
$(BUILD)/doc/dim.pdf: $(BUILD)/doc/dim.tex
	@cd $(BUILD)/doc && for pass in 1 2 3 4 5; do \
	  pdflatex -interaction=nonstopmode -halt-on-error dim.tex > dim.build.log 2>&1 \
	    || { tail -n 30 dim.build.log; echo "make doc: pdflatex failed ($(BUILD)/doc/dim.build.log)"; exit 1; }; \
	  grep -q 'Rerun to get\|There were undefined references\|Label(s) may have changed' dim.log || break; \
	done; \
	if grep -q 'There were undefined references' dim.log; then \
	  grep 'undefined' dim.log | head; echo "make doc: undefined references"; exit 1; fi
	@echo "make doc: $(BUILD)/doc/dim.pdf"

# ---------------------------------------------------------------------------------------------
# Installing what is needed, the demo, install
# ---------------------------------------------------------------------------------------------

DEB_PACKAGES := gcc make pkg-config check zlib1g-dev noweb graphviz gnuplot-nox \
                texlive-latex-base texlive-latex-recommended texlive-fonts-recommended \
                lmodern

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg -s "$$p" >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "make deps: all Debian packages are installed"; exit 0; fi; \
	echo "make deps: installing$$missing"; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi; \
	$$sudo apt-get update -q && \
	DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends $$missing

demo: all
	$(BUILD)/dim mlp

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BUILD)/dim $(DESTDIR)$(PREFIX)/bin/dim

clean:
	rm -rf build

# ---------------------------------------------------------------------------------------------
# Fuzzing: make fuzz [FUZZ_SECONDS=30]
# ---------------------------------------------------------------------------------------------
# libFuzzer targets for the IDX, CIFAR-10 and checkpoint readers (tests/fuzz), built with clang
# under AddressSanitizer and UBSan, each run for FUZZ_SECONDS on a corpus that starts from seeds
# the build writes (tests/fuzz/make_seeds.c) and from the committed regression inputs. Findings
# are written to $(BUILD)/fuzz/findings/TARGET-crash-... and fail the target.
# OMP_NUM_THREADS=1: idle OpenMP threads spin between parallel regions and slow the targets
# a hundredfold. The fuzz build leaves out -Werror: clang at -O1 remarks on loops it did not
# vectorise.

FUZZ_CC       ?= clang
FUZZ_SECONDS  ?= 30
FUZZ_PACKAGES := clang libclang-rt-14-dev libomp-14-dev
FUZZ_TARGETS  := idx cifar checkpoint
FUZZ_DIR      := $(BUILD)/fuzz
FUZZ_CFLAGS   := $(filter-out -Werror,$(WARN)) $(DEFS) -fopenmp -g -O1 -fno-omit-frame-pointer \
                 -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_OPTIONS  := -malloc_limit_mb=256 -rss_limit_mb=2048 -timeout=30 -print_final_stats=1

$(FUZZ_DIR)/%.o: %.c $(HEADERS) $(wildcard tests/fuzz/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/libdim.a: $(AG_SRC:%.c=$(FUZZ_DIR)/%.o) $(DIM_SRC:%.c=$(FUZZ_DIR)/%.o)
	@rm -f $@
	$(AR) rcs $@ $^

.SECONDARY: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/tests/fuzz/fuzz_%.o) $(FUZZ_DIR)/tests/fuzz/make_seeds.o

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/tests/fuzz/fuzz_%.o $(FUZZ_DIR)/libdim.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ $(LDLIBS) -o $@

$(FUZZ_DIR)/make_seeds: $(FUZZ_DIR)/tests/fuzz/make_seeds.o $(FUZZ_DIR)/libdim.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) $^ $(LDLIBS) -o $@

deps-fuzz:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(FUZZ_PACKAGES)"

.PHONY: fuzz
fuzz: tangle
	@command -v $(FUZZ_CC) >/dev/null || { echo "make fuzz needs $(FUZZ_CC): make deps-fuzz"; exit 1; }
	@$(MAKE) --no-print-directory $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%) $(FUZZ_DIR)/make_seeds
	@OMP_NUM_THREADS=1 $(FUZZ_DIR)/make_seeds $(FUZZ_DIR)/seeds
	@mkdir -p $(FUZZ_DIR)/findings
	@status=0; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t tests/fuzz/regressions/$$t; \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	  if OMP_NUM_THREADS=1 $(FUZZ_DIR)/fuzz_$$t $(FUZZ_OPTIONS) -max_total_time=$(FUZZ_SECONDS) \
	       -artifact_prefix=$(FUZZ_DIR)/findings/$$t- \
	       $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/seeds/$$t tests/fuzz/regressions/$$t \
	       > $(FUZZ_DIR)/fuzz_$$t.log 2>&1; then \
	    grep -h 'stat::number_of_executed_units\|stat::new_units_added' $(FUZZ_DIR)/fuzz_$$t.log; \
	  else \
	    status=1; grep -h -A12 '^==.*ERROR\|^SUMMARY\|Test unit written' $(FUZZ_DIR)/fuzz_$$t.log; \
	    echo "fuzz_$$t FAILED: the whole log is $(FUZZ_DIR)/fuzz_$$t.log"; \
	  fi; \
	done; exit $$status
