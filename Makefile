# Meridian build and test entry points. Go 1.26+ is required.

GO ?= go

.PHONY: run test build vet

GEOIP := examples/GeoLite2-City.mmdb

## run: serve the example zones on 127.0.0.1:5353, with GeoLite2 City when it can be fetched
run:
	scripts/fetch-geoip.sh examples
	$(GO) run ./cmd/meridian serve --config examples/meridian.yaml $$([ -s $(GEOIP) ] && echo --geoip $(GEOIP))

## test: vet, race-enabled tests, a short run of every fuzz target (installs dig if missing)
test:
	scripts/test.sh

## build: build bin/meridian
build:
	$(GO) build -o bin/meridian ./cmd/meridian

vet:
	$(GO) vet ./...
