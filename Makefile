# `make demo` builds the environment and runs the main job; `make test` runs the suite in it.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TRITON := $(VENV)/.triton

.PHONY: demo test lint clean bench bench-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,aedat4,export]'
	$(BIN)/pip install --quiet --no-deps 'snntorch==1.0.0'
	# Builds the fused CPU neuron kernel once (cached); without a compiler the reference loop runs.
	$(BIN)/spikedrive kernels || echo "spikedrive: no fused CPU kernel; neurons use the reference loop"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/spikedrive demo

# The tests also run the Triton kernels, on CPU through Triton's interpreter.
$(TRITON): $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[triton]'
	touch $(TRITON)

test: $(STAMP) $(TRITON)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

# SpikingJelly 2.0 asks for torchvision/torchaudio, which would replace the pinned torch with a
# multi-gigabyte build: install the comparison frameworks without their dependencies.
bench-deps: $(STAMP)
	$(BIN)/pip install --quiet --no-deps 'spikingjelly==2.0.0' 'snntorch==1.0.0' tonic torchattacks
	$(BIN)/pip install --quiet loguru scipy

bench: bench-deps
	$(BIN)/python benchmarks/neurons.py
	$(BIN)/python benchmarks/training.py
	$(BIN)/python benchmarks/energy.py
	$(BIN)/python benchmarks/trevsnn_memory.py
	$(BIN)/python benchmarks/attention.py
	$(BIN)/python benchmarks/lottery.py
	$(BIN)/python benchmarks/rsc.py
	$(BIN)/python benchmarks/depth.py
	$(BIN)/spikedrive demo --out runs/bench_demo
	$(BIN)/python benchmarks/export.py --checkpoint runs/bench_demo/best.pt
	$(BIN)/python benchmarks/coco_eval.py
	$(BIN)/python benchmarks/spikeyolo_gen1.py
	$(BIN)/python benchmarks/models.py --bf16

clean:
	rm -rf $(VENV) runs build *.egg-info
