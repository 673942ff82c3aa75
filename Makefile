# Universe MCP: `make serve` runs the server on its embedded defaults, `make test` runs the tests.
# Both set up a virtual environment first; that step is a no-op when pyproject.toml has not changed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test lint bench mutate mcp-config ui ui-check clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

serve: $(STAMP)
	$(BIN)/universe-mcp serve

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The dashboard (an MCP App) and the page at /: ui/ builds one self-contained HTML file each into server/static/,
# which is committed so that serving and the Python tests need no Node. Rebuild after changing ui/src.
ui:
	cd ui && npm ci --no-audit --no-fund && npx --no-install tsc --noEmit -p . && npm run build

# Fails when the committed build differs from a fresh one (also part of `make test`).
ui-check: $(STAMP)
	$(BIN)/python -m pytest tests/browser/test_ui_build.py -q

# The performance targets of DESIGN §9 against the SDK's own floor (bench/run.py, about 5 minutes; results in
# bench/results/ and docs/BENCHMARKS.md). QUICK=1 is a smoke run; BENCH_ARGS passes options (e.g. --only 1,2).
bench: $(STAMP)
	$(BIN)/python -m bench.run $(if $(QUICK),--quick) $(BENCH_ARGS)

# Mutation testing (mutmut) of the security and integrity modules listed in scripts/mutation_targets.toml; not part
# of `make test`. MODULES=services/tokens.py,providers/guard.py selects modules. Report: build/mutation/report.md.
mutate: $(STAMP)
	$(BIN)/python scripts/mutate.py $(if $(MODULES),--module $(MODULES)) $(MUTATE_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mcp.json with the absolute path of this checkout's server, for chat desktop clients.
mcp-config: $(STAMP)
	@sed 's#"command": "universe-mcp"#"command": "$(abspath $(BIN))/universe-mcp"#' mcp.json

clean:
	rm -rf $(VENV) .pytest_cache
