# dim -- Deep InfoMax in C, a literate program.
#
#   make            tangle the book (when noweb is installed) and build build/dim
#   make check      every test: tangle check, unit tests (float and double), gradient checks,
#                   float-vs-double agreement, the sanitizer build, and the book
#   make doc        weave the book into build/doc/dim.pdf
#   make deps       install the Debian packages the project needs (as root or with sudo)
#   make demo       the main job: train DIM(L) on Fashion-MNIST, probe it beside baselines, plot
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
	@cp $(BUILD)/float/dim $(BUILD)/dim.tmp && mv -f $(BUILD)/dim.tmp $(BUILD)/dim

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

# make doc       $(BUILD)/doc/dim.pdf, the book. It fails, printing each one, on an undefined
#                reference or citation, a label defined twice, and a box that sticks out of the
#                page by more than DOC_OVERFULL_PT points (named with its chapter).
# make doc-html  $(BUILD)/doc/dim.html, the same chapters as one HTML page for a browser.
#
# Figures are drawn at build time into $(BUILD)/doc/figures/, and the chapters include each one
# only when it is there (\bookfigure, doc/00-book.nw): a figure whose data or tool is missing
# leaves the command that would draw it in the book, instead of breaking the book.
#   graph-EST-MODE.pdf  a term of Eq. 8 in the engine's own drawing (doc/25-graph.nw):
#                       $(BUILD)/dim graph --estimator EST --mode MODE, then dot -Tpdf
#   NAME.pdf            an architecture, from doc/figures/NAME.dot by dot -Tpdf
#   mi_bench.png        the estimator lab, from experiments/results/mi_bench/ by gnuplot
#   RUN-train.pdf       training curves, from experiments/results/RUN/train.tsv by gnuplot
#   RUN-probes.pdf      probe accuracies, from experiments/results/RUN/eval.tsv by gnuplot
#                       (RUN may be a path: table1/dim-g gives table1/dim-g-train.pdf)
#   table1.pdf          the paper's Table 1 in our setting, from experiments/results/table1/
#   table1.tex          the same numbers as a LaTeX table, by awk

DOC_DIR         := $(BUILD)/doc
FIG_DIR         := $(DOC_DIR)/figures
RESULTS         := experiments/results
DOC_OVERFULL_PT ?= 5

# The book is read in the order of the ideas: the bounds (doc/22) before the critics that feed
# them (doc/21). noweave weaves in this order; notangle keeps the order of the file names.
ifeq ($(filter doc/21-critics.nw doc/22-bounds.nw,$(CHAPTERS)),doc/21-critics.nw doc/22-bounds.nw)
  BOOK_CHAPTERS := $(patsubst doc/21-critics.nw,doc/22-bounds.nw doc/21-critics.nw,\
                              $(filter-out doc/22-bounds.nw,$(CHAPTERS)))
else
  BOOK_CHAPTERS := $(CHAPTERS)
endif

DOC_GRAPHS  := dv-local jsd-local infonce-local jsd-global prior
MIBENCH_TSV := $(wildcard $(RESULTS)/mi_bench/mi_bench_steps_every10.tsv)
TABLE1_TSV  := $(wildcard $(RESULTS)/table1/table1.tsv)
DOC_FIGURES := $(DOC_GRAPHS:%=$(FIG_DIR)/graph-%.pdf) \
               $(patsubst doc/figures/%.dot,$(FIG_DIR)/%.pdf,$(wildcard doc/figures/*.dot)) \
               $(if $(MIBENCH_TSV),$(FIG_DIR)/mi_bench.png) \
               $(patsubst $(RESULTS)/%/train.tsv,$(FIG_DIR)/%-train.pdf,\
                          $(wildcard $(RESULTS)/*/train.tsv)) \
               $(patsubst $(RESULTS)/%/eval.tsv,$(FIG_DIR)/%-probes.pdf,\
                          $(wildcard $(RESULTS)/*/eval.tsv)) \
               $(patsubst $(RESULTS)/%/train.tsv,$(FIG_DIR)/%-train.pdf,\
                          $(wildcard $(RESULTS)/table1/*/train.tsv)) \
               $(if $(TABLE1_TSV),$(FIG_DIR)/table1.pdf $(FIG_DIR)/table1.tex)

