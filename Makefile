# One place for the install story; the README's two commands call these targets.
PY ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
ORT ?= cpu
EXTRAS ?= $(ORT),train,dev
# Debian packages of the RTSP tests: ffmpeg loops the clips, GStreamer's RTSP server (run by Debian's
# Python, which has PyGObject) serves them over TCP and UDP.
SYSTEM_PACKAGES = ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 \
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
SUDO = $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: venv demo test test-fast system-deps clean

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

# Installs only what dpkg does not already have.
system-deps:
	@if ! command -v dpkg >/dev/null; then \
		echo "not a Debian system: install $(SYSTEM_PACKAGES) (or their equivalents) by hand"; exit 0; fi; \
	missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing" $$missing; \
		$(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

test: venv system-deps
	$(BIN)/python -m pytest -q

test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) out
