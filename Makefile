# Thin wrapper over CMake for the README's two commands: `make run`, `make test`.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
WERROR ?= OFF
# UNITY=ON compiles sources eight to a translation unit (CMake's unity build; the sources the
# `ckptwatch` front links stay one by one: CKPTWATCH_FRONT_SOURCES in CMakeLists.txt): headers
# are parsed and templates instantiated once per batch, about half the compile time of a clean
# build. So names in a source's anonymous namespace must not clash with another source's.
# UNITY=OFF rebuilds only the file that changed, for a long edit-compile session.
UNITY ?= ON
JOBS ?= $(shell nproc)

.PHONY: deps build run test bench clean

deps:
	@.ci/install-deps

build: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCKPTWATCH_WERROR=$(WERROR) \
		-DCMAKE_UNITY_BUILD=$(UNITY) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# The daemon in the foreground on the embedded default config: watches
# ./checkpoints (created if missing), metrics on 127.0.0.1:19842, log to stderr.
run: build
	$(BUILD_DIR)/ckptwatch run

# No selected tests is an error, and under CI=true so is a skipped one (tests/run-ctest.sh).
test: build
	tests/run-ctest.sh $(BUILD_DIR)

# Every benchmark of docs/performance.md (bench/run.sh, as root); BENCH_ARGS=--quick for the
# 90-second smoke run, or section names (BENCH_ARGS="latency burst").
bench: build
	bench/run.sh --build-dir $(BUILD_DIR) $(BENCH_ARGS)

clean:
	rm -rf $(BUILD_DIR)
