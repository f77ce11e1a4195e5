package importer

import (
	"testing"

	"github.com/tetherlb/tether/config"
)

// FuzzHTTPD: whatever the file, HTTPD returns an error or a tether.yaml
// that tether check accepts.
func FuzzHTTPD(f *testing.F) {
	for _, name := range []string{"seed000-httpd.conf", "httpd-docs-balancer.conf", "httpd-docs-ajp.conf"} {
		f.Add(source(f, name).Data)
	}
	f.Add([]byte("BalancerMember balancer://a http://h:1 route=x\nBalancerMember balancer://a http://h:2 route=x\nProxyPass x balancer://a/\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := HTTPD(Source{Name: "f.conf", Data: data})
		if err != nil {
			return
		}
		if _, err := config.Parse("out.yaml", []byte(res.YAML)); err != nil {
			t.Fatalf("tether check refuses the output: %v\n%s", err, res.YAML)
		}
	})
}

// FuzzJK: the same for a workers.properties and a mount file.
func FuzzJK(f *testing.F) {
	f.Add(source(f, "tomcat-docs-workers.properties").Data, source(f, "tomcat-docs-uriworkermap.properties").Data)
	f.Add(source(f, "seed001-workers.properties").Data, source(f, "seed001-httpd.conf").Data)
	f.Fuzz(func(t *testing.T, workers, mounts []byte) {
		res, err := JK(Source{Name: "w.properties", Data: workers}, Source{Name: "m.conf", Data: mounts})
		if err != nil {
			return
		}
		if _, err := config.Parse("out.yaml", []byte(res.YAML)); err != nil {
			t.Fatalf("tether check refuses the output: %v\n%s", err, res.YAML)
		}
	})
}
