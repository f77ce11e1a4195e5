package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCartClusterFlags runs `tether cart` with its cluster flags
// in-process: every mistake is a usage error naming the flag, and a node
// with --cluster starts (alone), drains, hands over and stops cleanly.
func TestCartClusterFlags(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const key = "0123456789abcdef-from-the-environment"
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		code    int
		errText string // in stderr
	}{
		{"peers without --cluster", []string{"--peers", "127.0.0.1:7002"}, nil, ExitUsage, "--peers needs --cluster"},
		{"key file without --cluster", []string{"--cluster-key-file", keyFile}, nil, ExitUsage, "--cluster-key-file needs --cluster"},
		{"unknown mode", []string{"--cluster", "127.0.0.1:0", "--replication", "eventually"}, nil, ExitUsage, "--replication"},
		{"short key", []string{"--cluster", "127.0.0.1:0"}, map[string]string{clusterKeyEnv: "short"}, ExitUsage, "at least 16"},
		{"missing key file", []string{"--cluster", "127.0.0.1:0", "--cluster-key-file", filepath.Join(dir, "nope")}, nil, ExitUsage, "no such file"},
		{"empty key file", []string{"--cluster", "127.0.0.1:0", "--cluster-key-file", os.DevNull}, nil, ExitUsage, "is empty"},
		{"half of TLS", []string{"--cluster", "127.0.0.1:0", "--cluster-cert", keyFile}, nil, ExitUsage, "go together"},
		{"bad peer", []string{"--cluster", "127.0.0.1:0", "--peers", "no-port"}, nil, ExitUsage, "no-port"},
		{"lease past the takeover timeout", []string{"--cluster", "127.0.0.1:0", "--lease", "6s"}, nil, ExitUsage, "Lease 6s"},
		{"negative drain grace", []string{"--cluster", "127.0.0.1:0", "--drain-grace", "-1s"}, nil, ExitUsage, "--drain-grace"},
		{"open on the network", []string{"--cluster", "192.0.2.1:7001"}, nil, ExitUsage, "not a loopback address"},
		{"key from the file", []string{"--cluster", "127.0.0.1:0", "--cluster-key-file", keyFile, "--drain-grace", "0"}, nil, ExitOK, "authenticated=true"},
		{"key from the environment", []string{"--cluster", "127.0.0.1:0", "--drain-grace", "0", "--replication", "async"}, map[string]string{clusterKeyEnv: key}, ExitOK, "mode=async authenticated=true"},
		{"no key on loopback", []string{"--cluster", "127.0.0.1:0", "--drain-grace", "0"}, nil, ExitOK, "authenticated=false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := startStopCart(t, tt.env, tt.args, tt.code, tt.errText)
			if code != ExitOK {
				return
			}
			if !strings.Contains(out.String(), "node n1 stopped") || !strings.Contains(errOut.String(), "sessions handed over") {
				t.Fatalf("stdout %q, stderr %q: want a drain, a handover and a clean stop", out.String(), errOut.String())
			}
		})
	}
}

// startStopCart runs tether cart on 127.0.0.1:0 as node n1 with args and
// env, stopping it as soon as it has started, and fails the test unless it
// exits with code and says errText on stderr. It returns the exit code and
// the output.
func startStopCart(t *testing.T, env map[string]string, args []string, code int, errText string) (int, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the node stops as soon as it has started
	got := runCart(ctx, e, append([]string{"--listen", "127.0.0.1:0", "--route", "n1"}, args...))
	if got != code || !strings.Contains(errOut.String(), errText) {
		t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q", got, out.String(), errOut.String(), code, errText)
	}
	return got, &out, &errOut
}
