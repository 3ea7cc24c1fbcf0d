# Two commands do everything on a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench bench-model train train-ngram eval eval-sessions lint services clean help

help:
	@echo "make run    start the whole system (embedded PostgreSQL + Redis unless DATABASE_URL/REDIS_URL are set)"
	@echo "make test   run the whole test suite against real PostgreSQL, Redis and Celery workers"
	@echo "make bench  screening model speed, session state cost, then latency/throughput against a stack it starts itself"
	@echo "make bench-model  screening model speed alone (single message, batched, cold start)"
	@echo "make train  retrain the screening model (minilm-v5, fine-tuned MiniLM) from ml/data (not in CI; prints an ETA)"
	@echo "make train-ngram  retrain the n-gram fallback model (ngram-v1)"
	@echo "make eval   evaluate the screening models on the held-out split, then source-held-out folds (not in CI)"
	@echo "make eval-sessions  replay conversations with and without the session signals"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

$(VENV)/.train: requirements.txt requirements-train.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-train.txt
	touch $@

run: $(VENV)/.runtime
	$(BIN)/python -m app.devstack run

services: $(VENV)/.runtime
	$(BIN)/python -m app.devstack services

test: $(VENV)/.dev
	$(BIN)/python -m pytest

bench: bench-model
	$(BIN)/python -m bench.session_state
	$(BIN)/python -m bench.batch_costs
	$(BIN)/python -m bench.ingest_latency

bench-model: $(VENV)/.dev
	$(BIN)/python -m bench.model_speed

train: $(VENV)/.train
	$(BIN)/python -m ml.training.train_finetune

train-ngram: $(VENV)/.train
	$(BIN)/python -m ml.training.train_ngram

eval: $(VENV)/.train
	$(BIN)/python -m ml.training.evaluate
	$(BIN)/python -m ml.training.source_heldout

eval-sessions: $(VENV)/.dev
	$(BIN)/python -m bench.eval_sessions

lint: $(VENV)/.dev
	$(BIN)/python -m ruff check .

clean:
	rm -rf var/prometheus .pytest_cache
