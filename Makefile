# One virtualenv at the root for both services, the sandbox and the dev tools.
# VENV=/some/where puts it elsewhere (e.g. to try `make install` on a fresh one).
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
PIP := $(BIN)/pip --disable-pip-version-check
# What each image and the dev venv install: pinned with hashes by `make lock` from these inputs.
SERVICE_REQUIREMENTS := whatsapp-gateway/requirements.txt ai-agent-service/requirements.txt
REQUIREMENTS := $(SERVICE_REQUIREMENTS) sandbox/requirements.txt requirements-dev.txt
DEV_LOCK := requirements-dev.lock
# The package both services install: what they do with RabbitMQ, the outbox and their HTTP API.
KIT := libs/service_kit
# The knowledge-base PDFs are written with this Cyrillic font (ai-agent-service/scripts/make_knowledge_base.py).
FONT := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
# The console's browser tests drive Debian's Chromium through Playwright (e2e/console/).
CHROMIUM := /usr/bin/chromium
PG_URL ?= postgresql://postgres@127.0.0.1:5432
LOCK := $(BIN)/uv pip compile --quiet --generate-hashes --universal --python-version 3.11 \
	--custom-compile-command "make lock"

.PHONY: install lock infra db run demo test reliability bench lint

install: $(VENV)/.installed

# Re-installs only when the lock changed, so a second run installs nothing. Every download is checked against
# the lock's hashes; the kit is our own code, installed editable apart from them (hash checking and editable
# installs do not mix).
$(VENV)/.installed: $(DEV_LOCK) $(KIT)/pyproject.toml
	test -f $(FONT) || apt-get install -y --no-install-recommends fonts-dejavu-core
	test -x $(CHROMIUM) || apt-get install -y --no-install-recommends chromium
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --require-hashes -r $(DEV_LOCK)
	$(PIP) install --quiet --no-deps -e $(KIT)
	touch $@

# After changing a requirements.txt (or the kit's dependencies): pins every package, with its hashes, for
# each image and for the dev venv. Needs the package index and uv (in the dev venv: `make install`).
lock:
	$(LOCK) whatsapp-gateway/requirements.txt $(KIT)/pyproject.toml -o whatsapp-gateway/requirements.lock
	$(LOCK) ai-agent-service/requirements.txt $(KIT)/pyproject.toml -o ai-agent-service/requirements.lock
	$(LOCK) sandbox/requirements.txt -o sandbox/requirements.lock
	$(LOCK) $(REQUIREMENTS) $(KIT)/pyproject.toml -o $(DEV_LOCK)

infra:
	scripts/ensure_infra.sh whatsapp_gateway ai_agent

db: install infra
	cd whatsapp-gateway && DATABASE_URL=$(PG_URL)/whatsapp_gateway $(BIN)/alembic upgrade head
	cd ai-agent-service && DATABASE_URL=$(PG_URL)/ai_agent $(BIN)/alembic upgrade head

run: db
	PG_URL=$(PG_URL) scripts/run_local.sh

# A scripted morning of customers on the sandbox, with its own databases and queues; KEEP=1 leaves it
# running with the operator console (its address and password printed) until Ctrl-C.
KEEP ?= 0
demo: install infra
	cd e2e && KEEP=$(KEEP) $(BIN)/python demo.py

test: install infra
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	cd deploy && $(BIN)/pytest -q
	cd contracts && $(BIN)/pytest -q
	cd $(KIT) && $(BIN)/pytest -q
	cd sandbox && $(BIN)/pytest -q
	cd whatsapp-gateway && $(BIN)/pytest -q
	cd ai-agent-service && $(BIN)/pytest -q
	cd e2e && $(BIN)/pytest -q
	$(MAKE) --no-print-directory reliability

# Faults (kill -9, broker and database restarts, Wappi and Gemini outages) during runs of customer
# messages; prints a table of sent / answered / duplicates / lost / dead-lettered and fails on any loss.
reliability: install infra
	cd e2e/reliability && $(BIN)/pytest -q

# Speed, cost and scale figures, each beside its baseline measured in the same run (bench/run.py).
bench: install infra
	$(BIN)/python -m bench.run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
