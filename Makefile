# imgbot: `make run` runs the product, `make test` runs the tests. Both install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install system-deps minio test test-fast lint run stop clean fuzz

$(BIN)/imgbot: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/imgbot minio

minio:
	@bash infra/minio/build.sh >/dev/null

system-deps:
	@bash scripts/system-deps.sh

lint: $(BIN)/imgbot
	$(BIN)/ruff check imgbot tests bench
	$(BIN)/ruff format --check imgbot
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install system-deps lint
	$(BIN)/python -m pytest -n auto --cov --cov-report=term:skip-covered $(PYTEST_ARGS)

# The quick part while working: no bot end-to-end runs, no browser, no deployment-file checks.
test-fast: install
	$(BIN)/python -m pytest -n auto -m "not e2e and not browser and not infra" $(PYTEST_ARGS)

# Coverage-guided fuzzing of image intake for FUZZ_SECONDS; findings go to .data/fuzz/.
FUZZ_SECONDS ?= 60
$(VENV)/.fuzz: pyproject.toml $(BIN)/imgbot
	$(BIN)/pip install -q -e '.[test,fuzz]'
	touch $@

fuzz: $(VENV)/.fuzz
	mkdir -p .data/fuzz/corpus
	$(BIN)/python -m fuzz.prepare .data/fuzz/corpus -max_total_time=$(FUZZ_SECONDS) \
		-max_len=65536 -timeout=30 -rss_limit_mb=3072 -artifact_prefix=.data/fuzz/ \
		-print_final_stats=1

run: install
	@bash scripts/run.sh

stop:
	@bash infra/minio/stop.sh

clean:
	rm -rf $(VENV) .data build *.egg-info
