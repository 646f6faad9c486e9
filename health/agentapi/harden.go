package agentapi

import (
	"log/slog"
	"net/http"
	"runtime/debug"
)

// Recover serves requests with next, and turns a panic in it into a 500
// that says "internal error" and nothing else, the panic and its stack
// going to logger (nil: none). fail writes that answer (nil: plain
// text); it gets a header emptied of what next had set. When next had
// already begun its answer, too late for a 500, the connection is cut
// instead (http.ErrAbortHandler), as it is when next panics with
// http.ErrAbortHandler itself.
//
// The writer next gets wraps w; http.MaxBytesReader should be given the
// original one, outside Recover, so that the server still closes the
// connection of an oversized request.
func Recover(next http.Handler, logger *slog.Logger, fail func(w http.ResponseWriter, r *http.Request)) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if fail == nil {
		fail = func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("internal error\n"))
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &trackingWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			logger.Error("HTTP handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			if tw.wrote {
				panic(http.ErrAbortHandler)
			}
			h := w.Header()
			for k := range h {
				delete(h, k)
			}
			fail(w, r)
		}()
		next.ServeHTTP(tw, r)
	})
}

// trackingWriter notes whether the answer has begun.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *trackingWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Flush lets handlers that stream (the metrics' handler may) flush.
func (w *trackingWriter) Flush() {
	w.wrote = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *trackingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