# $(call doc_tool,TOOL,COMMAND,TARGET): run COMMAND, or say why TARGET is left out.
doc_tool = if command -v $(1) >/dev/null 2>&1; then $(2); \
           else echo "make doc: $(1) is not installed (make deps); $(3) is left out"; fi

doc: $(DOC_DIR)/dim.pdf

$(DOC_DIR)/dim.tex: $(BOOK_CHAPTERS)
	@mkdir -p $(DOC_DIR)
	noweave -delay -index -autodefs c $(BOOK_CHAPTERS) > $@.tmp
	@# noweave may put the index entries before our own preamble; they belong after it.
	@grep '^\\nwixlogsorted' $@.tmp > $@.index || true
	@grep -v '^\\nwixlogsorted' $@.tmp | \
	  awk -v index_file=$@.index '{ print } /^\\begin\{document\}/ && !done { \
	    while ((getline line < index_file) > 0) print line; done = 1 }' > $@
	@rm -f $@.tmp $@.index

# The engine draws its own tape: graph-EST-MODE.pdf; graph-prior.pdf for the prior term (which
# no estimator enters). The DOT text is kept beside the drawing.
$(FIG_DIR)/graph-%.pdf: $(BUILD)/float/dim
	@mkdir -p $(FIG_DIR)
	@name=$*; case $$name in \
	  *-*) estimator=$${name%-*}; mode=$${name##*-} ;; \
	  *) estimator=jsd; mode=$$name ;; \
	esac; \
	$(BUILD)/float/dim graph --estimator $$estimator --mode $$mode > $(FIG_DIR)/graph-$*.dot \
	  || { echo "make doc: dim graph --estimator $$estimator --mode $$mode failed"; exit 1; }; \
	$(call doc_tool,dot,dot -Tpdf -Granksep=0.2 -Gnodesep=0.15 $(FIG_DIR)/graph-$*.dot -o $@,$@)

$(FIG_DIR)/%.pdf: doc/figures/%.dot
	@mkdir -p $(FIG_DIR)
	@$(call doc_tool,dot,dot -Tpdf $< -o $@,$@)

$(FIG_DIR)/mi_bench.png: $(MIBENCH_TSV) experiments/mi_bench.gp
	@mkdir -p $(FIG_DIR)
	@$(call doc_tool,gnuplot,gnuplot -e "steps='$<'; out='$(FIG_DIR)/mi_bench'; batch=64" \
	  experiments/mi_bench.gp,$@)

$(FIG_DIR)/%-train.pdf: $(RESULTS)/%/train.tsv doc/figures/train.gp
	@mkdir -p $(@D)
	@$(call doc_tool,gnuplot,gnuplot -e "data='$<'; out='$@'" doc/figures/train.gp,$@)

$(FIG_DIR)/%-probes.pdf: $(RESULTS)/%/eval.tsv doc/figures/probes.gp
	@mkdir -p $(@D)
	@$(call doc_tool,gnuplot,gnuplot -e "data='$<'; out='$@'" doc/figures/probes.gp,$@)

# One rule for both formats: table1.gp picks the terminal from the extension of out.
$(FIG_DIR)/table1.pdf $(FIG_DIR)/table1.svg: $(TABLE1_TSV) doc/figures/table1.gp
	@mkdir -p $(FIG_DIR)
	@$(call doc_tool,gnuplot,gnuplot -e "data='$<'; out='$@'" doc/figures/table1.gp,$@)

