package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherlb/tether/admin"
	"github.com/tetherlb/tether/internal/proctest"
)

func TestServeRefusesAShortGroupKey(t *testing.T) {
	key := filepath.Join(t.TempDir(), "group.key")
	if err := os.WriteFile(key, []byte("  too-short \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, fmt.Sprintf("listen: 127.0.0.1:0\nmanager: {listen: 127.0.0.1:0, token: t0123456789abcdef}\ngroup: {listen: %s, key_file: %s}\nbalancers:\n  - {name: b, members: [{url: http://127.0.0.1:9, route: n1}]}\n", proctest.FreeAddr(t), key))
	err := Serve(context.Background(), cfg, ServeOptions{Logger: quiet()})
	if err == nil || !strings.Contains(err.Error(), "9 bytes, want at least 16") {
		t.Fatalf("Serve with a 9-byte group key: %v", err)
	}
}

// TestServeAloneInAGroup: an instance whose peers do not answer serves
// after join_timeout with its own state, and its manager says so.
func TestServeAloneInAGroup(t *testing.T) {
	key := filepath.Join(t.TempDir(), "group.key")
	if err := os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, fmt.Sprintf("listen: 127.0.0.1:0\nmanager: {listen: 127.0.0.1:0, token: t0123456789abcdef}\n"+
		"group: {name: lonely, listen: %s, peers: [%s], key_file: %s, join_timeout: 200ms}\n"+
		"balancers:\n  - {name: b, members: [{url: http://127.0.0.1:9, route: n1}]}\n", proctest.FreeAddr(t), proctest.FreeAddr(t), key))
	s := serveInTest(t, cfg, ServeOptions{})
	c, _ := admin.NewClient("http://"+s.ManagerAddr(), "t0123456789abcdef", admin.ClientOptions{})
	if _, err := c.Balancers(context.Background()); err != nil {
		t.Fatalf("an instance alone does not serve its manager: %v", err)
	}
	var h admin.Health
	resp, err := http.Get("http://" + s.ManagerAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	if h.Group != "alone" {
		t.Errorf("/healthz %+v, want group alone", h)
	}
}
