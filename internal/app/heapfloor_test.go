package app

import (
	"strings"
	"testing"

	"github.com/tetherlb/tether/config"
)

// TestHeapFloorFromEnvironment: TETHER_HEAP_FLOOR sets the collector's
// heap floor, and a bad value is a problem Check reports, naming the
// variable, with the file's own problems.
func TestHeapFloorFromEnvironment(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte("balancers:\n  - name: b\n    members:\n      - {url: 'http://127.0.0.1:1', route: n1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		value string
		want  uint64
		err   string
	}{
		{"", DefaultHeapFloor, ""},
		{"32MiB", 32 << 20, ""},
		{"off", 0, ""},
		{"0", 0, ""},
		{"64M", 0, `TETHER_HEAP_FLOOR: want a number of bytes with an optional unit B, KiB, MiB, GiB or TiB (64MiB), or off`},
	} {
		getenv := func(k string) string {
			if k == "TETHER_HEAP_FLOOR" {
				return tt.value
			}
			return ""
		}
		got, err := heapFloor(getenv)
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && err.Error() != tt.err) {
			t.Errorf("TETHER_HEAP_FLOOR=%q: %d, %v; want %d, %q", tt.value, got, err, tt.want, tt.err)
		}
		_, cerr := Check(cfg, ServeOptions{Getenv: getenv})
		if (cerr == nil) != (tt.err == "") || (cerr != nil && !strings.Contains(cerr.Error(), tt.err)) {
			t.Errorf("TETHER_HEAP_FLOOR=%q: Check says %v, want %q", tt.value, cerr, tt.err)
		}
	}
}
