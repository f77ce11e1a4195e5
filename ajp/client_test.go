package ajp

// A hand-written AJP13 client, the web server's side of the protocol, for
// the tests. It encodes on its own (not with the package's encoders), so
// that a symmetric mistake shows.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tetherlb/tether/internal/proctest"
)

// wire builds AJP13 data the way mod_jk does.
type wire struct{ bytes.Buffer }

func (w *wire) byte(b byte) *wire { w.WriteByte(b); return w }
func (w *wire) int(n int) *wire   { w.WriteByte(byte(n >> 8)); w.WriteByte(byte(n)); return w }
func (w *wire) str(s string) *wire {
	w.int(len(s))
	w.WriteString(s)
	w.WriteByte(0)
	return w
}
func (w *wire) null() *wire { return w.int(0xFFFF) }

// packet frames payload as a packet from the web server.
func packet(payload []byte) []byte {
	return append([]byte{0x12, 0x34, byte(len(payload) >> 8), byte(len(payload))}, payload...)
}

// attr is a Forward Request attribute: a code and its encoded value.
type attr struct {
	code  byte
	value []byte
}

func strAttr(code byte, s string) attr { return attr{code, new(wire).str(s).Bytes()} }
func reqAttr(name, value string) attr {
	return attr{0x0A, new(wire).str(name).str(value).Bytes()}
}

// fwd is a Forward Request as the test sends it.
type fwd struct {
	method     byte   // method code; 0 means GET (2)
	protocol   string // "" means HTTP/1.1
	uri        string // "" means /
	remoteAddr string // "" means 192.0.2.7
	serverName string // "" means www.example.org
	port       int    // 0 means 80
	ssl        bool
	headers    [][2]string // name (coded when known to mod_jk), value
	attrs      []attr
	secret     string // sent first, as mod_jk does, unless noSecret
	noSecret   bool
}

var jkHeaderCodes = map[string]int{
	"accept": 0xA001, "accept-charset": 0xA002, "accept-encoding": 0xA003, "accept-language": 0xA004,
	"authorization": 0xA005, "connection": 0xA006, "content-type": 0xA007, "content-length": 0xA008,
	"cookie": 0xA009, "cookie2": 0xA00A, "host": 0xA00B, "pragma": 0xA00C, "referer": 0xA00D,
	"user-agent": 0xA00E,
}

func (f fwd) payload() []byte {
	w := new(wire)
	m := f.method
	if m == 0 {
		m = 2
	}
	w.byte(2).byte(m)
	w.str(or(f.protocol, "HTTP/1.1")).str(or(f.uri, "/")).str(or(f.remoteAddr, "192.0.2.7")).str(or(f.remoteAddr, "192.0.2.7"))
	w.str(or(f.serverName, "www.example.org"))
	port := f.port
	if port == 0 {
		port = 80
	}
	w.int(port)
	if f.ssl {
		w.byte(1)
	} else {
		w.byte(0)
	}
	w.int(len(f.headers))
	for _, h := range f.headers {
		if code, ok := jkHeaderCodes[strings.ToLower(h[0])]; ok {
			w.int(code)
		} else {
			w.str(h[0])
		}
		w.str(h[1])
	}
	if !f.noSecret {
		w.byte(0x0C).str(f.secret)
	}
	for _, a := range f.attrs {
		w.byte(a.code)
		w.Write(a.value)
	}
	w.byte(0xFF)
	return w.Bytes()
}

func (f fwd) packet() []byte { return packet(f.payload()) }

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// bodyPacket is a request body chunk; nil data gives the empty packet that
// ends a body.
func bodyPacket(data []byte) []byte {
	if data == nil {
		return packet(nil)
	}
	return packet(append(new(wire).int(len(data)).Bytes(), data...))
}

// client is one AJP connection to the server under test.
type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second)) // a wedged server fails the test, not hangs it
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *client) send(b ...[]byte) {
	c.t.Helper()
	if _, err := c.c.Write(bytes.Join(b, nil)); err != nil {
		c.t.Fatal(err)
	}
}

// read reads one packet to the web server; it fails the test on anything
// but a well-framed "AB" packet.
func (c *client) read() []byte {
	c.t.Helper()
	p, err := c.tryRead()
	if err != nil {
		c.t.Fatalf("reading a packet: %v", err)
	}
	return p
}

func (c *client) tryRead() ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return nil, err
	}
	if h[0] != 'A' || h[1] != 'B' {
		return nil, errors.New("packet without AB magic")
	}
	p := make([]byte, binary.BigEndian.Uint16(h[2:]))
	if _, err := io.ReadFull(c.br, p); err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, errors.New("empty packet")
	}
	return p, nil
}

// expectClosed checks that the server closes the connection without
// sending more than packets of the allowed types.
func (c *client) expectClosed(allowed ...byte) {
	c.t.Helper()
	for {
		p, err := c.tryRead()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			return
		}
		if err != nil {
			c.t.Fatalf("want the connection closed, got %v", err)
		}
		if !bytes.Contains(allowed, p[:1]) {
			c.t.Fatalf("want the connection closed, got a packet of type %d", p[0])
		}
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// resp is a whole response as the web server sees it.
type resp struct {
	status  int
	msg     string
	header  http.Header
	body    []byte
	chunks  []int // data length of each Send Body Chunk, flushes (0) included
	asked   []int // lengths asked for by Get Body Chunk
	reuse   bool
	packets int
}

// response reads a response; each Get Body Chunk is answered with the
// next packet from more (or, when more is exhausted, the empty packet).
func (c *client) response(more ...[]byte) resp {
	c.t.Helper()
	r := resp{header: http.Header{}}
	for {
		p := c.read()
		r.packets++
		d := &decoder{b: p[1:]}
		switch p[0] {
		case typeSendHeaders:
			r.status = d.uint16()
			r.msg, _ = d.string()
			n := d.uint16()
			for range n {
				name := ""
				if code := d.peekUint16(); code&0xFF00 == 0xA000 {
					d.uint16()
					name = responseHeaders[code&0xFF]
				} else {
					name, _ = d.string()
				}
				v, _ := d.string()
				r.header.Add(name, v)
			}
			if d.err != nil || len(d.b) != 0 {
				c.t.Fatalf("bad Send Headers %x: %v", p, d.err)
			}
		case typeSendBodyChunk:
			n := d.uint16()
			if len(d.b) != n+1 || d.b[n] != 0 {
				c.t.Fatalf("Send Body Chunk of %d bytes with payload %d (want the data and a NUL)", n, len(p))
			}
			r.body = append(r.body, d.b[:n]...)
			r.chunks = append(r.chunks, n)
		case typeGetBodyChunk:
			r.asked = append(r.asked, d.uint16())
			next := bodyPacket(nil)
			if len(more) > 0 {
				next, more = more[0], more[1:]
			}
			c.send(next)
		case typeEndResponse:
			if len(p) != 2 || p[1] > 1 {
				c.t.Fatalf("bad End Response %x", p)
			}
			r.reuse = p[1] == 1
			return r
		default:
			c.t.Fatalf("unexpected packet %x", p)
		}
	}
}

const testSecret = "test-secret-0123456789"

// serve starts a Server for h on a loopback port (Secret testSecret unless
// o says otherwise) and returns it, its address and its log.
func serve(t *testing.T, h http.Handler, o Options) (*Server, string, *proctest.Buffer) {
	t.Helper()
	if o.Secret == "" && !o.AllowNoSecret {
		o.Secret = testSecret
	}
	logs := &proctest.Buffer{}
	o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := NewServer(h, o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v, want ErrServerClosed", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	return s, ln.Addr().String(), logs
}
