package tether_test

// This test enforces the dependency rules of docs/architecture.md ("Dependency
// rules") with `go list -deps`.

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/tetherlb/tether"

type pkg struct {
	ImportPath string
	Deps       []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps=false", "-json=ImportPath,Deps", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

// rel returns the path of a tether package relative to the module ("" for
// packages outside it).
func rel(path string) string {
	if path == module {
		return "."
	}
	if r, ok := strings.CutPrefix(path, module+"/"); ok {
		return r
	}
	return ""
}

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

func TestDependencyRules(t *testing.T) {
	libraries := []string{"route", "config", "balancer", "session", "cluster", "ajp", "group"}
	for _, p := range listPackages(t) {
		me := rel(p.ImportPath)
		var mine []string
		for _, d := range p.Deps {
			if r := rel(d); r != "" {
				mine = append(mine, r)
			}
		}
		for _, d := range mine {
			switch {
			// 1. route and config import nothing from tether; nor do the
			// leaf protocol and health packages.
			case under(me, "route") || under(me, "config") || under(me, "ajp") || under(me, "group") ||
				under(me, "balancer/h1") || under(me, "balancer/health") || under(me, "balancer/proxyproto"):
				t.Errorf("%s imports %s: route, config, ajp, group, balancer/h1, balancer/health and balancer/proxyproto import nothing from tether", me, d)
			// 2. balancer, session and cluster never import each other;
			// session/clusterstore is the one place sessions meet the cluster.
			case under(me, "balancer") && (under(d, "session") || under(d, "cluster")),
				under(me, "cluster") && (under(d, "session") || under(d, "balancer")),
				under(me, "session") && under(d, "balancer"),
				under(me, "session") && under(d, "cluster") && !under(me, "session/clusterstore"):
				t.Errorf("%s imports %s: balancer, session and cluster agree only through route", me, d)
			}
			// 3. Libraries never import config, admin, metrics or internal/.
			for _, lib := range libraries[2:] {
				if under(me, lib) && (under(d, "config") || under(d, "admin") || under(d, "metrics") || under(d, "internal")) {
					t.Errorf("%s imports %s: libraries take Options, not config, admin, metrics or internal", me, d)
				}
			}
		}
		// 5. No util, common or types packages.
		for _, part := range strings.Split(me, "/") {
			switch part {
			case "util", "utils", "common", "types", "helpers":
				t.Errorf("package %s: no util, common or types packages", me)
			}
		}
	}
}

// TestThirdPartyDependencies keeps the module's dependencies to the few
// chosen on purpose.
func TestThirdPartyDependencies(t *testing.T) {
	allowed := []string{
		"github.com/hashicorp/memberlist", "github.com/prometheus/client_golang", "go.yaml.in/yaml/v3",
		"github.com/anishathalye/porcupine", // linearizability checks, session/sessiontest only
		"github.com/redis/go-redis/v9",      // session/redisstore only
		"github.com/bradfitz/gomemcache",    // session/memcachestore only
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{if not .Indirect}}{{.Path}}{{end}}", "all").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	for _, m := range strings.Fields(string(out)) {
		if m == module {
			continue
		}
		ok := false
		for _, a := range allowed {
			ok = ok || m == a
		}
		if !ok {
			t.Errorf("direct dependency %s is not on the list; add it here on purpose, or use the standard library", m)
		}
	}
}
