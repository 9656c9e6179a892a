# Two commands on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
FASHION_MNIST := /usr/share/datasets/fashion-mnist

.PHONY: demo test bench data report clean

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
demo: $(VENV)/.installed data
	$(VENV)/bin/vggbench params
	$(VENV)/bin/vggbench ablate lrn --config A --preset quick --seeds 3
	$(VENV)/bin/vggbench report

test: $(VENV)/.installed
	$(PY) -m pytest -q

# pytest-benchmark timings of the hot paths (tests/benchmarks/, left out of `make test`).
bench: $(VENV)/.installed
	$(PY) -m pytest -q tests/benchmarks --benchmark-enable --benchmark-sort=name

clean:
	rm -rf $(VENV) .pytest_cache
