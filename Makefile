# mlprod — the course kit. `make lab` opens the course; `make test` proves it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.mlprod-synced
PYTEST := $(PY) -m pytest -p no:cacheprovider
NBVAL := $(PYTEST) --nbval --nbval-sanitize-with notebooks/sanitize.cfg -n 2 --dist loadfile notebooks
HOST_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: help lab test models context tour notebooks bench lock clean venv lint unit protocol nbtest browser container image latest

help:
	@echo "make lab        set up .venv from the lock and open JupyterLab on notebooks/ (127.0.0.1)"
	@echo "make test       set up .venv, build the models, run lint, unit, protocol, container, notebook, browser tests"
	@echo "make models     train and register the course models into build/models/"
	@echo "make context    write the container build context for build/models into build/context/"
	@echo "make image      build, run and prove the real image (Docker or podman) from that context"
	@echo "make bench      benchmark the server (needs wrk: apt-get install -y wrk) into build/bench/"
	@echo "make tour       run every notebook headless into build/tour/ (index.html)"
	@echo "make notebooks  re-execute the notebooks in place (fresh committed outputs)"
	@echo "make lock       re-resolve requirements.lock from pyproject.toml"
	@echo "make latest     unit tests and notebooks on the newest releases pyproject.toml allows (build/latest/report.md)"
	@echo "make clean      remove build/ and caches (keeps .venv)"

# The environment: exactly the lock, then the kit itself (editable). uv (pinned in the lock) is
# bootstrapped into .venv with the venv's own pip, so no system-wide install is needed (Debian and
# Ubuntu refuse those). rfc3987-syntax is dropped: jsonschema pulls it in, nothing here needs it, and
# importing it costs ~2 s per Jupyter process.
$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "mlprod needs Python 3.11 or newer; set PYTHON=python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: on Debian/Ubuntu, apt-get install python3-venv"; exit 1; }
	@test -x $(UV) || $(PY) -m pip --version >/dev/null 2>&1 || $(PY) -m ensurepip --default-pip >/dev/null
	@test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check "$$(grep -E '^uv==' requirements.lock)"
	$(UV) pip sync --quiet --python $(PY) requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	$(UV) pip uninstall --quiet --python $(PY) rfc3987-syntax
	@touch $@

venv: $(STAMP)

# The kit's notebooks trusted (so saved widget views show on open) and JupyterLab's news off.
lab: $(STAMP)
	$(PY) -m mlprod.lab
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 $(HOST_FLAGS)

models: $(STAMP)
	$(PY) -m mlprod.quickstart models --out build/models

lint: $(STAMP)
	$(VENV)/bin/ruff check .

unit: $(STAMP)
	$(PYTEST) -n 2 -m "not protocol and not browser and not container" tests

protocol: $(STAMP)
	$(PYTEST) -m protocol tests

nbtest: $(STAMP)
	$(NBVAL)

browser: $(STAMP)
	$(PYTEST) -m browser tests

# The container proof runs before the notebooks: lesson 05 shows its recorded result (build/proof/).
container: $(STAMP)
	$(PYTEST) -m container tests/test_container_proof.py tests/test_platform_proof.py

test: $(STAMP)
	$(MAKE) --no-print-directory models
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory protocol
	$(MAKE) --no-print-directory container
	$(MAKE) --no-print-directory nbtest
	$(MAKE) --no-print-directory browser

# The context's requirements.txt is a copy of requirements-server.lock (`make lock` writes it).
context: models
	$(PY) -m mlprod.container --repository build/models --out build/context

# Build (and prove) the real image with the engine found: Docker where `docker info` works, else podman.
image: models
	$(PY) -m mlprod.container --repository build/models --out build/context --image mlprod-penguins:latest --prove

# The server benchmark (needs wrk: apt-get install -y wrk); report in build/bench/ (markdown + JSON).
bench: models
	$(PY) benchmarks/bench.py --out build/bench

tour: $(STAMP)
	$(PY) -m mlprod.tour --out build/tour

notebooks: $(STAMP)
	$(PY) -m mlprod.tour --in-place

# Two locks: requirements.lock (the course, from pyproject.toml's ranges) and requirements-server.lock
# (the image: requirements-server.in, the server's direct requirements, compiled with the course's
# pins as constraints, so the image runs the versions the tests ran). `make context` copies the
# second into the build context as requirements.txt.
lock: $(STAMP)
	$(UV) pip compile --universal --python-version 3.11 --all-extras pyproject.toml -o requirements.lock
	$(UV) pip compile --quiet --universal --python-version 3.11 -c requirements.lock requirements-server.in -o requirements-server.lock

# The early warning for version breakage, not part of `make test`: a throwaway venv (build/latest/venv)
# with the newest releases inside pyproject.toml's ranges runs the unit tests and the notebooks.
# build/latest/report.md lists the pins that differ from requirements.lock and what failed; the target
# fails when anything did.
latest: $(STAMP)
	rm -rf build/latest && mkdir -p build/latest
	$(UV) pip compile --quiet --universal --python-version 3.11 --all-extras --upgrade pyproject.toml -o build/latest/requirements.txt
	$(UV) venv --quiet --python $(PY) build/latest/venv
	$(UV) pip sync --quiet --python build/latest/venv/bin/python build/latest/requirements.txt
	$(UV) pip install --quiet --python build/latest/venv/bin/python --no-deps -e .
	@L=build/latest; T="$$L/venv/bin/python -m pytest -p no:cacheprovider --color=no -n 2"; \
	echo "unit tests -> $$L/unit.log"; \
	$$T -m "not protocol and not browser and not container" tests > $$L/unit.log 2>&1; unit=$$?; \
	echo "notebooks -> $$L/notebooks.log"; \
	$$T --nbval --nbval-sanitize-with notebooks/sanitize.cfg --dist loadfile notebooks > $$L/notebooks.log 2>&1; nb=$$?; \
	{ echo "# make latest: the newest releases inside pyproject.toml's ranges"; echo; \
	  echo "Resolved $$(date -u +%FT%TZ) into $$L/requirements.txt; Python $$($$L/venv/bin/python -V | cut -d' ' -f2)."; echo; \
	  echo "## Pins that differ from requirements.lock"; echo; echo "| package | lock | latest |"; echo "|---|---|---|"; \
	  awk 'FNR==1{f++} /^[A-Za-z0-9]/{split($$0,p," ; "); split(p[1],nv,"=="); k=tolower(nv[1]) (p[2]!="" ? " ; " p[2] : ""); \
	       if(f==1) old[k]=nv[2]; else {new[k]=nv[2]; if(!(k in old)) print "| " k " | — | " nv[2] " |"; \
	       else if(old[k]!=nv[2]) print "| " k " | " old[k] " | " nv[2] " |"}} \
	       END{for(k in old) if(!(k in new)) print "| " k " | " old[k] " | — |"}' requirements.lock $$L/requirements.txt | sort; echo; \
	  echo "## Results"; echo; \
	  echo "- unit tests (exit $$unit): $$(tail -n 1 $$L/unit.log)"; \
	  echo "- notebooks (exit $$nb): $$(tail -n 1 $$L/notebooks.log)"; echo; \
	  echo "## Failures"; echo; echo "A failure is version breakage only where \`make test\` passes the same test on requirements.lock."; echo; grep -hE '^(FAILED|ERROR) ' $$L/unit.log $$L/notebooks.log | sed 's/^/- /' | grep . || echo "none"; \
	} > $$L/report.md; cat $$L/report.md; test $$unit = 0 && test $$nb = 0

clean:
	rm -rf build .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