# The rows of the table, in percent, for \input by doc/35-experiments.nw.
$(FIG_DIR)/table1.tex: $(TABLE1_TSV)
	@mkdir -p $(FIG_DIR)
	@awk -F '\t' 'NR > 1 { printf "%s, %d epochs", $$2, $$3; \
	  for (i = 4; i <= 9; i++) printf " & %.2f", 100 * $$i; printf " \\\\\n" }' $< > $@

# pdflatex runs at least twice and until the cross references settle; a book that does not
# build fails. Then the checks: dim.log's line numbers are dim.tex's, and dim.tex marks where
# each chapter starts (\nwfilename), so each overfull box is reported with its chapter.
$(DOC_DIR)/dim.pdf: $(DOC_DIR)/dim.tex $(DOC_FIGURES)
	@cd $(DOC_DIR) && for pass in 1 2 3 4 5; do \
	  pdflatex -interaction=nonstopmode -halt-on-error dim.tex > dim.build.log 2>&1 \
	    || { tail -n 30 dim.build.log; echo "make doc: pdflatex failed ($(DOC_DIR)/dim.build.log)"; exit 1; }; \
	  if [ $$pass -ge 2 ] && ! grep -q 'Rerun to get\|Label(s) may have changed' dim.log; then break; fi; \
	done
	@cd $(DOC_DIR) && status=0; \
	if grep -q 'There were undefined references\|There were multiply-defined labels' dim.log; then \
	  grep -E "^LaTeX Warning: (Reference|Citation) |^LaTeX Warning: Label .* multiply" dim.log \
	    | sort -u; \
	  echo "make doc: undefined references or citations, or labels defined twice (see above)"; status=1; fi; \
	awk -v limit=$(DOC_OVERFULL_PT) ' \
	  FNR == NR { line = $$0; \
	    while ((i = index(line, "\\nwfilename{")) > 0) { \
	      line = substr(line, i + 12); chapter = substr(line, 1, index(line, "}") - 1) } \
	    at[FNR] = chapter; next } \
	  /^Overfull \\[hv]box \(/ { amount = $$0; sub(/^[^(]*\(/, "", amount); sub(/pt.*/, "", amount); \
	    if (amount + 0 <= limit) next; \
	    where = $$0; sub(/.* lines? /, "", where); sub(/--.*/, "", where); \
	    chapter = where ~ /^[0-9]+$$/ ? at[where + 0] : "dim.tex"; \
	    getline context; print chapter ": " $$0; print "    " context; n++ } \
	  END { exit n > 0 }' dim.tex dim.log \
	  || { echo "make doc: boxes wider than $(DOC_OVERFULL_PT)pt stick out of the page (see above)"; status=1; }; \
	if [ $$status != 0 ]; then echo "make doc: the book has the faults above"; exit 1; fi; \
	echo "make doc: $(DOC_DIR)/dim.pdf, $$(sed -n 's/^Output written on dim.pdf (\([0-9]*\) pages.*/\1/p' \
	  dim.log) pages; $$(grep -c '^Overfull' dim.log) overfull boxes, none wider than $(DOC_OVERFULL_PT)pt"

