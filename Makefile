# Two commands do all the set-up: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench validate clean

$(STAMP): setup.py setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/prepr-automation dev

# The console's tests drive Debian's chromium through chromedriver (never a downloaded browser).
BROWSER_HELP := the console tests need a browser: apt-get install chromium chromium-driver

test: $(STAMP)
	$(BIN)/python tests/redis_up.py
	@command -v chromedriver >/dev/null 2>&1 || { \
	  if [ "$$CI" = true ]; then echo "error: $(BROWSER_HELP)" >&2; exit 1; fi; \
	  echo "note: $(BROWSER_HELP) (they are skipped until then)" >&2; }
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks

validate: $(STAMP)
	$(BIN)/prepr-automation validate

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis *.egg-info
