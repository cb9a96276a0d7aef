# One place for the install story; the README's two commands call these targets.
PY ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
ORT ?= cpu
# scrfd (insightface) only so the tests compare alignment with insightface's own norm_crop.
EXTRAS ?= $(ORT),train,dev,scrfd

.PHONY: venv demo test clean

$(BIN)/faceedge: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned to the CPU wheel, so nothing later resolves a CUDA build.
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	$(BIN)/python -m faceedge.edge.doctor --check-install
	touch $@

venv: $(BIN)/faceedge

demo: venv
	$(BIN)/faceedge demo --out out/demo

test: venv
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) out