# ---- make doc-html ----
# noweave's HTML of the same chapters. The filter DOC_HTML_AWK (below) turns the LaTeX of the
# prose into HTML and leaves code chunks and quoted code to noweave; mathematics stays TeX, and
# is typeset in the browser by MathJax when Debian's libjs-mathjax is installed (offline: the
# page points at /usr/share/javascript/mathjax). noweb's htmltoc adds the table of contents.
# The figures are the SVG versions of the book's.
MATHJAX    := /usr/share/javascript/mathjax/MathJax.js
DOC_SVGS   := $(DOC_GRAPHS:%=$(FIG_DIR)/graph-%.svg) \
              $(patsubst doc/figures/%.dot,$(FIG_DIR)/%.svg,$(wildcard doc/figures/*.dot)) \
              $(patsubst $(FIG_DIR)/%.pdf,$(FIG_DIR)/%.svg,$(filter %-train.pdf %-probes.pdf,$(DOC_FIGURES)))

.PHONY: doc-html
doc-html: $(DOC_DIR)/dim.html

$(FIG_DIR)/graph-%.svg: $(FIG_DIR)/graph-%.pdf
	@$(call doc_tool,dot,dot -Tsvg -Granksep=0.2 -Gnodesep=0.15 $(FIG_DIR)/graph-$*.dot -o $@,$@)

$(FIG_DIR)/%.svg: doc/figures/%.dot
	@mkdir -p $(FIG_DIR)
	@$(call doc_tool,dot,dot -Tsvg $< -o $@,$@)

$(FIG_DIR)/%-train.svg: $(RESULTS)/%/train.tsv doc/figures/train.gp
	@mkdir -p $(@D)
	@$(call doc_tool,gnuplot,gnuplot -e "data='$<'; out='$@'" doc/figures/train.gp,$@)

$(FIG_DIR)/%-probes.svg: $(RESULTS)/%/eval.tsv doc/figures/probes.gp
	@mkdir -p $(@D)
	@$(call doc_tool,gnuplot,gnuplot -e "data='$<'; out='$@'" doc/figures/probes.gp,$@)

$(DOC_DIR)/dim.html: $(BOOK_CHAPTERS) $(DOC_SVGS) $(if $(MIBENCH_TSV),$(FIG_DIR)/mi_bench.png) \
                    $(if $(TABLE1_TSV),$(FIG_DIR)/table1.tex $(FIG_DIR)/table1.svg)
	@mkdir -p $(DOC_DIR)
	@printf '%s\n' "$$DOC_HTML_AWK" > $(DOC_DIR)/html.awk
	@{ printf '%s\n' '<!DOCTYPE html>' '<html><head><meta charset="utf-8">' \
	    '<title>dim: Deep InfoMax in C, a literate program</title>' \
	    '<style>body { max-width: 60em; margin: auto; padding: 1em; font-family: serif; }' \
	    'pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; }' \
	    'table { border-collapse: collapse; } td { padding: 0.1em 0.6em; vertical-align: top; }' \
	    'div.figure { margin: 1em 0; text-align: center; } div.figure img { max-width: 100%; }' \
	    'div.minipage { display: inline-block; width: 46%; } div.center { text-align: center; }' \
	    'p.caption { font-size: 90%; text-align: left; } h1.part { text-align: center; }</style>'; \
	  if [ -f $(MATHJAX) ]; then printf '%s\n' \
	    '<script type="text/x-mathjax-config">MathJax.Hub.Config({tex2jax: {inlineMath:' \
	    "[['\$$','\$$']], processEscapes: true}, TeX: {Macros: {E: '\\\\mathbb{E}'," \
	    "softplus: '\\\\operatorname{sp}', R: '\\\\mathbb{R}'}}});</script>" \
	    '<script src="file://$(MATHJAX)?config=TeX-AMS_HTML"></script>'; fi; \
	  printf '%s\n' '</head><body>'; \
	  if [ ! -f $(MATHJAX) ]; then printf '%s\n' '<p><i>The mathematics below is in TeX' \
	    'notation; with Debian'"'"'s libjs-mathjax installed, make doc-html typesets it.</i></p>'; fi; \
	  noweave -html -n -filter "awk -f $(DOC_DIR)/html.awk" -index -autodefs c $(BOOK_CHAPTERS) \
	    | if command -v htmltoc >/dev/null 2>&1; then htmltoc -12; else cat; fi; \
	  printf '%s\n' '</body></html>'; } > $@.tmp
	@mv $@.tmp $@
	@echo "make doc-html: $@"

define DOC_HTML_AWK
function esc(s) {
    gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); gsub(/>/, "\\&gt;", s)
    return s
}
function protect(html) { nprot++; prot[nprot] = html; return "\003" nprot "\004" }
function unprotect(s,   k) {
    while (match(s, /\003[0-9]+\004/)) {
        k = substr(s, RSTART + 1, RLENGTH - 2)
        s = substr(s, 1, RSTART - 1) prot[k] substr(s, RSTART + RLENGTH)
    }
    return s
}
# The end of the brace group that opens at s[i] ("{"), or 0.
function group_end(s, i,   depth, c) {
    depth = 0
    for (; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == "\\") { i++; continue }
        if (c == "{") depth++
        else if (c == "}" && --depth == 0) return i
    }
    return 0
}
# Replaces \name[opt]{a1}..{an} by what render() makes of it, everywhere in s.
function command(s, name, n,   out, i, j, k, e, rest, args) {
    out = ""
    while ((i = index(s, "\\" name)) > 0) {
        rest = substr(s, i + length(name) + 1)
        if (rest ~ /^[A-Za-z]/) {
            out = out substr(s, 1, i + length(name)); s = rest; continue
        }
        if (substr(rest, 1, 1) == "*") rest = substr(rest, 2)
        if (substr(rest, 1, 1) == "[") { j = index(rest, "]"); rest = substr(rest, j + 1) }
        split("", args)
        for (k = 1; k <= n; k++) {
            sub(/^[ \n]*/, "", rest)
            if (substr(rest, 1, 1) != "{" || (e = group_end(rest, 1)) == 0) break
            args[k] = substr(rest, 2, e - 2); rest = substr(rest, e + 1)
        }
        out = out substr(s, 1, i - 1) render(name, args)
        s = rest
    }
    return out s
}
function label_text(x) { sub(/^[a-z]+:/, "", x); gsub(/-/, " ", x); return x }
function figure_src(f) { sub(/\.pdf$$/, ".svg", f); return f }
function cite(list,   keys, n, k, r) {
    n = split(list, keys, ","); r = "["
    for (k = 1; k <= n; k++)
        r = r (k > 1 ? ", " : "") "<a href=\"#cite-" keys[k] "\">" keys[k] "</a>"
    return r "]"
}
function render(name, a) {
    if (name == "part") return "<h1 class=\"part\">" a[1] "</h1>"
    if (name == "chapter") return "<h1>" a[1] "</h1>"
    if (name == "section") return "<h2>" a[1] "</h2>"
    if (name == "subsection") return "<h3>" a[1] "</h3>"
    if (name == "paragraph") return "<b>" a[1] "</b> "
    if (name == "label") return "<a id=\"" a[1] "\"></a>"
    if (name == "ref") return "<a href=\"#" a[1] "\">[" label_text(a[1]) "]</a>"
    if (name == "cite") return cite(a[1])
    if (name == "bibitem") return "<p id=\"cite-" a[1] "\">[" a[1] "] "
    if (name == "url") return "<a href=\"" a[1] "\">" a[1] "</a>"
    if (name == "emph" || name == "textit") return "<em>" a[1] "</em>"
    if (name == "textbf") return "<b>" a[1] "</b>"
    if (name == "texttt") return "<code>" a[1] "</code>"
    if (name == "caption") return "<p class=\"caption\">" a[1] "</p>"
    if (name == "bookfigure") return "<img src=\"figures/" figure_src(a[1]) "\" alt=\"\">"
    if (name == "includegraphics") return "<img src=\"" figure_src(a[1]) "\" alt=\"\">"
    if (name == "IfFileExists" && index(a[2], "dimtableonerows")) return ""
    if (name == "IfFileExists" || name == "texorpdfstring") return a[2]
    if (name == "fbox" || name == "mbox") return a[1]
    if (name == "parbox") return a[2]
    return ""  # \addcontentsline, \renewcommand, \vspace, \hspace
}
# $$...$$, \[...\] and the display environments become protected TeX for MathJax.
function math(s,   out, i, j, c, env, e) {
    out = ""
    while (match(s, /\$$|\\\[|\\begin\{(align|multline|equation|gather)\*?\}/)) {
        i = RSTART; c = substr(s, i, RLENGTH)
        if (c == "$$") {
            if ((e = index(substr(s, i + 1), "$$")) == 0) break
            j = i + e
        } else if (c == "\\[") {
            if ((e = index(substr(s, i + 2), "\\]")) == 0) break
            j = i + e + 2
        } else {
            env = substr(c, 7)
            if ((e = index(substr(s, i), "\\end" env)) == 0) break
            j = i + e + length(env) + 2
        }
        out = out substr(s, 1, i - 1) protect(esc(substr(s, i, j - i + 1)))
        s = substr(s, j + 1)
    }
    return out s
}
function verbatim(s,   out, i, j, d, body) {
    out = ""
    while ((i = index(s, "\\begin{verbatim}")) > 0 && (j = index(s, "\\end{verbatim}")) > 0) {
        body = substr(s, i + 16, j - i - 16); sub(/^\n/, "", body)
        out = out substr(s, 1, i - 1) protect("<pre class=\"listing\">" esc(body) "</pre>")
        s = substr(s, j + 14)
    }
    s = out s; out = ""
    while ((i = index(s, "\\verb")) > 0) {
        d = substr(s, i + 5, 1)
        if ((j = index(substr(s, i + 6), d)) == 0) break
        out = out substr(s, 1, i - 1) protect("<code>" esc(substr(s, i + 6, j - 1)) "</code>")
        s = substr(s, i + 6 + j)
    }
    return out s
}
function tables(s,   out, i, j, e, body, rows, cells, n, m, r, k, html) {
    out = ""
    while ((i = index(s, "\\begin{tabular}")) > 0 && (j = index(s, "\\end{tabular}")) > 0) {
        body = substr(s, i + 15, j - i - 15)
        if (substr(body, 1, 1) == "{") { e = group_end(body, 1); body = substr(body, e + 1) }
        gsub(/\\(top|mid|bottom)rule/, "", body)
        n = split(body, rows, /\\\\/); html = "<table>"
        for (r = 1; r <= n; r++) {
            if (rows[r] ~ /^[ \n]*$$/) continue
            m = split(rows[r], cells, /&amp;/); html = html "<tr>"
            for (k = 1; k <= m; k++) html = html "<td>" cells[k] "</td>"
            html = html "</tr>"
        }
        out = out substr(s, 1, i - 1) html "</table>"
        s = substr(s, j + 13)
    }
    return out s
}
# The rows of Table 1 (doc/35-experiments.nw), which the PDF reads with TeX's \\input.
function table1_rows(s,   rows, line, i) {
    if ((i = index(s, "\n\\dimtableonerows\n")) == 0) return s
    rows = ""
    while ((getline line < "$(FIG_DIR)/table1.tex") > 0) rows = rows esc(line) "\n"
    close("$(FIG_DIR)/table1.tex")
    return substr(s, 1, i) rows substr(s, i + 18)
}
function uncomment(s,   n, lines, k, c, t, out) {
    n = split(s, lines, "\n"); out = ""
    for (k = 1; k <= n; k++) {
        t = lines[k]
        for (c = 1; c <= length(t); c++) {
            if (substr(t, c, 1) == "\\") { c++; continue }
            if (substr(t, c, 1) == "%") { t = substr(t, 1, c - 1); break }
        }
        out = out t (k < n ? "\n" : "")
    }
    return out
}
function convert(s,   i, k, names) {
    if (!started) {  # the preamble, up to the table of contents, is LaTeX's alone
        if ((i = index(s, "\\tableofcontents")) == 0) return ""
        s = protect("<h1 class=\"title\">dim: Deep InfoMax in C</h1>\n" \
                    "<p class=\"subtitle\">a literate program</p>\n<tableofcontents>\n") \
            substr(s, i + 16)
        started = 1
    }
    if ((i = index(s, "\\end{document}")) > 0) s = substr(s, 1, i - 1)
    s = esc(math(verbatim(uncomment(s))))
    gsub(/\\&amp;/, "\\&amp;", s)
    s = table1_rows(s)
    s = tables(s)
    s = command(s, "bookfigure", 2); s = command(s, "includegraphics", 1)
    s = command(s, "IfFileExists", 3); s = command(s, "texorpdfstring", 2)
    s = command(s, "addcontentsline", 3); s = command(s, "renewcommand", 2)
    s = command(s, "parbox", 2); s = command(s, "pagenumbering", 1)
    split("caption part chapter section subsection paragraph label ref cite bibitem url " \
          "emph textit textbf texttt fbox mbox vspace hspace", names, " ")
    for (k = 1; k in names; k++) s = command(s, names[k], 1)
    gsub(/\\begin\{itemize\}/, "<ul>", s); gsub(/\\end\{itemize\}/, "</ul>", s)
    gsub(/\\begin\{enumerate\}/, "<ol>", s); gsub(/\\end\{enumerate\}/, "</ol>", s)
    gsub(/\\item/, "<li>", s)
    gsub(/\\begin\{quote\}/, "<blockquote>", s); gsub(/\\end\{quote\}/, "</blockquote>", s)
    gsub(/\\begin\{center\}/, "<div class=\"center\">", s); gsub(/\\end\{center\}/, "</div>", s)
    gsub(/\\begin\{(figure|table)\}(\[[a-z]*\])?/, "<div class=\"figure\">", s)
    gsub(/\\end\{(figure|table)\}/, "</div>", s)
    gsub(/\\begin\{minipage\}(\[[a-z]*\])?\{[^}]*\}/, "<div class=\"minipage\">", s)
    gsub(/\\end\{minipage\}/, "</div>", s)
    gsub(/\\begin\{thebibliography\}\{[^}]*\}/, "<h1>Bibliography</h1>", s)
    gsub(/\\end\{thebibliography\}/, "", s)
    gsub(/\\nowebchunks/, "\n<h2>Chunks</h2>\n<nowebchunks>\n", s)
    gsub(/\\nowebindex/, "\n<h2>Identifiers</h2>\n<nowebindex>\n", s)
    gsub(/---/, "\\&mdash;", s); gsub(/--/, "\\&ndash;", s)
    gsub(/``/, "\\&ldquo;", s); gsub(/''/, "\\&rdquo;", s)
    gsub(/\\"a/, "\\&auml;", s); gsub(/\\"o/, "\\&ouml;", s); gsub(/\\"u/, "\\&uuml;", s)
    gsub(/~/, "\\&nbsp;", s); gsub(/\\,/, "\\&thinsp;", s); gsub(/\\\\(\[[^]]*\])?/, "<br>", s)
    gsub(/\\_/, "_", s); gsub(/\\%/, "%", s); gsub(/\\#/, "#", s); gsub(/\\ /, " ", s)
    gsub(/\\[A-Za-z]+\*?/, "", s); gsub(/[{}]/, "", s)
    gsub(/\n[ \t]*\n[ \t\n]*/, "\n<p>\n", s)
    return unprotect(s)
}
# Back to noweb's pipeline: a line of text per line, the quoted code where it was.
function emit(s,   n, lines, k, t, i, j) {
    n = split(s, lines, "\n")
    for (k = 1; k <= n; k++) {
        t = lines[k]
        while ((i = index(t, "\001")) > 0) {
            j = index(t, "\002")
            if (i > 1) print "@text " substr(t, 1, i - 1)
            printf "%s", raw[substr(t, i + 1, j - i - 1)]
            t = substr(t, j + 1)
        }
        if (t != "") print "@text " t
        if (k < n) print "@nl"
    }
}
function keep(line) { nraw++; raw[nraw] = line "\n"; buf = buf "\001" nraw "\002" }
/^@begin docs / { indocs = 1; buf = ""; print; next }
/^@end docs / { emit(convert(buf)); indocs = 0; print; next }
indocs && inquote { raw[nraw] = raw[nraw] $$0 "\n"; if ($$0 == "@endquote") inquote = 0; next }
indocs && $$0 == "@quote" { keep($$0); inquote = 1; next }
indocs && /^@text / { buf = buf substr($$0, 7); next }
indocs && $$0 == "@nl" { buf = buf "\n"; next }
indocs { keep($$0); next }
{ print }
endef
export DOC_HTML_AWK

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

