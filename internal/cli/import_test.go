package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportThenCheck: tether import prints a tether.yaml that tether
// check accepts once the secrets it names by variable are set, and the
// notes on stderr as FILE:LINE: message.
func TestImportThenCheck(t *testing.T) {
	dir := "../importer/testdata/"
	tests := []struct {
		args  []string
		notes string // a note stderr must hold, "" for none
	}{
		{[]string{"httpd", dir + "httpd-docs-ajp.conf"}, dir + "httpd-docs-ajp.conf:7: ping=5"},
		{[]string{"jk", dir + "tomcat-docs-workers.properties", dir + "tomcat-docs-uriworkermap.properties"}, dir + "tomcat-docs-uriworkermap.properties:5: mount /jkstatus=status"},
		{[]string{"httpd", dir + "seed000-httpd.conf"}, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := Run(context.Background(), append([]string{"import"}, tt.args...), Env{Stdout: &out, Stderr: &errOut}); code != ExitOK {
				t.Fatalf("import: exit %d: %s", code, errOut.String())
			}
			if tt.notes == "" && errOut.Len() != 0 || !strings.Contains(errOut.String(), tt.notes) {
				t.Errorf("stderr %q, want %q", errOut.String(), tt.notes)
			}
			conf := filepath.Join(t.TempDir(), "tether.yaml")
			os.WriteFile(conf, out.Bytes(), 0o600)
			// check reads the secrets the file names by variable (never
			// copied by import): the operator has set them all (and left
			// TETHER_HEAP_FLOOR, a size, unset).
			secrets := func(k string) string {
				if k == "TETHER_HEAP_FLOOR" {
					return ""
				}
				return "an-operator-secret-0123456789abcdef"
			}
			var checkOut, checkErr bytes.Buffer
			if code := Run(context.Background(), []string{"check", "--config", conf}, Env{Stdout: &checkOut, Stderr: &checkErr, Getenv: secrets}); code != ExitOK {
				t.Fatalf("check: exit %d: %s\n%s", code, checkErr.String(), out.String())
			}
		})
	}
	var errOut bytes.Buffer
	for _, args := range [][]string{{"import"}, {"import", "nginx", "x"}, {"import", "httpd", "a", "b"}, {"import", "jk", "/nonexistent"}} {
		if code := Run(context.Background(), args, Env{Stdout: &errOut, Stderr: &errOut}); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, ExitUsage)
		}
	}
}
