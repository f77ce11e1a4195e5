package demo

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// The control API, reached through the balancer at /demo/api/ so that the
// demo page calls it on its own origin:
//
//	GET  /demo/api/info                  the URLs and each node's process
//	POST /demo/api/nodes/{route}/kill     SIGKILL the node, as a crash would
//	POST /demo/api/nodes/{route}/restart  start it again (it rejoins the cluster)
//	POST /demo/api/nodes/{route}/drain    drain it through the manager API
//	POST /demo/api/nodes/{route}/enable   make it active again
//
// Changes need the X-Demo-Token header (the page has the token; a
// cross-site form cannot set a header) and, when the browser sends one, an
// Origin of the shop itself.
func (d *demo) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /demo/api/info", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.snapshot())
	})
	mux.HandleFunc("POST /demo/api/nodes/{route}/{action}", d.action)
	return mux
}

func (d *demo) action(w http.ResponseWriter, r *http.Request) {
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Demo-Token")), []byte(d.token)) != 1 {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "missing or wrong X-Demo-Token"})
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !d.sameOrigin(o) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "cross-origin request refused"})
		return
	}
	n := d.node(r.PathValue("route"))
	if n == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such node"})
		return
	}
	var err error
	switch r.PathValue("action") {
	case "kill":
		err = n.kill()
	case "restart":
		if err = n.start(d.sp, d.opts.Binary); err == nil {
			err = d.waitHTTP(r.Context(), "http://"+n.httpAddr+"/healthz", n.proc)
		}
	case "drain":
		err = d.setState(n.route, "draining")
	case "enable":
		err = d.setState(n.route, "active")
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown action"})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		return
	}
	d.logger.Info("demo action", "node", n.route, "action", r.PathValue("action"))
	writeJSON(w, http.StatusOK, d.snapshot())
}

func (d *demo) sameOrigin(origin string) bool {
	u, err := url.Parse(d.info.BalancerURL)
	return err == nil && origin == u.Scheme+"://"+u.Host
}

func (d *demo) node(route string) *node {
	for _, n := range d.nodes {
		if n.route == route {
			return n
		}
	}
	return nil
}

// setState changes a member's state through the manager API, as an
// operator would.
func (d *demo) setState(route, state string) error {
	body, _ := json.Marshal(map[string]string{"state": state, "reason": "tether demo"})
	req, err := http.NewRequest(http.MethodPatch, d.info.ManagerURL+"api/v1/balancers/shop/members/"+url.PathEscape(route), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.info.ManagerToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("manager: %s: %s", resp.Status, e.Error)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
