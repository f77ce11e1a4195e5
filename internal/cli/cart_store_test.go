package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherlb/tether/internal/dbproc"
)

// TestCartStoreFlags runs `tether cart --store` in-process against a real
// redis-server that wants a password (and a memcached): every mistake is an error naming
// the flag, no output ever shows the password, and the right password
// from a file or the environment starts the node.
func TestCartStoreFlags(t *testing.T) {
	const secret = "s3cret-Pa55word"
	r := dbproc.StartRedis(t, "--requirepass", secret, "--user", "cart", "on", ">"+secret, "~tether:*", "+@all")
	mc := dbproc.StartMemcached(t)
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	if err := os.WriteFile(good, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("wrong-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "redis://" + r.Addr + "/0"
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		code    int
		errText string // in stderr
	}{
		{"unknown scheme", []string{"--store", "mongodb://" + r.Addr}, nil, ExitUsage, "--store"},
		{"bad URL", []string{"--store", "redis://" + r.Addr + "/zero"}, nil, ExitUsage, "--store"},
		{"with --cluster", []string{"--store", url, "--cluster", "127.0.0.1:0"}, nil, ExitUsage, "exclude each other"},
		{"no password", []string{"--store", url}, nil, ExitFailure, "--store"},
		{"wrong password file", []string{"--store", url, "--store-password-file", bad}, nil, ExitFailure, "--store"},
		{"missing password file", []string{"--store", url, "--store-password-file", filepath.Join(dir, "nope")}, nil, ExitUsage, "--store-password-file"},
		{"nobody listening", []string{"--store", "redis://127.0.0.1:1"}, nil, ExitFailure, "--store"},
		{"password in the URL", []string{"--store", "redis://:" + secret + "@" + r.Addr}, nil, ExitOK, "shows in the process list"},
		{"password file", []string{"--store", url, "--store-password-file", good}, nil, ExitOK, "sessions in Redis"},
		{"password from the environment", []string{"--store", url}, map[string]string{storePasswordEnv: secret}, ExitOK, "sessions in Redis"},
		{"ACL user", []string{"--store", "redis://cart@" + r.Addr + "/0", "--store-password-file", good}, nil, ExitOK, "sessions in Redis"},
		{"ACL user, wrong password", []string{"--store", "redis://cart@" + r.Addr + "/0", "--store-password-file", bad}, nil, ExitFailure, "--store"},
		{"memcached", []string{"--store", "memcached://" + mc.Addr + "," + mc.Addr}, nil, ExitOK, "sessions in memcached"},
		{"memcached bad port", []string{"--store", "memcached://127.0.0.1:x"}, nil, ExitUsage, "--store"},
		{"memcached nobody listening", []string{"--store", "memcached://127.0.0.1:1"}, nil, ExitFailure, "--store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, out, errOut := startStopCart(t, tt.env, tt.args, tt.code, tt.errText)
			if strings.Contains(out.String()+errOut.String(), secret) {
				t.Fatalf("the password shows in the output: %q %q", out.String(), errOut.String())
			}
		})
	}
}
