package cart

import (
	_ "embed"
	"errors"
	"html/template"
	"net/http"

	"github.com/tetherlb/tether/route"
	"github.com/tetherlb/tether/session"
)

//go:embed page.html
var pageHTML string

//go:embed panel.js
var panelJS string

// parsePage parses page.html; New keeps the template, safe for concurrent
// use.
func parsePage() (*template.Template, error) {
	return template.New("cart").Parse(pageHTML)
}

// pageData is what page.html shows.
type pageData struct {
	Cart
	ID, Sep, Route string // the session id split for display
	Error          string
	DemoToken      string // set: show the demo panel
}

// page renders the cart as HTML; it creates no session.
func (a *App) page(w http.ResponseWriter, r *http.Request) {
	c, err := a.load(session.From(r))
	d := pageData{Cart: c, DemoToken: a.o.DemoToken}
	if err != nil {
		d.Error = "Your session could not be read: " + err.Error()
		w.WriteHeader(session.StatusCode(err))
	}
	if id, rt, ok := route.Split(c.Session, route.DefaultSeparator); ok {
		d.ID, d.Sep, d.Route = id, string(route.DefaultSeparator), rt
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	if err := a.tmpl.Execute(w, d); err != nil {
		a.log.Error("cart: page", "err", err)
	}
}

// addForm adds the form's item and redirects back to the page (303), so
// that reloading the page does not post again.
func (a *App) addForm(w http.ResponseWriter, r *http.Request) {
	item, status, err := readItem(w, r)
	if err == nil {
		err = a.add(session.From(r), item)
		status = session.StatusCode(err)
	}
	if err != nil {
		if errors.Is(err, errCartFull) {
			status = http.StatusUnprocessableEntity
		}
		http.Error(w, err.Error(), status)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logoutForm ends the session and redirects to the page, which creates no
// session: the browser's next request carries no cookie.
func (a *App) logoutForm(w http.ResponseWriter, r *http.Request) {
	a.m.Logout(w, r, "/")
}

// panelScript serves the demo panel's script (no inline script: the page's
// Content-Security-Policy allows scripts from the page's origin only).
func (a *App) panelScript(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write([]byte(panelJS))
}
