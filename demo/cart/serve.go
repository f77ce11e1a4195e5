package cart

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Serve serves h on ln until ctx is done, then shuts down gracefully: it
// stops accepting connections, lets in-flight requests finish for up to
// grace, then closes what is left. It returns nil after a clean shutdown,
// or the error that stopped it. Whoever cancels ctx on SIGINT/SIGTERM gets a
// clean exit; close the session store after Serve returns, when no request
// can use it any more.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("cart: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		err = fmt.Errorf("cart: requests still running after %v: %w", grace, errors.Join(err, srv.Close()))
	}
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// DrainContext returns a context that ends grace after ctx does, and
// calls announce as soon as ctx ends. Serving until that context ends
// (Serve, and any other listener of the node) keeps the node answering
// while balancers notice the drain that announce started (App.Drain):
// they see it at their next health check, and by the end of grace they
// send it nothing more. cancel releases the context's resources.
func DrainContext(ctx context.Context, announce func(), grace time.Duration) (_ context.Context, cancel context.CancelFunc) {
	out, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-ctx.Done():
		case <-out.Done():
			return
		}
		announce()
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C: // the balancers have had their time
		case <-out.Done():
		}
		cancel()
	}()
	return out, cancel
}
