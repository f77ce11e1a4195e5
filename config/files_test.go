package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Validate loads what serving loads: a file it accepts does not fail at
// start for a certificate, a secret, a token or a log file.
func TestValidateLoadsFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	garbage, empty := write("garbage.pem", "not a certificate\n"), write("empty", " \n")
	member := "balancers:\n  - name: b\n    members: [{url: 'ajp://127.0.0.1:8009', route: n1, secret_file: %s}]\n"
	tests := []struct {
		name, yaml string
		want       string // "LINE: substring"; "" for none
	}{
		{"certificate of garbage", "tls: {cert: " + garbage + ", key: " + garbage + "}\n" + strings.Replace(member, "%s", write("s", "x"), 1),
			"1: tls.cert: tls: failed to find any PEM data in certificate input"},
		{"access log in a missing directory", "access_log: " + filepath.Join(dir, "no", "access.log") + "\n" + strings.Replace(member, "%s", write("s", "x"), 1),
			"1: access_log: \"" + filepath.Join(dir, "no", "access.log") + "\" cannot be created"},
		{"access log that is a directory", "access_log: " + dir + "\n" + strings.Replace(member, "%s", write("s", "x"), 1),
			"1: access_log: \"" + dir + "\" is a directory"},
		{"access log in an existing directory", "access_log: " + filepath.Join(dir, "new.log") + "\n" + strings.Replace(member, "%s", write("s", "x"), 1), ""},
		{"empty secret file", strings.Replace(member, "%s", empty, 1), "3: balancers[0].members[0].secret_file: " + empty + " is empty"},
		{"secret file that never ends", strings.Replace(member, "%s", "/dev/zero", 1), "3: balancers[0].members[0].secret_file: /dev/zero is not a regular file"},
		{"access log on a device", "access_log: /dev/null\n" + strings.Replace(member, "%s", write("s", "x"), 1), ""},
		{"empty token file", "manager: {token_file: " + empty + "}\n" + strings.Replace(member, "%s", write("s", "x"), 1),
			"1: manager.token_file: " + empty + " is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tt.yaml))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(filepath.Join(dir, "new.log")); err == nil {
					t.Error("Validate created the access log")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "f.yaml:"+tt.want) || strings.Count(err.Error(), "\n") > 0 {
				t.Fatalf("got %v, want the one error f.yaml:%s", err, tt.want)
			}
		})
	}
}
