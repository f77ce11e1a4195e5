package admin

import (
	"embed"
	"net/http"
	"path"
)

// ui holds the web UI: plain HTML, CSS and JavaScript, no build step and
// nothing loaded from elsewhere.
//
//go:embed ui/index.html ui/app.css ui/app.js ui/favicon.svg
var ui embed.FS

// uiTypes are the files served and their content types; nothing else is.
var uiTypes = map[string]string{
	"index.html":  "text/html; charset=utf-8",
	"app.css":     "text/css; charset=utf-8",
	"app.js":      "text/javascript; charset=utf-8",
	"favicon.svg": "image/svg+xml",
}

// uiRoutes serves the page at / and its files under /ui/. They hold no
// data and need no token: the page asks for the token and sends it with
// every API request.
func (m *Manager) uiRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { serveUI(w, "index.html") })
	mux.HandleFunc("GET /ui/{file}", func(w http.ResponseWriter, r *http.Request) {
		name := path.Base(r.PathValue("file"))
		if _, ok := uiTypes[name]; !ok || name == "index.html" {
			writeError(w, ErrNotFound)
			return
		}
		serveUI(w, name)
	})
}

func serveUI(w http.ResponseWriter, name string) {
	data, err := ui.ReadFile("ui/" + name)
	if err != nil {
		writeError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", uiTypes[name])
	h.Set("Cache-Control", "no-cache") // revalidate: a new tether version brings new files
	w.Write(data)
}
