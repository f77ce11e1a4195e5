package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/tetherlb/tether/ajp"
)

// ajpSecretEnv holds the AJP secret when --ajp-secret-file is not given.
const ajpSecretEnv = "TETHER_AJP_SECRET"

// cartAJP is the AJP connector of `tether cart`: --ajp and its secret.
type cartAJP struct {
	addr, secretFile *string
}

func addCartAJPFlags(fs *flag.FlagSet) cartAJP {
	return cartAJP{
		addr:       fs.String("ajp", "", "also serve the cart over AJP13 on this address, for Apache httpd mod_jk or mod_proxy_ajp (e.g. 127.0.0.1:8009)"),
		secretFile: fs.String("ajp-secret-file", "", "file holding the AJP secret the web server sends (default $"+ajpSecretEnv+"); required with --ajp"),
	}
}

// start starts the AJP server if --ajp was given. The returned context is
// ctx, cancelled also if the AJP server fails; stop waits for the AJP
// server, which shuts down gracefully (within grace) once that context
// ends, and returns its error. code is the exit code to stop with, or -1.
func (a cartAJP) start(ctx context.Context, env Env, h http.Handler, node string, grace time.Duration, log *slog.Logger) (_ context.Context, stop func() error, code int) {
	stop = func() error { return nil }
	if *a.addr == "" {
		if *a.secretFile != "" {
			fmt.Fprintln(env.Stderr, "tether cart: --ajp-secret-file needs --ajp")
			return ctx, stop, ExitUsage
		}
		return ctx, stop, -1
	}
	secret := strings.TrimSpace(env.getenv(ajpSecretEnv))
	if *a.secretFile != "" {
		b, err := os.ReadFile(*a.secretFile)
		if err != nil {
			fmt.Fprintln(env.Stderr, "tether cart: --ajp-secret-file:", err)
			return ctx, stop, ExitUsage
		}
		secret = strings.TrimSpace(string(b))
	}
	if secret == "" {
		fmt.Fprintf(env.Stderr, "tether cart: --ajp needs a secret: give --ajp-secret-file or set %s (the web server's worker secret)\n", ajpSecretEnv)
		return ctx, stop, ExitUsage
	}
	srv, err := ajp.NewServer(h, ajp.Options{Secret: secret, Logger: log})
	if err != nil {
		fmt.Fprintln(env.Stderr, "tether cart:", err)
		return ctx, stop, ExitUsage
	}
	ln, err := net.Listen("tcp", *a.addr)
	if err != nil {
		fmt.Fprintln(env.Stderr, "tether cart:", err)
		return ctx, stop, ExitFailure
	}
	fmt.Fprintf(env.Stdout, "tether cart: node %s listening on ajp://%s\n", node, ln.Addr())
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
			sctx, scancel := context.WithTimeout(context.Background(), grace)
			if err = srv.Shutdown(sctx); err != nil {
				err = errors.Join(fmt.Errorf("ajp: requests still running after %v: %w", grace, err), srv.Close())
			}
			scancel()
			serr = <-served
		}
		if !errors.Is(serr, ajp.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		done <- err
	}()
	return ctx, func() error { cancel(); return <-done }, -1
}
