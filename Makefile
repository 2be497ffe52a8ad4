# Thin wrappers over go and the scripts in tools/; no logic lives only here.
FUZZTIME ?= 15s
GO ?= go
LDFLAGS ?= $(shell bash tools/lib/ldflags.sh)
PREFIX ?= /usr/local

GOVULNCHECK ?= golang.org/x/vuln/cmd/govulncheck@v1.9.0
SOAK ?= 30m

.PHONY: help setup build install test check-metal bench fuzz golden golden-families lint clean readme-examples soak vulncheck

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

setup: ## install packages, the tokenizers lib and the test model; build bin/gomps
	bash tools/setup.sh

build: ## build bin/gomps, stamped with its version and commit
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/gomps ./cmd/gomps

install: build ## put gomps on PATH: $(PREFIX)/bin/gomps (PREFIX=~/.local for no root)
	install -D -m 0755 bin/gomps $(DESTDIR)$(PREFIX)/bin/gomps

test: ## the whole suite, as CI runs it (setup, vet, race tests, fuzz, Metal checks)
	bash tools/test.sh

check-metal: ## the Linux checks of the Apple code (SDK_DIR enables the Objective-C part)
	bash tools/check-metal.sh

bench: ## benchmarks of the forward pass and the engine
	$(GO) test -run='^$$' -bench=. -benchtime=3x ./gomps/... ./kernels/...

fuzz: ## every fuzz target for FUZZTIME
	FUZZTIME=$(FUZZTIME) bash tools/fuzz.sh

soak: ## the serve reliability suite, long form: a SOAK-long flood (default 30m) and every attack (CI runs the short form)
	$(GO) run ./tools/reliability -form long -flood $(SOAK)

vulncheck: ## govulncheck over the module (needs vuln.go.dev, so CI does not run it)
	$(GO) run $(GOVULNCHECK) ./...

golden: ## regenerate the PyTorch goldens (dev only, never in CI; needs a multi-GB venv)
	bash tools/golden/run.sh

golden-families: ## regenerate the family test models and their goldens (dev only, never in CI)
	bash tools/golden/families.sh

lint: ## go vet, gofmt, and tools/lint.sh: complexity (gocyclo), clones (dupl), dead code (deadcode)
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	GO=$(GO) bash tools/lint.sh

readme-examples: build ## run the README's <!-- run --> examples (bounded), check the others' flags
	bash tools/readme-examples.sh

clean: ## remove build outputs
	rm -rf bin
