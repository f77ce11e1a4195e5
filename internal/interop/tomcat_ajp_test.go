package interop

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
	"github.com/tetherlb/tether/internal/testpki"
)

// tomcatBigBody is the size of the upload and the download of TestTomcatOverHTTPAndAJP.
const tomcatBigBody = 100 << 20

// tomcatProto is one way Tether reaches the Tomcats: the member URL, and
// what the application sees of a client that came over TLS.
type tomcatProto struct {
	name   string
	member func(n *tomcat, secretFile string) string // a member line of the config
	// Over AJP the application sees the client as Tether saw it; over HTTP
	// it sees Tether's connection (unless a RemoteIpValve is configured).
	tlsSecure    string // isSecure() for a TLS client
	tlsScheme    string // getScheme() for a TLS client
	clientsPort  bool   // getRemotePort() is the client's own port
	serverIsHost bool   // getServerPort() is the port the client used
}

var tomcatProtos = []tomcatProto{
	{
		name: "http",
		member: func(n *tomcat, _ string) string {
			return fmt.Sprintf("{ url: %s, route: %s }", n.url, n.route)
		},
		tlsSecure: "false", tlsScheme: "http", clientsPort: false, serverIsHost: true,
	},
	{
		name: "ajp",
		member: func(n *tomcat, secretFile string) string {
			return fmt.Sprintf("{ url: 'ajp://%s', route: %s, secret_file: %s }", n.ajpAddr, n.route, secretFile)
		},
		tlsSecure: "true", tlsScheme: "https", clientsPort: true, serverIsHost: true,
	},
}

// tetherFront is a `tether serve` in front of Tomcats: a plaintext and a
// TLS balancer over the same members, and the manager.
type tetherFront struct {
	plain, secure, manager string // addresses
	proc                   *proctest.Proc
}

const managerToken = "interop-manager-token"