# The main job: train DIM(L) with infoNCE on Fashion-MNIST for 2 epochs, probe it beside two
# baselines, draw the plots (experiments/demo.sh). The dataset comes from Debian's
# dataset-fashion-mnist; where it cannot be installed the demo says so and uses shapes.
demo: all
	@dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || \
	  $(MAKE) --no-print-directory deps DEB_PACKAGES=dataset-fashion-mnist || \
	  echo "make demo: could not install dataset-fashion-mnist"
	DIM=$(BUILD)/dim OUT=$(BUILD)/demo experiments/demo.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BUILD)/dim $(DESTDIR)$(PREFIX)/bin/dim

clean:
	rm -rf $(BUILD)

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

# ---------------------------------------------------------------------------------------------
# Speed and the PyTorch twin (issue 6): make bench, make crosscheck
# ---------------------------------------------------------------------------------------------
# make bench: our GEMM against OpenBLAS's sgemm (libopenblas.so.0, loaded at run time if it is
# installed), one DIM training step against the same step in PyTorch (experiments/torch_dim.py,
# where python3-torch is installed), and the peak memory of training; what cannot be measured
# prints n/a and why. BENCH_ARGS passes options (see experiments/bench.c).
# make crosscheck: the engine's bound values, gradients and batch-norm statistics against the
# PyTorch twin's, from the same weights, batch and prior samples, in the float and double builds.
# PYTHON is Debian's interpreter, the one that sees python3-torch.

