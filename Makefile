# optserve: `make demo` runs an example optimization on a fresh machine; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
RUST_SRC := $(shell find sampler_rs/src -name '*.rs') sampler_rs/Cargo.toml sampler_rs/Cargo.lock

.PHONY: setup build proto demo serve test test-python test-rust test-java lint lint-proto bench clean

setup: $(STAMP) service/optserve/_sampler.abi3.so

$(STAMP): pyproject.toml clients/python/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q maturin==1.16.0
	$(PY) -m pip install -q -e '.[dev]' -e clients/python
	touch $@

# The compiled extension is rebuilt whenever the crate changes.
service/optserve/_sampler.abi3.so: $(RUST_SRC) | $(STAMP)
	$(VENV)/bin/maturin develop --release -q
	touch $@

build: setup

proto: setup
	$(PY) scripts/gen_proto.py

demo: setup
	$(PY) examples/demo.py

serve: setup
	$(VENV)/bin/optserve serve --port 50051 --db optserve.db

test: test-python test-rust test-java

# One pytest worker per core; a file's tests stay on one worker, so that its
# module-scoped servers and clusters start once. TEST_WORKERS=0 runs in-process.
TEST_WORKERS ?= auto
test-python: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test-rust:
	cd sampler_rs && cargo test --release -q

# mvnw uses the system Maven when it is >= 3.9.6, else fetches one (protobuf-maven-plugin needs it).
test-java: setup
	cd clients/java && ./mvnw -B -ntp test

lint: setup lint-proto
	$(VENV)/bin/ruff check service tests bench clients/python scripts examples
	$(VENV)/bin/ruff format --check service tests bench clients/python scripts examples
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest optserve._sampler
	cd sampler_rs && cargo fmt --check && cargo clippy --all-targets -q -- -D warnings

# Buf's style rules for the API (the CLI comes from npm).
lint-proto:
	npx --yes @bufbuild/buf@1.75.0 lint

# Benchmarks, not tests: sampler throughput (hopsy is compared when importable),
# suggestion latency, service throughput; the quality suite is bench/quality/run.sh.
bench: setup
	OPENBLAS_NUM_THREADS=1 $(PY) bench/sampler.py
	OPENBLAS_NUM_THREADS=1 $(PY) bench/latency.py
	$(PY) bench/throughput.py

clean:
	rm -rf $(VENV) sampler_rs/target service/optserve/_sampler*.so
