# Meridian build and test entry points. Go 1.26+ is required.

GO ?= go

.PHONY: run test build vet

## run: serve the example zones on 127.0.0.1:5353
run:
	$(GO) run ./cmd/meridian serve --config examples/meridian.yaml

## test: vet, race-enabled tests, a short run of every fuzz target (installs dig if missing)
test:
	scripts/test.sh

## build: build bin/meridian
build:
	$(GO) build -o bin/meridian ./cmd/meridian

vet:
	$(GO) vet ./...
