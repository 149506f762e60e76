# The two commands a user types first: `make demo` and `make test`.
# Both create .venv and install hubpress into it when needed (the shared `venv` target).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv demo test docs lint format serve bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: venv
	$(BIN)/python -m hubpress.commands.demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The documentation site (docs/, mkdocs.yml); --strict turns a broken link or anchor into a failure.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The suite takes the Xet path, as uploads to the Hub do; then the LFS lane runs the tests marked
# `lfs` against a --no-xet test Hub with HF_HUB_DISABLE_XET=1 (tests/conftest.py).
test: lint docs
	$(BIN)/python -m pytest -q
	HUBPRESS_TEST_HUB=lfs $(BIN)/python -m pytest -q -m lfs

serve: venv
	$(BIN)/hubpress serve

bench: venv
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) .hubpress .pytest_cache .ruff_cache site
