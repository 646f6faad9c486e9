// Package metrics holds what both daemons' /metrics endpoints share: a
// registry with the standard Go and process collectors and the build
// info, and its HTTP handler. Each daemon registers its own metrics.
package metrics

import (
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every Meridian metric.
const Namespace = "meridian"

// NewRegistry returns a registry holding the Go runtime and process
// collectors and meridian_build_info for version. A registry of our own,
// not the global one, keeps tests and libraries from leaking metrics in.
func NewRegistry(version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "build_info",
		Help:      "The running build: always 1, with the version in labels.",
	}, []string{"version", "goversion"})
	info.WithLabelValues(version, runtime.Version()).Set(1)
	reg.MustRegister(info)
	return reg
}

// Handler serves reg in the Prometheus exposition formats. A collector
// that fails is reported in the response and the log, not as a 500, so
// one broken metric does not hide the others.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          reg,
		EnableOpenMetrics: true,
	})
}
