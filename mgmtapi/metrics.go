package mgmtapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridiandns/meridian/internal/metrics"
)

// apiMetrics counts the API's requests by operation and status, and
// times them.
type apiMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newAPIMetrics() *apiMetrics {
	return &apiMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metrics.Namespace + "_api_requests_total",
			Help: "Management API requests, by operation (METHOD /api/v1/path) and HTTP status.",
		}, []string{"operation", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metrics.Namespace + "_api_request_duration_seconds",
			Help:    "Time to answer a management API request, by operation.",
			Buckets: []float64{0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10},
		}, []string{"operation"}),
	}
}

// observe counts one answered request of operation.
func (m *apiMetrics) observe(operation string, code int, took time.Duration) {
	if code == 0 {
		code = http.StatusInternalServerError // a panic, answered by ServeHTTP
	}
	m.requests.WithLabelValues(operation, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(operation).Observe(took.Seconds())
}

// Describe implements prometheus.Collector.
func (a *API) Describe(ch chan<- *prometheus.Desc) {
	a.metrics.requests.Describe(ch)
	a.metrics.duration.Describe(ch)
}

// Collect implements prometheus.Collector.
func (a *API) Collect(ch chan<- prometheus.Metric) {
	a.metrics.requests.Collect(ch)
	a.metrics.duration.Collect(ch)
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
