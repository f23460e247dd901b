# The two commands of the README:
#   make train   set everything up, then train the block-diffusion Shakespeare preset through papermill
#   make test    set everything up, then run the whole test suite (nbdev_test + pytest tests)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
KERNEL := diffusion-lm
STAMP := $(VENV)/.installed

.PHONY: setup lock lint train test test-nbs test-py check-sync readme docs lab bench-quick bench gpu-check palindromes finetune-example

setup: $(STAMP)

# torch==2.13.0 first: the CPU wheel; a bare range could pull a multi-GB CUDA build.
# Everything else from the lock (constraints.txt, refreshed by `make lock`): the versions CI tested, not today's newest.
$(STAMP): settings.ini setup.py constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (diffusion_lm)"
	touch $(STAMP)

# Re-resolve settings.ini's ranges in a throw-away venv and write the lock (then run make test and commit it)
lock:
	scripts/lock.sh

# TRAIN_ARGS go to papermill, e.g. a short look into its own folder: make train TRAIN_ARGS="-p max_steps 100 -p out_dir runs/short"
# (any train.ipynb parameter; they are checked as diffusion-lm-train --set checks them)
TRAIN_ARGS ?=
train: setup
	mkdir -p papermill_runs
	$(BIN)/papermill -k $(KERNEL) --cwd nbs nbs/train.ipynb papermill_runs/shakespeare_block.ipynb \
		-p preset shakespeare-block --log-output $(TRAIN_ARGS)

# The fine-tuning example: a LLaDA-format model pre-trained here on Tiny Shakespeare, then LoRA on its dialogue (CPU: minutes)
FINETUNE_ARGS ?=
finetune-example: setup
	mkdir -p papermill_runs
	$(BIN)/papermill -k $(KERNEL) --cwd nbs nbs/finetune.ipynb papermill_runs/finetune_shakespeare.ipynb --log-output \
		$(FINETUNE_ARGS)

# The package must be what the notebooks export, and the notebooks must be clean.
check-sync: setup
	@snap() { git status --porcelain -- nbs diffusion_lm; git diff -- nbs diffusion_lm | md5sum; }; \
	before=$$(snap); $(BIN)/nbdev_export && $(BIN)/nbdev_clean; after=$$(snap); \
	if [ "$$before" != "$$after" ]; then git status --short -- nbs diffusion_lm; \
	  echo "notebooks and package were out of sync: nbdev_export/nbdev_clean changed the files above; commit them"; exit 1; fi

readme: setup
	$(BIN)/jupyter nbconvert --to markdown nbs/index.ipynb --output-dir . --output README --log-level WARN

# one thread per notebook process: two workers with torch's default threads each oversubscribe 2 cores (20x slower)
test-nbs: setup
	OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2 --timing

test-py: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q --durations=15 tests

# unused imports, star imports and undefined names (ruff's pyflakes rules) in the package, tests, benchmarks and scripts
lint: setup
	$(BIN)/ruff check --select F401,F403,F821 diffusion_lm tests bench scripts

test: check-sync lint test-nbs test-py

# Every notebook executed as nbdev_test runs it (IN_TEST=1, #| slow cells skipped) and rendered with its figures
# to a static page under _docs/ (open _docs/index.html); the notebooks in nbs/ are left untouched
docs: setup
	OMP_NUM_THREADS=1 $(BIN)/python scripts/render_docs.py --out _docs

# as root (a container) Jupyter refuses to start without --allow-root
lab: setup
	$(BIN)/jupyter lab nbs $(if $(filter 0,$(shell id -u)),--allow-root)

# Benchmarks (bench/README.md): --quick is a smoke run (minutes), --full writes bench/results/ and bench/RESULTS.md (hours
# at 1 thread); BENCH_ONLY="sampling train_throughput" limits them, BENCH_ARGS='--note "..."' goes to every script
BENCH_ARGS ?=
bench-quick: setup
	bench/run_all.sh --quick $(BENCH_ARGS)

bench: setup
	bench/run_all.sh --full $(BENCH_ARGS)

# On one CUDA GPU, under 8 minutes: every method's GPU preset in bf16 with and without torch.compile (tokens/s, MFU,
# peak memory) into bench/RESULTS.md's GPU section; GPU_CHECK_ARGS=--llada-8b adds the 8B LoRA / FSDP2 memory steps.
# Without CUDA it stops at once with exit code 2.
GPU_CHECK_ARGS ?=
gpu-check: setup
	$(BIN)/python bench/gpu.py $(GPU_CHECK_ARGS)

# The palindrome pipeline: pre-train SEDD on Wikipedia bytes, fine-tune on palindromes, sample + evaluate (CPU ~30 min)
palindromes: setup
	scripts/palindrome_pipeline.sh
