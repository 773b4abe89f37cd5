package notify

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the package's Prometheus metrics, labelled by notifier name.
// Every Reliable registering on the same Registerer shares one set: the
// second registration finds the first's collectors and reuses them.
type metrics struct {
	delivered *prometheus.CounterVec
	retried   *prometheus.CounterVec
	spooled   *prometheus.CounterVec
	failed    *prometheus.CounterVec
	spool     *prometheus.GaugeVec
}

// newMetrics returns the metrics registered on reg; a nil reg gives
// working, unregistered metrics.
func newMetrics(reg prometheus.Registerer) *metrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "trailsight", Subsystem: "notify", Name: name, Help: help,
		}, []string{"notifier"}))
	}
	return &metrics{
		delivered: counter("delivered_total", "Insight events delivered, directly or from the spool."),
		retried:   counter("retried_total", "Sends repeated after a failure, including re-sends from the spool."),
		spooled:   counter("spooled_total", "Insight events written to the disk spool after failed sends."),
		failed:    counter("failed_total", "Failed sends (every failed attempt) and spool writes that failed."),
		spool: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "trailsight", Subsystem: "notify", Name: "spool_batches",
			Help: "Batches waiting in the disk spool.",
		}, []string{"notifier"})),
	}
}

// register registers c on reg and returns it, or the collector already
// registered under the same name. It panics on any other registration
// error (a conflicting metric is a programming error).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
		panic("notify: register metrics: " + err.Error())
	}
	return c
}
