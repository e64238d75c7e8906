# Two commands on a fresh clone: `make book` (the main job) and `make test`.
PROFILE ?= fast
# Checked before anything is installed: a one-line error for an unknown profile.
ifeq ($(filter $(PROFILE),fast full paper),)
$(error PROFILE must be fast, full or paper, not '$(PROFILE)')
endif
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed

.PHONY: book test notebooks student install lab classroom-check clean

# Create the virtual environment and install everything (CPU torch wheel first).
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[book,test,zoo,lab]"
	$(PY) -m lva.models install
	touch $(STAMP)

install: $(STAMP)

# The `lab` extra (in the default install too): installed here if an older environment lacks it.
LAB_STAMP := $(VENV)/.installed-lab
$(LAB_STAMP): $(STAMP)
	$(PY) -c "import jupyterlab, jupytext" 2>/dev/null || $(PY) -m pip install --quiet -e ".[lab]"
	touch $(LAB_STAMP)

## JupyterLab on the chapters, offline (notebooks/*.py open as notebooks; student/*.ipynb too).
## Options go through LAB_ARGS, e.g. `make lab LAB_ARGS="--no-browser --port 9000"`.
lab: $(LAB_STAMP)
	$(PY) -m lva.lab $(LAB_ARGS)

## Execute every notebook with papermill, then build the book into _build/html.
## paper: first, before the install, whether this machine can hold the models (system python3, standard library).
book: $(if $(filter paper,$(PROFILE)),paper-memory) $(STAMP)
	$(if $(filter paper,$(PROFILE)),$(PY) -m lva.models.requirements --profile $(PROFILE))
	$(if $(filter full paper,$(PROFILE)),$(PY) -m lva.models install --optional)
	$(PY) -m lva book --profile $(PROFILE)

.PHONY: paper-memory
paper-memory:
	@python3 -I src/lva/models/memory.py --profile $(PROFILE)

## Execute the notebooks without building the book.
notebooks: $(STAMP)
	$(PY) -m lva book --profile $(PROFILE) --no-build

## Student copies of the notebooks (solutions removed, plain Markdown) in student/, each executed as a
## check, and the book without solutions in _build/student-html (from book/chapters: run `make book` first).
student: $(STAMP)
	$(PY) -m lva student --execute --html --profile $(PROFILE)

## Every chapter against a read-only view of the built cache (what a class shares through LVA_CACHE):
## fails if a chapter fails or anything is written to the cache. After `make book`.
classroom-check: $(STAMP)
	$(PY) -m lva.classroom --profile $(PROFILE)

## Lint and format checks (ruff; the chapters are linted, not formatted: see pyproject.toml), then the test suite.
test: $(STAMP)
	$(PY) -m ruff check src tests notebooks benchmarks
	$(PY) -m ruff format --check src tests benchmarks
	$(PY) -m pytest -q

clean:
	rm -rf _build book/chapters book/_static/vega-bundle.js student
