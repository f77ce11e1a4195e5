package importer

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherlb/tether/config"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/")

func source(t testing.TB, name string) Source {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return Source{Name: name, Data: b}
}

// TestImportCases translates the seeds' configurations and examples of
// httpd's and Tomcat's documentation: the output passes config
// validation (tether check) and equals its golden file, notes included.
func TestImportCases(t *testing.T) {
	tests := []struct {
		name   string
		run    func() (*Result, error)
		golden string
		check  func(t *testing.T, c config.Config)
	}{
		{"seed 000 httpd", func() (*Result, error) { return HTTPD(source(t, "seed000-httpd.conf")) }, "seed000.golden",
			func(t *testing.T, c config.Config) {
				b := c.Balancers[0]
				if b.Path != "/app" || !b.NoFailover || len(b.Members) != 3 || b.Members[1].URL != "ajp://app-02:8009" || b.Members[1].Route != "app02" ||
					len(b.Sticky.Names) != 1 || b.Sticky.Names[0] != "JSESSIONID" || !b.AJP.AllowNoSecret {
					t.Errorf("balancer %+v", b)
				}
			}},
		{"seed 001 mod_jk", func() (*Result, error) {
			return JK(source(t, "seed001-workers.properties"), source(t, "seed001-httpd.conf"))
		}, "seed001.golden",
			func(t *testing.T, c config.Config) {
				b := c.Balancers[0]
				if b.Name != "balancer" || b.Path != "" || len(b.Members) != 2 || b.Members[0].URL != "ajp://192.168.1.111:8009" || b.Members[1].Route != "node2" {
					t.Errorf("balancer %+v", b)
				}
			}},
		{"httpd docs mod_proxy_balancer", func() (*Result, error) { return HTTPD(source(t, "httpd-docs-balancer.conf")) }, "httpd-docs-balancer.golden",
			func(t *testing.T, c config.Config) {
				if len(c.Balancers) != 3 || c.Balancers[1].Sticky.Names[0] != "ROUTEID" || c.Balancers[2].Members[2].State != "standby" ||
					c.Balancers[2].Members[1].Weight != 2 || c.Balancers[2].Method != "bytraffic" || c.Balancers[2].Path != "/hot" {
					t.Errorf("balancers %+v", c.Balancers)
				}
			}},
		{"httpd docs mod_proxy_ajp", func() (*Result, error) { return HTTPD(source(t, "httpd-docs-ajp.conf")) }, "httpd-docs-ajp.golden",
			func(t *testing.T, c config.Config) {
				b := c.Balancers[0]
				if c.Listen != "0.0.0.0:80" || b.Path != "/tomcat" || b.AJP.SecretEnv == "" || b.MaxAttempts != 3 || b.Timeouts.Response.Seconds() != 30 ||
					b.Members[1].Weight != 3 || b.Members[2].State != "stopped" || b.Members[1].MaxConns != 50 || len(b.Sticky.Names) != 2 {
					t.Errorf("balancer %+v", b)
				}
			}},
		{"tomcat docs workers.properties", func() (*Result, error) {
			return JK(source(t, "tomcat-docs-workers.properties"), source(t, "tomcat-docs-uriworkermap.properties"))
		}, "tomcat-docs-workers.golden",
			func(t *testing.T, c config.Config) {
				b := c.Balancers[0]
				if c.Manager == nil || b.Path != "/examples" || b.Method != "bybusyness" || b.MaxAttempts != 2 || b.AJP.SecretEnv == "" ||
					b.Members[1].State != "draining" || b.Members[2].State != "standby" || b.Members[0].URL != "ajp://node1.mydomain.com:8009" ||
					b.Timeouts.Connect.Seconds() != 2 {
					t.Errorf("balancer %+v", b)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.run()
			if err != nil {
				t.Fatal(err)
			}
			got := res.YAML + "---- notes (stderr)\n"
			for _, n := range res.Notes {
				got += n.String() + "\n"
			}
			golden := filepath.Join("testdata", tt.golden)
			if *update {
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (go test -update rewrites it):\n%s", golden, got)
			}
			c, err := config.Parse("imported.yaml", []byte(res.YAML))
			if err != nil {
				t.Fatalf("tether check refuses the output: %v\n%s", err, res.YAML)
			}
			tt.check(t, c)
			if strings.Contains(res.YAML, "s3cret") || strings.Contains(res.YAML, "changeit") {
				t.Error("a secret was copied into the output")
			}
		})
	}
}

func TestImportErrors(t *testing.T) {
	tests := []struct {
		name string
		run  func() (*Result, error)
		want string
	}{
		{"no balancer", func() (*Result, error) { return HTTPD(Source{"a.conf", []byte("Listen 80\n")}) }, "a.conf: no balancer://"},
		{"bad section", func() (*Result, error) { return HTTPD(Source{"a.conf", []byte("<Proxy balancer://x\n")}) }, "a.conf: line 1: section"},
		{"bad quote", func() (*Result, error) {
			return HTTPD(Source{"a.conf", []byte("BalancerMember \"balancer://x http://h\n")})
		}, "a.conf: line 1: unterminated quote"},
		{"no worker.list", func() (*Result, error) { return JK(Source{"w.properties", []byte("worker.a.type=lb\n")}) }, "w.properties: no worker.list"},
		{"not key=value", func() (*Result, error) { return JK(Source{"w.properties", []byte("worker.list=a\nnonsense\n")}) }, "w.properties: line 2: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.run()
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("err %v, want %q…", err, tt.want)
			}
		})
	}
}

// TestUnclosedProxy: a <Proxy> without </Proxy> (as seed 000 reads once
// extracted from its page) is read to the end, with a note.
func TestUnclosedProxy(t *testing.T) {
	res, err := HTTPD(Source{"s.conf", []byte("<Proxy balancer://app-cluster>\n  BalancerMember ajp://127.0.0.1:8009 route=app01\n\nProxyPass /app balancer://app-cluster/app stickysession=JSESSIONID\n")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Notes) == 0 || res.Notes[len(res.Notes)-1].String() != "s.conf:1: <Proxy app-cluster> has no </Proxy>: read to the end of the file" {
		t.Errorf("notes %v", res.Notes)
	}
	if _, err := config.Parse("x.yaml", []byte(res.YAML)); err != nil {
		t.Fatal(err)
	}
}