PYTHON         ?= /usr/bin/python3
BENCH_ARGS     ?=
BENCH_PACKAGES := python3-torch python3-numpy libopenblas0

# --wrap=ag_gemm: the bench records every GEMM call of a training step.
$(BUILD)/float/bench: $(BUILD)/float/experiments/bench.o $(BUILD)/float/libdim.a
	$(CC) $(CFLAGS_float) -Wl,--wrap=ag_gemm $^ $(LDLIBS) -ldl -o $@

$(BUILD)/float/crosscheck: $(BUILD)/float/experiments/crosscheck.o $(BUILD)/float/libdim.a
	$(CC) $(CFLAGS_float) $^ $(LDLIBS) -o $@

$(BUILD)/double/crosscheck: $(BUILD)/double/experiments/crosscheck.o $(BUILD)/double/libdim.a
	$(CC) $(CFLAGS_double) $^ $(LDLIBS) -o $@

.PHONY: bench crosscheck deps-bench
bench: tangle
	@$(MAKE) --no-print-directory $(BUILD)/float/bench
	$(BUILD)/float/bench --python $(PYTHON) --twin experiments/torch_dim.py $(BENCH_ARGS)

crosscheck: tangle
	@$(MAKE) --no-print-directory $(BUILD)/float/crosscheck $(BUILD)/double/crosscheck
	@$(PYTHON) -c 'import torch, numpy' 2>/dev/null || { \
	  echo "make crosscheck needs python3-torch and python3-numpy for $(PYTHON) (make deps-bench)"; \
	  exit 1; }
	@status=0; export OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-passive}; for p in float double; do \
	  echo "== crosscheck, $$p build"; \
	  $(BUILD)/$$p/crosscheck $(BUILD)/$$p/crosscheck.bin && \
	  $(PYTHON) experiments/torch_dim.py crosscheck $(BUILD)/$$p/crosscheck.bin || status=1; \
	  rm -f $(BUILD)/$$p/crosscheck.bin; \
	done; exit $$status

deps-bench:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(BENCH_PACKAGES)"
