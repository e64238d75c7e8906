# Two commands on a fresh clone: `make book` (the main job) and `make test`.
PROFILE ?= fast
# Checked before anything is installed: a one-line error for an unknown profile.
ifeq ($(filter $(PROFILE),fast full),)
$(error PROFILE must be fast or full, not '$(PROFILE)')
endif
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed

.PHONY: book test notebooks student install clean

# Create the virtual environment and install everything (CPU torch wheel first).
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[book,test,zoo]"
	$(PY) -m lva.models install
	touch $(STAMP)

install: $(STAMP)

## Execute every notebook with papermill, then build the book into _build/html.
book: $(STAMP)
	$(if $(filter full,$(PROFILE)),$(PY) -m lva.models install --optional)
	$(PY) -m lva book --profile $(PROFILE)

## Execute the notebooks without building the book.
notebooks: $(STAMP)
	$(PY) -m lva book --profile $(PROFILE) --no-build

## Student copies of the notebooks (solutions removed) in student/, each executed as a check.
student: $(STAMP)
	$(PY) -m lva student --execute --profile $(PROFILE)

## Run the test suite.
test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf _build book/chapters book/_static/vega-bundle.js student
