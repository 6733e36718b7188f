# Sigil — see README.md. `make demo` and `make test` work on a fresh Debian 12.
BUILD_DIR ?= build
JOBS ?= 2

.PHONY: all deps configure build test demo bench clean

all: build

deps:
	@./scripts/deps.sh

configure:
	@if [ ! -f $(BUILD_DIR)/build.ninja ]; then \
	  cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release; \
	fi

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: deps build
	cd $(BUILD_DIR) && ctest -j $(JOBS) --output-on-failure --timeout 600

demo: deps build
	./scripts/demo.sh $(BUILD_DIR)/bin

bench: deps build
	./scripts/bench.sh $(BUILD_DIR)/bench

clean:
	rm -rf $(BUILD_DIR)
