package demo

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// writeConfig writes the balancer's configuration: the shop over the
// nodes, with replicated sessions so that a drain ends at once, and the
// demo's control API under /demo on the same origin as the shop.
func (d *demo) writeConfig(listen, manager string) (string, error) {
	var members strings.Builder
	for _, n := range d.nodes {
		fmt.Fprintf(&members, "      - { url: http://%s, route: %s }\n", n.httpAddr, n.route)
	}
	conf := fmt.Sprintf(`# Written by tether demo.
listen: %s
manager:
  listen: %s
  token: %s
  state_file: %s
balancers:
  - name: shop
    path: /
    sessions: replicated        # the nodes replicate: any node can take a session over
    health: { path: /healthz, interval: 500ms, timeout: 1s, rise: 1, fall: 2 }
    passive: { probe_interval: 250ms }
    timeouts: { connect: 500ms, response: 5s }
    drain: { idle: 1m, done: stop }
    members:
%s  - name: demo
    path: /demo
    members:
      - { url: http://%s, route: demo }
`, listen, manager, d.info.ManagerToken, filepath.Join(d.opts.Dir, "state.json"), members.String(), d.control.Addr())
	path := filepath.Join(d.opts.Dir, "tether.yaml")
	return path, os.WriteFile(path, []byte(conf), 0o600)
}
