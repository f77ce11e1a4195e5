package config

import (
	"fmt"
	"strings"
)

// hosts checks a balancer's host names: exact names or "*.parent", no
// port, no duplicates.
func (v *checker) hosts(f string, hosts []string) {
	seen := map[string]int{}
	for i, h := range hosts {
		hf := fmt.Sprintf("%s.hosts[%d]", f, i)
		if !validHost(h) {
			v.add(hf, "%q is not a host name: use a name like shop.example.com or *.example.com, without port", h)
			continue
		}
		n := normalHost(h)
		if j, dup := seen[n]; dup {
			v.add(hf, "%q is already hosts[%d]", h, j)
		}
		seen[n] = i
	}
}

// validHost reports whether h is a host name ("shop.example.com",
// "localhost", "127.0.0.1") or a one-label wildcard ("*.example.com").
func validHost(h string) bool {
	name := strings.TrimPrefix(h, "*.")
	if name == "" || len(name) > 253 || strings.Contains(name, "*") {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

// normalHost is a host name as the balancer compares it: lower case,
// without a final dot.
func normalHost(h string) string { return strings.ToLower(strings.TrimSuffix(h, ".")) }

// site checks that no other balancer serves the same host and path on
// the same listener; sites maps "listen host path" to a balancer index.
func (v *checker) site(f string, c *Config, b *Balancer, i int, sites map[string]int) {
	hosts := b.Hosts
	if len(hosts) == 0 {
		hosts = []string{""} // every host no other balancer names
	}
	for _, h := range hosts {
		key := c.ListenOf(b) + " " + normalHost(h) + " " + pathOrRoot(b.Path)
		if j, dup := sites[key]; dup && j != i {
			on := c.ListenOf(b)
			if h != "" {
				on = h + " on " + on
			}
			v.add(f+".path", "balancers[%d] already serves path %q on %s", j, pathOrRoot(b.Path), on)
			continue
		}
		sites[key] = i
	}
}
