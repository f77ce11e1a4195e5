package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCartAJPFlags runs `tether cart` with its AJP flags in-process: a
// secret is required with --ajp, from the file or the environment.
func TestCartAJPFlags(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		code    int
		out     string // in stdout
		errText string // in stderr
	}{
		{"no secret", []string{"--ajp", "127.0.0.1:0"}, nil, ExitUsage, "", "--ajp needs a secret"},
		{"secret file without --ajp", []string{"--ajp-secret-file", secretFile}, nil, ExitUsage, "", "--ajp-secret-file needs --ajp"},
		{"missing secret file", []string{"--ajp", "127.0.0.1:0", "--ajp-secret-file", filepath.Join(dir, "nope")}, nil, ExitUsage, "", "no such file"},
		{"empty secret file", []string{"--ajp", "127.0.0.1:0", "--ajp-secret-file", os.DevNull}, nil, ExitUsage, "", "--ajp needs a secret"},
		{"bad address", []string{"--ajp", "256.0.0.1:1", "--ajp-secret-file", secretFile}, nil, ExitFailure, "", "256.0.0.1"},
		{"secret from the file", []string{"--ajp", "127.0.0.1:0", "--ajp-secret-file", secretFile}, nil, ExitOK, "listening on ajp://127.0.0.1:", ""},
		{"secret from the environment", []string{"--ajp", "127.0.0.1:0"}, map[string]string{ajpSecretEnv: "s3cret"}, ExitOK, "listening on ajp://127.0.0.1:", ""},
		{"no AJP", nil, nil, ExitOK, "node n1 stopped", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			env := Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return tt.env[k] }}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // the node stops as soon as it has started
			args := append([]string{"--listen", "127.0.0.1:0", "--route", "n1"}, tt.args...)
			code := runCart(ctx, env, args)
			if code != tt.code || !strings.Contains(out.String(), tt.out) || !strings.Contains(errOut.String(), tt.errText) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out.String(), errOut.String(), tt.code, tt.out, tt.errText)
			}
			if tt.code == ExitOK && strings.Contains(out.String(), "ajp://") && !strings.Contains(out.String(), "node n1 stopped") {
				t.Errorf("stdout %q: want a clean stop", out.String())
			}
		})
	}
}
