# Universe MCP: `make serve` runs the server on its embedded defaults, `make test` runs the tests.
# Both set up a virtual environment first; that step is a no-op when pyproject.toml has not changed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test lint mcp-config clean

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

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mcp.json with the absolute path of this checkout's server, for chat desktop clients.
mcp-config: $(STAMP)
	@sed 's#"command": "universe-mcp"#"command": "$(abspath $(BIN))/universe-mcp"#' mcp.json

clean:
	rm -rf $(VENV) .pytest_cache
