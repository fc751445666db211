# Thin wrapper over meson/ninja: the commands the README promises.
#   make         build build/sonde-agent
#   make test    install deps, build, run every test, then again under ASan+UBSan
#   make demo    install deps, build, make real traffic, show the agent's events
#   make bench   benchmarks (see bench/README.md)
BUILD   ?= build
SANBUILD ?= build-san

.PHONY: all deps test test-unit test-integration test-san demo bench format clean

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

$(SANBUILD)/build.ninja:
	meson setup $(SANBUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false -Db_lto=false

deps:
	sh scripts/deps.sh

test: deps all
	sh tests/run.sh $(BUILD) $(SANBUILD)

demo: deps all
	sh scripts/demo.sh $(BUILD)

bench: deps all
	sh bench/run.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(SANBUILD) build-fuzz
