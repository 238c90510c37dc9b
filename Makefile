# Two commands do all the set-up: `make run` and `make test`. Both create .venv on first use,
# from the pinned requirements-dev.txt (requirements.txt is what the platform installs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make requirements" $(BIN)/pip-compile --quiet --strip-extras \
	--allow-unsafe --no-emit-options

.PHONY: run test bench fuzz fuzz-rules validate requirements clean

# The project's own dependencies are all pinned in requirements-dev.txt, so `pip install -e .`
# adds none; one added to setup.cfg but not yet pinned is installed from its range, and the
# in-step test (tests/test_deploy.py) says to run `make requirements`.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/prepr-automation dev

# The console's tests drive Debian's chromium through chromedriver (never a downloaded browser).
BROWSER_HELP := the console tests need a browser: apt-get install chromium chromium-driver

test: $(STAMP)
	@command -v chromedriver >/dev/null 2>&1 || { \
	  if [ "$$CI" = true ]; then echo "error: $(BROWSER_HELP)" >&2; exit 1; fi; \
	  echo "note: $(BROWSER_HELP) (they are skipped until then)" >&2; }
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks

fuzz: $(STAMP)
	$(BIN)/python -m benchmarks.fuzz

# >= 3,000 mutated rule files, each in a memory-capped child process; figures to benchmarks/RESULTS.md
fuzz-rules: $(STAMP)
	$(BIN)/python -m benchmarks.fuzz_rules --files 3000

validate: $(STAMP)
	$(BIN)/prepr-automation validate

# Pin the ranges of setup.cfg: run after changing a dependency (PIP_COMPILE_ARGS=--upgrade to move
# every pin; then raise the floors in setup.cfg to the new pins, which tests/test_deploy.py checks).
requirements: $(STAMP)
	$(PIP_COMPILE) $(PIP_COMPILE_ARGS) --output-file requirements.txt pyproject.toml
	$(PIP_COMPILE) $(PIP_COMPILE_ARGS) --extra test --extra bench --extra dev --constraint requirements.txt \
		--output-file requirements-dev.txt pyproject.toml
	$(MAKE) $(STAMP)

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis *.egg-info
