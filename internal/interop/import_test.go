package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/demo/cart"
	"github.com/tetherlb/tether/internal/proctest"
)

// TestImportRoutesLikeTheOriginal runs a real Apache httpd with an
// mod_proxy_balancer (ajp:// members) and a mod_jk configuration in front
// of three `tether cart --ajp` nodes, translates each configuration with
// `tether import`, serves the translation with `tether serve`, and checks
// that both send every session id to the same node.
func TestImportRoutesLikeTheOriginal(t *testing.T) {
	proxyMods := []string{"slotmem_shm", "proxy", "proxy_ajp", "proxy_balancer", "lbmethod_byrequests"}
	needHTTPD(t, append(proxyMods, "jk")...)
	nodes := startAJPCarts(t, ajpSecret, "n1", "n2", "n3")

	var balancer strings.Builder
	balancer.WriteString("<Proxy \"balancer://cart\">\n")
	for _, n := range nodes {
		fmt.Fprintf(&balancer, "    BalancerMember \"ajp://%s\" route=%s secret=%s loadfactor=1\n", n.ajp, n.route, ajpSecret)
	}
	balancer.WriteString("    ProxySet stickysession=JSESSIONID|jsessionid lbmethod=byrequests\n</Proxy>\nProxyPass \"/\" \"balancer://cart/\"\n")

	tests := []struct {
		name    string
		modules []string
		conf    func(dir string) string   // the httpd configuration of the balancing
		args    func(dir string) []string // tether import's arguments
	}{
		{
			name: "mod_proxy_balancer", modules: proxyMods,
			conf: func(dir string) string {
				writeTestFile(t, filepath.Join(dir, "balancer.conf"), balancer.String())
				return balancer.String()
			},
			args: func(dir string) []string { return []string{"httpd", filepath.Join(dir, "balancer.conf")} },
		},
		{
			name: "mod_jk", modules: []string{"jk"},
			conf: func(dir string) string {
				mounts := "JkMount /* lb\n"
				writeTestFile(t, filepath.Join(dir, "mounts.conf"), mounts)
				return modJKConf(t, workersProperties(nodes, ajpSecret), mounts)(dir)
			},
			args: func(dir string) []string {
				return []string{"jk", filepath.Join(dir, "workers.properties"), filepath.Join(dir, "mounts.conf")}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dir string
			h := startHTTPD(t, tt.modules, func(d string) string { dir = d; return tt.conf(d) })

			imp := exec.Command(proctest.Binary(t), append([]string{"import"}, tt.args(dir)...)...)
			var yaml, notes bytes.Buffer
			imp.Stdout, imp.Stderr = &yaml, &notes
			if err := imp.Run(); err != nil {
				t.Fatalf("tether import: %v\n%s", err, notes.String())
			}
			t.Logf("tether import printed:\n%s\nnotes:\n%s", yaml.String(), notes.String())
			if strings.Contains(yaml.String(), ajpSecret) {
				t.Fatal("the translation holds the secret")
			}
			env := secretVariable(t, yaml.String())
			listen := proctest.FreeAddr(t)
			conf := filepath.Join(t.TempDir(), "tether.yaml")
			writeTestFile(t, conf, "listen: "+listen+"\n"+yaml.String())
			serve := exec.Command(proctest.Binary(t), "serve", "--config", conf)
			serve.Env = append(os.Environ(), env+"="+ajpSecret)
			proctest.StartCmd(t, "tether serve", serve)
			proctest.WaitHTTP(t, "http://"+listen+"/healthz", http.StatusOK, 30*time.Second)

			for _, n := range nodes {
				for _, id := range []string{"0123456789ABCDEF." + n.route, "FEDCBA9876543210." + n.route} {
					viaHTTPD := nodeOf(t, h.url+"/api/cart", id)
					viaTether := nodeOf(t, "http://"+listen+"/api/cart", id)
					if viaHTTPD != n.route || viaTether != viaHTTPD {
						t.Errorf("session %s: httpd sent it to %s, tether to %s; want both %s", id, viaHTTPD, viaTether, n.route)
					}
				}
			}
		})
	}
}

// secretVariable returns the environment variable the translation reads
// the AJP secret from.
func secretVariable(t *testing.T, yaml string) string {
	t.Helper()
	_, rest, ok := strings.Cut(yaml, "secret_env: ")
	if !ok {
		t.Fatalf("the translation names no secret_env:\n%s", yaml)
	}
	return strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == '}' || r == ',' || r == '\n' })[0]
}

// nodeOf asks the cart API at u which node answered.
func nodeOf(t *testing.T, u, cookie string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if cookie != "" {
		req.Header.Set("Cookie", "JSESSIONID="+cookie)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var c cart.Cart
	if err := json.Unmarshal(b, &c); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return c.Node
}
