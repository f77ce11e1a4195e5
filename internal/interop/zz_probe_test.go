package interop

import (
	"io"
	"net/http"
	"testing"
	"strings"

	"github.com/tetherlb/tether/ajp"
)

func TestZZProbe(t *testing.T) {
	needTomcat(t)
	tc := startTomcatAJP(t, "n1", "s3cret")
	for _, sec := range []string{"s3cret", "wrong", ""} {
		c, _ := ajp.NewClient(ajp.ClientOptions{Addr: tc.ajpAddr, Secret: sec, Route: "n1"})
		r, _ := http.NewRequest("POST", "http://shop.example:8080/app/echo.jsp?x=1", strings.NewReader("hello"))
		resp, err := c.Do(r, &ajp.Forward{RemoteAddr: "192.0.2.7", RemotePort: 5555, ServerName: "shop.example", ServerPort: 8443, Secure: true, SSLCipher: "TLS_AES_128_GCM_SHA256", SSLKeySize: 128})
		if err != nil {
			t.Logf("secret %q: %v", sec, err)
			continue
		}
		b, err := io.ReadAll(resp.Body)
		t.Logf("secret %q: %s %v %q err=%v", sec, resp.Status, resp.Header, b, err)
	}
	t.Log(tc.proc.Output())
}
