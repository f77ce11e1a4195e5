package dbproc

import (
	"strings"
	"testing"
)

// TestFlavors: a flavor's server is the one its name says (Valkey's INFO
// names it, Redis's does not), so a test's valkey subtest ran on Valkey.
func TestFlavors(t *testing.T) {
	Each(t, func(t *testing.T, f Flavor) {
		info, err := f.Start(t).Do("INFO", "server")
		if err != nil {
			t.Fatal(err)
		}
		if valkey := strings.Contains(info, "server_name:valkey"); valkey != (f == FlavorValkey) {
			t.Fatalf("%s: INFO server:\n%s", f, info)
		}
	})
}
