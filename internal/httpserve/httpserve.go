// Package httpserve runs the daemons' HTTP servers (metrics, health, the
// agent API and the status page) for as long as they live.
package httpserve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Grace is how long requests in flight may take to finish at shutdown.
const Grace = 5 * time.Second

// Serve serves srv on ln until ctx ends, then shuts it down gracefully:
// no new connections, and up to Grace for the requests in flight before
// the rest are cut. It returns the server's error, or nil after a
// shutdown.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		sctx, cancel := context.WithTimeout(context.Background(), Grace)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	})
	err := srv.Serve(ln)
	if stop() {
		// Serve failed on its own: nothing to shut down.
		return err
	}
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
