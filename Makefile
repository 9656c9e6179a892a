# Two commands on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
FASHION_MNIST := /usr/share/datasets/fashion-mnist

.PHONY: demo test bench data reference smoke clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# Fashion-MNIST comes from Debian's package; install it when missing (needs root or sudo).
data:
	@test -d $(FASHION_MNIST) || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist; }

# The main job: Table 2, the LRN ablation at the quick preset on Fashion-MNIST, and the report.
# It trains into build/demo (6 runs to the paper's stopping rule: 13 minutes of one-thread compute on
# a 2-core CPU) rather than reusing results/.
DEMO := build/demo
demo: $(VENV)/.installed data
	$(VENV)/bin/vggbench params
	$(VENV)/bin/vggbench ablate lrn --config A --preset quick --seeds 3 --results-dir $(DEMO)
	$(VENV)/bin/vggbench report --results-dir $(DEMO) --out $(DEMO)
	@echo "report: $(DEMO)/REPORT.md"

# The committed reference report: every ablation at the quick preset, 3 seeds, into results/.
ABLATIONS := lrn conv1x1 conv5x5 jitter depth init
reference: $(VENV)/.installed data
	for name in $(ABLATIONS); do $(VENV)/bin/vggbench ablate $$name --preset quick --seeds 3 || exit 1; done
	$(VENV)/bin/vggbench report

# CI's smoke sweep outside pytest: 2 arms x 2 seeds on synthetic images, then the report.
SMOKE := build/smoke
smoke: $(VENV)/.installed
	rm -rf $(SMOKE)
	$(VENV)/bin/vggbench ablate lrn --preset smoke --seeds 2 --results-dir $(SMOKE) --quiet
	$(VENV)/bin/vggbench report --results-dir $(SMOKE) --out $(SMOKE)
	test -s $(SMOKE)/REPORT.md && grep -q 'A-LRN - A' $(SMOKE)/REPORT.md

# ruff (format and lint, configured in pyproject.toml) first: a violation fails CI.
test: $(VENV)/.installed
	$(VENV)/bin/ruff format --check vggbench tests
	$(VENV)/bin/ruff check vggbench tests
	$(PY) -m pytest -q

# pytest-benchmark timings of the hot paths (tests/benchmarks/, left out of `make test`).
bench: $(VENV)/.installed
	$(PY) -m pytest -q tests/benchmarks --benchmark-enable --benchmark-sort=name

clean:
	rm -rf $(VENV) .pytest_cache
