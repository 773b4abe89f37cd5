# trailsight — `make help` lists the targets.
GO ?= go

.PHONY: help test test-setup test-long race vet fmt bench bench-smoke build demo

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# The real S3 server the S3 tests start (internal/s3test); go install puts
# it in GOBIN or the first GOPATH's bin, which the tests also search.
VERSITYGW_VERSION ?= v1.8.0
GOBIN_DIR := $(or $(shell $(GO) env GOBIN),$(firstword $(subst :, ,$(shell $(GO) env GOPATH)))/bin)
export PATH := $(PATH):$(GOBIN_DIR)

test: test-setup ## what CI runs: vet, then every test (fast ones; set-up included)
	$(GO) vet ./...
	$(GO) test -count=1 ./...

test-setup: ## install what the tests need when missing: versitygw (~2 min the first time)
	@command -v versitygw >/dev/null 2>&1 || { \
		echo "installing versitygw $(VERSITYGW_VERSION) into $(GOBIN_DIR)"; \
		$(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION); }

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

QDIR ?= /tmp/trailsight-quality
# The generator's default start (2026-03-02) plus its 7 days of history, which hold no planted anomaly.
HISTORY_END ?= 2026-03-09
quality: build ## detection quality: default scenario, seeds 2-4 (28 days, 4 accounts), background-only false-alarm rate, each cold and warm; NAB (~3 min)
	@mkdir -p $(QDIR)
	@set -e; for s in "1 14 2" "2 28 4" "3 28 4" "4 28 4"; do set -- $$s; \
		d=$(QDIR)/seed$$1-$$2d-$$3a; \
		test -f $$d/labels.json || ./bin/trailsight gen --out $$d --seed $$1 --days $$2 --accounts $$3; \
		rm -rf $$d.ins; ./bin/trailsight --log-level error detect --in $$d --out $$d.ins --progress never 2>/dev/null; \
		echo "== seed $$1, $$2 days, $$3 accounts"; ./bin/trailsight eval --labels $$d/labels.json $$d.ins | grep -vE '^  (20|…)'; \
		./bin/trailsight --log-level error baseline --in $$d --to $(HISTORY_END) --model $$d.tsm >/dev/null 2>&1; \
		rm -rf $$d.warm; ./bin/trailsight --log-level error detect --in $$d --from $(HISTORY_END) --model $$d.tsm --out $$d.warm --progress never 2>/dev/null; \
		echo "-- warm: baseline of the history week, detect from $(HISTORY_END) (nothing excused)"; \
		./bin/trailsight eval --labels $$d/labels.json $$d.warm | grep -E '^(all|excused|F1)|false insights \('; \
	done
	@d=$(QDIR)/background-28d-10a; \
		test -f $$d/labels.json || ./bin/trailsight gen --out $$d --seed 5 --days 28 --accounts 10 --background-only; \
		rm -rf $$d.ins; echo "== background only, 28 days, 10 accounts"; \
		./bin/trailsight --log-level error detect --in $$d --out $$d.ins --progress never 2>&1 | grep -E 'series|insights'; \
		./bin/trailsight eval --labels $$d/labels.json $$d.ins | grep -E '^excused|^false insights'; \
		./bin/trailsight --log-level error baseline --in $$d --to $(HISTORY_END) --model $$d.tsm >/dev/null 2>&1; \
		rm -rf $$d.warm; echo "-- warm: baseline of the history week, detect from $(HISTORY_END) (nothing excused)"; \
		./bin/trailsight --log-level error detect --in $$d --from $(HISTORY_END) --model $$d.tsm --out $$d.warm --progress never 2>&1 | grep -E 'series|insights'
	@echo "== NAB count series"; ./bin/trailsight nab | tail -18
