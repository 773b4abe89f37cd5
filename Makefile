# trailsight — `make help` lists the targets.
GO ?= go

.PHONY: help test test-long race vet fmt bench bench-smoke build demo

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

test: ## what CI runs: vet, then every test (fast ones; set-up included)
	$(GO) vet ./...
	$(GO) test -count=1 ./...

test-long: ## also the long tests (build tag long: 200 MB input, big archives, memory)
	$(GO) test -tags long -count=1 -timeout 60m ./...

race: ## every test under the race detector
	$(GO) test -race -count=1 ./...

vet: ## go vet and gofmt check
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

bench-smoke: ## run each benchmark once
	$(GO) test -run=NONE -bench=. -benchtime=1x ./...

bench: build ## detect vs the gunzip+decode floor on a generated 14-day, 4-account archive
	./bin/trailsight bench --days 14 --accounts 4 --scale 4

build: ## build bin/trailsight
	$(GO) build -o bin/trailsight ./cmd/trailsight

demo: ## the no-setup demo
	$(GO) run ./cmd/trailsight demo
