# govcloud: a thin front to CMake. `make run` and `make check` are the two commands of the
# README; both install what is missing first.
BUILD       ?= build
CHECK_BUILD ?= build-check
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
LISTEN      ?= 127.0.0.1:8080
DATA_DIR    ?= $(CURDIR)/var
# readable by QEMU, which runs as libvirt-qemu (the data directory is private to govcloudd)
IMAGE_DIR   ?= /var/lib/libvirt/images/govcloud

.PHONY: all deps build run check unit bench clean distclean

all: build

deps:
	@scripts/install-deps

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# Install, build, start govcloudd in the foreground on the embedded defaults.
run: deps build
	@scripts/run "$(BUILD)/govcloudd" "$(LISTEN)" "$(DATA_DIR)" "$(IMAGE_DIR)"

# Install, build with AddressSanitizer + UndefinedBehaviorSanitizer, run every test.
check: deps
	cmake -S . -B $(CHECK_BUILD) -DCMAKE_BUILD_TYPE=Debug -DGC_SANITIZE=ON
	cmake --build $(CHECK_BUILD) -j $(JOBS)
	@scripts/openapi-deps
	cd $(CHECK_BUILD) && ctest --output-on-failure --timeout 900 -j 1

bench: deps build
	bench/api/run "$(BUILD)"
	cmake --build $(BUILD) --target bench_scale
	$(BUILD)/bench_scale
	bench/scale/daemon_rss "$(BUILD)"
	cmake --build $(BUILD) --target bench_tsdb
	$(BUILD)/bench_tsdb
	bench/assets/bench_assets_pull "$(BUILD)"
	cmake --build $(BUILD) --target bench_supervision
	$(BUILD)/bench_supervision
	cmake --build $(BUILD) --target bench_supervisor_ingest
	$(BUILD)/bench_supervisor_ingest "$(BUILD)"

clean:
	rm -rf $(BUILD) $(CHECK_BUILD)

distclean: clean
	rm -rf var tests/openapi/node_modules
