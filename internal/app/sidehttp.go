package app

import (
	"context"
	"errors"
	"log"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// sideServer is an HTTP server of Tether's own on a side listener (the
// manager's, the metrics'): bounded timeouts and header size, net/http's
// error log silenced, stopped with a grace period.
type sideServer struct {
	http *http.Server
	done chan struct{} // closed when Serve has returned
}

// startSide serves h on ln until stop. readTimeout and maxHeader are the
// listener's own limits; name is what the log calls it ("manager").
func startSide(ln net.Listener, h http.Handler, readTimeout time.Duration, maxHeader int, logger *slog.Logger, name string) *sideServer {
	s := &sideServer{done: make(chan struct{}), http: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      30 * time.Second, // the manager's live feed extends it per write
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    maxHeader,
		ErrorLog:          log.New(discard{}, "", 0),
	}}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(name+" stopped", "err", err)
		}
	}()
	return s
}

// stop shuts the server down, closing what is still open after timeout,
// and returns once Serve has returned. A nil server does nothing.
func (s *sideServer) stop(timeout time.Duration) {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.http.Shutdown(ctx); err != nil {
		s.http.Close()
	}
	<-s.done
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
