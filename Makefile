# imgbot: `make run` runs the product, `make test` runs the tests. Both install what they need.
# Python packages come from uv.lock, exactly (`uv sync --frozen`): a fresh clone runs the versions
# that were tested. `make lock` is the one deliberate way to move them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# uv itself, pinned, in a folder of its own beside the project's environment.
UV_VERSION := 0.13.9
UV     := .uv/bin/uv
SYNC   := UV_PYTHON_DOWNLOADS=never $(UV) sync --frozen --python $(PYTHON)

.PHONY: install system-deps minio test test-fast lint lock run stop clean fuzz

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION)

$(BIN)/imgbot: pyproject.toml uv.lock $(UV)
	$(SYNC) --extra test
	touch $@

# Refresh uv.lock to the newest versions pyproject.toml allows; commit it on its own.
lock: $(UV)
	UV_PYTHON_DOWNLOADS=never $(UV) lock --upgrade --python $(PYTHON)

install: $(BIN)/imgbot minio

minio:
	@bash infra/minio/build.sh >/dev/null

system-deps:
	@bash scripts/system-deps.sh

lint: $(BIN)/imgbot
	UV_PYTHON_DOWNLOADS=never $(UV) lock --check --python $(PYTHON)
	$(BIN)/ruff check imgbot tests bench
	$(BIN)/ruff format --check imgbot
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install system-deps lint
	$(BIN)/python -m pytest -n auto --cov --cov-report=term:skip-covered $(PYTEST_ARGS)

# The quick part while working: no bot end-to-end runs, no browser, no deployment-file checks,
# nothing that waits on a server's own clock.
test-fast: install
	$(BIN)/python -m pytest -n auto -m "not e2e and not browser and not infra and not slow" $(PYTEST_ARGS)

# Coverage-guided fuzzing of image intake for FUZZ_SECONDS; findings go to .data/fuzz/.
FUZZ_SECONDS ?= 60
$(VENV)/.fuzz: pyproject.toml uv.lock $(BIN)/imgbot
	$(SYNC) --extra test --extra fuzz
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
	@bash infra/seaweedfs/stop.sh

clean:
	rm -rf $(VENV) .uv .data build *.egg-info
