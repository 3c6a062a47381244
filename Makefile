# The README's commands. Each installs what is missing (apt-get, as root), builds, then acts.
#   make run    build and start a single-node cluster, wait until ready, print its status
#   make test   build and run every test (ctest), then check that none left kube-proxy/CNI
#               rules, links or routes in the host's network namespace
#   make bench  build and run the benchmarks (prints machine-readable results)
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
STATE_DIR ?= $(if $(MK8S_STATE_DIR),$(MK8S_STATE_DIR),/var/lib/mk8s)
CTEST_ARGS ?=

.PHONY: all deps build run test bench install clean format

all: build

deps:
	@scripts/install-deps.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/cli/mk8s --state-dir $(STATE_DIR) start --wait-ready --timeout 120
	$(BUILD_DIR)/cli/mk8s --state-dir $(STATE_DIR) status
	@echo
	@echo "Next: $(BUILD_DIR)/cli/mk8s --state-dir $(STATE_DIR) kubectl get all -A"
	@echo "      $(BUILD_DIR)/cli/mk8s --state-dir $(STATE_DIR) kubectl create deployment web --image=nginx"
	@echo "      $(BUILD_DIR)/cli/mk8s --state-dir $(STATE_DIR) status --format yaml"
	@echo "      $(BUILD_DIR)/cli/mk8s --state-dir $(STATE_DIR) stop"
	@echo "      (or 'sudo cmake --install $(BUILD_DIR)' and then plain 'mk8s ...')"

test: build
	@scripts/host-namespace-guard.sh snapshot $(BUILD_DIR)/host-namespace.before
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 1200 -j 2 $(CTEST_ARGS); rc=$$?; \
	  cd $(CURDIR) && scripts/host-namespace-guard.sh check $(BUILD_DIR)/host-namespace.before && exit $$rc

bench: build
	@scripts/install-deps.sh --bench
	tests/bench/run-all.sh $(BUILD_DIR)

install: build
	cmake --install $(BUILD_DIR)

format:
	find cli daemon sdk addons tests -name '*.cc' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
