package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/tetherlb/tether/ajp"
)

// serveCartAJP starts the cart's AJP server if o.AJP is set. The returned
// context is ctx, cancelled also if the AJP server fails; stop waits for
// the AJP server, which shuts down gracefully (within
// o.ShutdownTimeout) once that context ends, and returns its error.
func serveCartAJP(ctx context.Context, o CartOptions, h http.Handler) (_ context.Context, stop func() error, err error) {
	stop = func() error { return nil }
	if o.AJP == "" {
		return ctx, stop, nil
	}
	srv, err := ajp.NewServer(h, ajp.Options{Secret: o.AJPSecret, Logger: o.Logger})
	if err != nil {
		return ctx, stop, usage(err)
	}
	ln, err := net.Listen("tcp", o.AJP)
	if err != nil {
		return ctx, stop, err
	}
	fmt.Fprintf(o.Stdout, "tether cart: node %s listening on ajp://%s\n", o.Route, ln.Addr())
	ctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	done := make(chan error, 1)
	go func() {
		var err, serr error
		select {
		case serr = <-served:
			cancel() // the AJP server failed: stop the node
		case <-ctx.Done():
			sctx, scancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
			if err = srv.Shutdown(sctx); err != nil {
				err = errors.Join(fmt.Errorf("ajp: requests still running after %v: %w", o.ShutdownTimeout, err), srv.Close())
			}
			scancel()
			serr = <-served
		}
		if !errors.Is(serr, ajp.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		done <- err
	}()
	return ctx, func() error { cancel(); return <-done }, nil
}
