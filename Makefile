# The two commands a user types first: `make demo` and `make test`.
# Both create .venv and install hubpress into it when needed (the shared `venv` target).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv demo test docs lint format serve bench clean consumers

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# Optional: torch (CPU only), peft and diffusers, so tests/lora/test_lora_consumers.py loads published
# LoRAs with the consumers' own code. PyPI has no CPU-only torch (a plain `torch` pulls the CUDA
# packages, gigabytes): the CPU wheel must be findable by pip (a local wheel or a configured index).
TORCH_CPU ?= torch==2.13.0+cpu
consumers: venv
	@$(BIN)/python -m pip install --quiet "$(TORCH_CPU)" || { echo "$(TORCH_CPU) is not available to pip here; not installing a CUDA torch. The consumer tests stay skipped."; exit 1; }
	$(BIN)/python -m pip install --quiet -e '.[test,consumers]'

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
# TEST_WORKERS pytest-xdist workers (each with its own test Hub, moto and Prefect harness, as
# tests/conftest.py sets them up per process); a test file stays on one worker, in its order.
# TEST_WORKERS=0 runs in this process alone.
TEST_WORKERS ?= 2
test: lint docs
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15
	HUBPRESS_TEST_HUB=lfs $(BIN)/python -m pytest -q -m lfs -n $(TEST_WORKERS) --dist loadfile --durations=5

serve: venv
	$(BIN)/hubpress serve

bench: venv
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) .hubpress .pytest_cache .ruff_cache site
