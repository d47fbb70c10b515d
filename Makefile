# The two quick-start commands: `make demo` and `make test`. Everything else is detail.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test serve lint lock bench bench-serving bench-wxr clean

$(STAMP): pyproject.toml requirements.lock
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); } \
	  || { echo "Could not create $(VENV): on Debian/Ubuntu, apt-get install python3-venv"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[test]"
	@touch $(STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: tests that use the naughty-strings list will be skipped"; fi

demo: $(STAMP) node_modules/.package-lock.json
	$(BIN)/broadsheet demo

serve: $(STAMP)
	$(BIN)/broadsheet serve

test: $(STAMP) node_modules/.package-lock.json
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/article_render.py

# Serving speed, side by side: nginx static file, cached pages (embedded and behind nginx),
# uncached renders, the personal-parts endpoint, comment POSTs on SQLite and PostgreSQL.
bench-serving: $(STAMP)
	$(BIN)/python bench/serving.py $(BENCH_ARGS)

# Import a generated WordPress export of 10,000 posts and 100,000 comments (several minutes).
bench-wxr: $(STAMP)
	$(BIN)/python bench/wxr_import.py --posts 10000 --comments 100000

# Refresh the constraints file from the current venv (after changing pyproject.toml).
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean:
	rm -rf $(VENV) var node_modules