func startFront(t *testing.T, members []string) *tetherFront {
	t.Helper()
	dir := t.TempDir()
	cert, key := testpki.NewCA(t, "interop").Issue(t, "localhost", "127.0.0.1")
	f := &tetherFront{plain: proctest.FreeAddr(t), secure: proctest.FreeAddr(t), manager: proctest.FreeAddr(t)}
	list := "      - " + strings.Join(members, "\n      - ")
	conf := filepath.Join(dir, "tether.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`listen: %s
manager: { listen: %s, token: %s }
balancers:
  - name: plain
    path: /app
    passive: { probe_interval: 100ms }
    members:
%s
  - name: secure
    listen: %s
    tls: { cert: %s, key: %s }
    path: /app
    passive: { probe_interval: 100ms }
    members:
%s
`, f.plain, f.manager, managerToken, list, f.secure, cert, key, list)), 0o600)
	f.proc = proctest.Start(t, "tether serve", "serve", "--config", conf)
	proctest.WaitHTTP(t, "http://"+f.plain+"/app/health.jsp", http.StatusOK, 30*time.Second)
	return f
}

func newBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 120 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the test's own self-signed certificate
	}}
}

// echoed is what echo.jsp reports, as key=value lines.
type echoed map[string]string

// echo sends a request to echo.jsp and returns what the servlet saw and
// the local port of the client's connection.
func echo(t *testing.T, c *http.Client, method, u string, body io.Reader, length int64) (echoed, int) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length
	req.Header.Set("Content-Type", "application/octet-stream")
	port := 0
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		port = i.Conn.LocalAddr().(*net.TCPAddr).Port
	}}))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", method, u, resp.StatusCode, b)
	}
	e := echoed{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		e[k] = v
	}
	return e, port
}

// pattern is a reproducible stream of pseudo-random bytes.
func pattern(n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{'t', 'e', 't', 'h', 'e', 'r'}), n)
}

func sha(r io.Reader) (int64, string) {
	h := sha256.New()
	n, _ := io.Copy(h, r)
	return n, hex.EncodeToString(h.Sum(nil))
}

// downloadPattern is what download.jsp sends: byte i is i % 251.
type downloadPattern struct{ off, size int64 }

func (p *downloadPattern) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(b)), p.size-p.off))
	for i := range n {
		b[i] = byte((p.off + int64(i)) % 251)
	}
	p.off += int64(n)
	return n, nil
}

// TestTomcatOverHTTPAndAJP runs the same scenarios with Tether in front
// of three real Tomcat 10 nodes (jvmRoute set, an AJP connector requiring
// a secret), once over their HTTP connectors and once over AJP: sticky
// sessions by jvmRoute, what the servlet API reports of the client (a
// TLS client included), a large upload and a streamed download with
// their digests, a drain through the manager, and failover after SIGKILL.
func TestTomcatOverHTTPAndAJP(t *testing.T) {
	needTomcat(t)
	nodes := make([]*tomcat, 3)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); nodes[i] = startTomcatAJPNoFatal(t, fmt.Sprintf("n%d", i+1)) }()
	}
	wg.Wait()
	for _, n := range nodes {
		if n == nil {
			t.Fatal("a Tomcat node did not start")
		}
	}
	secretFile := filepath.Join(t.TempDir(), "ajp.secret")
	os.WriteFile(secretFile, []byte(ajpSecret+"\n"), 0o600)

	for _, proto := range tomcatProtos {
		var dead *tomcat // killed by the row: started again for the next one
		t.Run(proto.name, func(t *testing.T) {
			members := make([]string, len(nodes))
			for i, n := range nodes {
				members[i] = proto.member(n, secretFile)
			}
			f := startFront(t, members)
			plain, secure := "http://"+f.plain+"/app/", "https://"+f.secure+"/app/"

			// Sticky sessions by jvmRoute: new sessions go round the
			// nodes, each user stays on its node.
			users := make([]*http.Client, 3)
			ids := map[string]bool{}
			for i := range users {
				users[i] = newBrowser()
				p := visit(t, users[i], plain+"session.jsp")
				ids[routeOf(p.id)] = true
			}
			if len(ids) != 3 {
				t.Errorf("three new sessions landed on %v, want one per node", ids)
			}
			for _, u := range users {
				first := visit(t, u, plain+"session.jsp")
				for i := first.count + 1; i < first.count+3; i++ {
					if p := visit(t, u, plain+"session.jsp"); p.id != first.id || p.count != i {
						t.Fatalf("sticky visit: %+v, want %s with count %d", p, first.id, i)
					}
				}
			}

			// What the servlet API reports of a plaintext and a TLS client.
			c := newBrowser()
			e, port := echo(t, c, "GET", plain+"echo.jsp?x=1&y=%2F", nil, 0)
			_, plainPort, _ := net.SplitHostPort(f.plain)
			want := echoed{"remoteAddr": "127.0.0.1", "secure": "false", "scheme": "http", "query": "x=1&y=%2F", "serverPort": plainPort}
			checkEchoed(t, "plaintext client", e, want, port, proto.clientsPort)
			e, port = echo(t, c, "GET", secure+"echo.jsp", nil, 0)
			_, securePort, _ := net.SplitHostPort(f.secure)
			wantTLS := echoed{"remoteAddr": "127.0.0.1", "secure": proto.tlsSecure, "scheme": proto.tlsScheme, "serverPort": securePort}
			checkEchoed(t, "TLS client", e, wantTLS, port, proto.clientsPort)
			if proto.tlsScheme == "https" && (!strings.HasPrefix(e["redirect"], "https://") || e["cipher"] == "null" || e["keySize"] == "null") {
				t.Errorf("TLS client: redirect %q, cipher %s, key size %s: want https and the client's cipher", e["redirect"], e["cipher"], e["keySize"])
			}

			// A large upload (with a length, and chunked) and a streamed
			// download keep their digests, over plaintext and over TLS
			// (HTTP/1.1: the native engine over crypto/tls).
			n, digest := sha(pattern(tomcatBigBody))
			wantN, wantSHA := sha(&downloadPattern{size: tomcatBigBody})
			for _, base := range []string{plain, secure} {
				for _, length := range []int64{tomcatBigBody, -1} {
					e, _ = echo(t, c, "POST", base+"echo.jsp", pattern(tomcatBigBody), length)
					if e["bodyLength"] != strconv.FormatInt(n, 10) || e["bodySHA256"] != digest {
						t.Errorf("upload to %s (length %d): the servlet read %s bytes with SHA-256 %s, want %d and %s", base, length, e["bodyLength"], e["bodySHA256"], n, digest)
					}
				}
				resp, err := c.Get(fmt.Sprintf("%sdownload.jsp?size=%d", base, tomcatBigBody))
				if err != nil {
					t.Fatal(err)
				}
				gotN, got := sha(resp.Body)
				resp.Body.Close()
				if gotN != wantN || got != wantSHA {
					t.Errorf("download from %s: %d bytes with SHA-256 %s, want %d and %s", base, gotN, got, wantN, wantSHA)
				}
			}

			// Drain the first user's node: it keeps its user, takes no new session.
			alice := users[0]
			a := visit(t, alice, plain+"session.jsp")
			drained := routeOf(a.id)
			setState(t, f, "plain", drained, "draining")
			for range 6 {
				if p := visit(t, newBrowser(), plain+"session.jsp"); routeOf(p.id) == drained {
					t.Fatalf("a new session went to draining %s", drained)
				}
			}
			if p := visit(t, alice, plain+"session.jsp"); p.id != a.id || p.count != a.count+1 {
				t.Fatalf("alice on draining %s: %+v, want %s count %d", drained, p, a.id, a.count+1)
			}
			setState(t, f, "plain", drained, "active")

			// SIGKILL the node of a user: the next request fails over to a
			// live node (a new session there: these Tomcats do not
			// replicate), which it sticks to after.
			bob := users[1]
			b1 := visit(t, bob, plain+"session.jsp")
			for _, n := range nodes {
				if n.route == routeOf(b1.id) {
					dead = n
				}
			}
			dead.proc.Kill()
			b2 := visit(t, bob, plain+"session.jsp")
			if routeOf(b2.id) == dead.route || b2.count != 1 {
				t.Fatalf("after killing %s: %+v, want a new session elsewhere", dead.route, b2)
			}
			if b3 := visit(t, bob, plain+"session.jsp"); b3.id != b2.id || b3.count != 2 {
				t.Fatalf("after failover: %+v, want to stick to %s", b3, b2.id)
			}
		})
		if dead != nil {
			dead.start(t) // on the test's own goroutine: it outlives the row
		}
	}
}

func checkEchoed(t *testing.T, what string, got, want echoed, clientPort int, clientsPort bool) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s=%q, want %q (all: %v)", what, k, got[k], v, got)
		}
	}
	if same := got["remotePort"] == strconv.Itoa(clientPort); same != clientsPort {
		t.Errorf("%s: remotePort %s, client's port %d: same=%v, want %v", what, got["remotePort"], clientPort, same, clientsPort)
	}
}

// setState changes a member's state through the manager API.
func setState(t *testing.T, f *tetherFront, bal, route, state string) {
	t.Helper()
	req, _ := http.NewRequest("PATCH", "http://"+f.manager+"/api/v1/balancers/"+bal+"/members/"+route, strings.NewReader(`{"state":"`+state+`"}`))
	req.Header.Set("Authorization", "Bearer "+managerToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PATCH %s/%s state %s: %d %s", bal, route, state, resp.StatusCode, b)
	}
}

// memberView reads one member from the manager API.
func memberView(t *testing.T, f *tetherFront, bal, route string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+f.manager+"/api/v1/balancers/"+bal+"/members/"+route, nil)
	req.Header.Set("Authorization", "Bearer "+managerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET member %s/%s: %d %v", bal, route, resp.StatusCode, err)
	}
	return m
}

// TestTomcatWrongAJPSecret: a Tomcat refuses requests sent with the wrong
// secret (403), and Tether says so in its log and its manager.
func TestTomcatWrongAJPSecret(t *testing.T) {
	needTomcat(t)
	n := startTomcatAJP(t, "n1", ajpSecret)
	wrong := filepath.Join(t.TempDir(), "wrong.secret")
	os.WriteFile(wrong, []byte("not-the-secret"), 0o600)
	dir := t.TempDir()
	f := &tetherFront{plain: proctest.FreeAddr(t), manager: proctest.FreeAddr(t)}
	conf := filepath.Join(dir, "tether.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`listen: %s
manager: { listen: %s, token: %s }
balancers:
  - name: plain
    members:
      - { url: 'ajp://%s', route: n1, secret_file: %s }
`, f.plain, f.manager, managerToken, n.ajpAddr, wrong)), 0o600)
	f.proc = proctest.Start(t, "tether serve", "serve", "--config", conf)
	proctest.WaitHTTP(t, "http://"+f.plain+"/app/health.jsp", http.StatusForbidden, 30*time.Second)
	proctest.Eventually(t, 10*time.Second, func() error {
		if v := memberView(t, f, "plain", "n1")["ajp_refused"]; v == nil || v.(float64) < 1 {
			return fmt.Errorf("the manager shows ajp_refused %v", v)
		}
		if out := f.proc.Output(); !strings.Contains(out, "ajp member refused a request") || strings.Contains(out, "not-the-secret") {
			return fmt.Errorf("tether's log:\n%s", out)
		}
		return nil
	})
}

// startTomcatAJPNoFatal starts a node with an AJP connector from a
// goroutine (see startTomcatNoFatal).
func startTomcatAJPNoFatal(t *testing.T, route string) (tc *tomcat) {
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("tomcat %s: %v", route, r)
			tc = nil
		}
	}()
	return startTomcatAJP(t, route, ajpSecret)
}
