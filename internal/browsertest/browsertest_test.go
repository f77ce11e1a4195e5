package browsertest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

const page = `<!doctype html><html><head><title>t</title></head><body>
<input id="name"><button id="go">Go</button><p id="out">nothing yet</p>
<script>
document.getElementById('go').addEventListener('click', () => {
  document.getElementById('out').textContent = 'hello ' + document.getElementById('name').value;
  console.error('clicked');
});
</script></body></html>`

func TestDriveAPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	}))
	defer srv.Close()
	b := Start(t, Options{Width: 800, Height: 600})
	if err := b.Navigate(srv.URL); err != nil {
		t.Fatal(err)
	}
	in, err := b.Find("#name")
	if err != nil {
		t.Fatal(err)
	}
	if err := in.SendKeys("tether"); err != nil {
		t.Fatal(err)
	}
	btn, err := b.Find("#go")
	if err != nil {
		t.Fatal(err)
	}
	if err := btn.Click(); err != nil {
		t.Fatal(err)
	}
	out, _ := b.Find("#out")
	if s, err := out.Text(); err != nil || s != "hello tether" {
		t.Errorf("text %q, %v", s, err)
	}
	var n int
	if err := b.Execute(&n, "return arguments[0] + document.querySelectorAll('p').length", 41); err != nil || n != 42 {
		t.Errorf("execute: %d, %v", n, err)
	}
	if _, err := b.Find("#missing"); !IsNoSuchElement(err) {
		t.Errorf("missing element: %v", err)
	}
	all, err := b.FindAll("input, button")
	if err != nil || len(all) != 2 {
		t.Errorf("FindAll: %d, %v", len(all), err)
	}
	png, err := b.Screenshot()
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("screenshot: %d bytes, %v", len(png), err)
	}
	logs, err := b.Logs()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range logs {
		found = found || (l.Level == "SEVERE" && bytes.Contains([]byte(l.Message), []byte("clicked")))
	}
	if !found {
		t.Errorf("console error not in the logs: %+v", logs)
	}
}
