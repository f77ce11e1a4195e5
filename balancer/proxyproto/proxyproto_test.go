package proxyproto

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestReadHeader(t *testing.T) {
	ap := netip.MustParseAddrPort
	v2 := func(verCmd, fam byte, body ...byte) string {
		return v2sig + string([]byte{verCmd, fam, byte(len(body) >> 8), byte(len(body))}) + string(body)
	}
	v4body := []byte{192, 0, 2, 1, 10, 0, 0, 1, 0x30, 0x39, 0x01, 0xbb}
	tests := []struct {
		name, in string
		want     Header
		err      bool
	}{
		{"v1 tcp4", "PROXY TCP4 192.0.2.1 10.0.0.1 12345 443\r\n", Header{Version: 1, Source: ap("192.0.2.1:12345"), Destination: ap("10.0.0.1:443")}, false},
		{"v1 tcp6", "PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n", Header{Version: 1, Source: ap("[2001:db8::1]:1"), Destination: ap("[2001:db8::2]:65535")}, false},
		{"v1 unknown", "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", Header{Version: 1, Local: true}, false},
		{"v1 unknown bare", "PROXY UNKNOWN\r\n", Header{Version: 1, Local: true}, false},
		{"v1 family mismatch", "PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n", Header{}, true},
		{"v1 port too big", "PROXY TCP4 192.0.2.1 10.0.0.1 65536 1\r\n", Header{}, true},
		{"v1 leading zero", "PROXY TCP4 192.0.2.1 10.0.0.1 080 1\r\n", Header{}, true},
		{"v1 two spaces", "PROXY TCP4  192.0.2.1 10.0.0.1 1 2\r\n", Header{}, true},
		{"v1 no CRLF", "PROXY TCP4 192.0.2.1 10.0.0.1 1 2\n", Header{}, true},
		{"v1 too long", "PROXY TCP4 " + strings.Repeat("1", 120) + "\r\n", Header{}, true},
		{"v2 tcp4", v2(0x21, 0x11, v4body...), Header{Version: 2, Source: ap("192.0.2.1:12345"), Destination: ap("10.0.0.1:443")}, false},
		{"v2 tcp4 with TLVs", v2(0x21, 0x11, append(append([]byte{}, v4body...), 0x04, 0x00, 0x01, 0x00)...), Header{Version: 2, Source: ap("192.0.2.1:12345"), Destination: ap("10.0.0.1:443")}, false},
		{"v2 local", v2(0x20, 0x00), Header{Version: 2, Local: true}, false},
		{"v2 unspec", v2(0x21, 0x00), Header{Version: 2, Local: true}, false},
		{"v2 short ipv4", v2(0x21, 0x11, 1, 2, 3), Header{}, true},
		{"v2 version 3", v2(0x31, 0x11, v4body...), Header{}, true},
		{"v2 command 2", v2(0x22, 0x11, v4body...), Header{}, true},
		{"v2 bad signature", "\r\n\r\n\x00\r\nQUIT!" + "\x21\x11\x00\x00", Header{}, true},
		{"http", "GET / HTTP/1.1\r\n", Header{}, true},
		{"empty", "", Header{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := strings.NewReader(tt.in + "GET / HTTP/1.1\r\n")
			h, err := ReadHeader(r)
			if (err != nil) != tt.err || h != tt.want {
				t.Fatalf("got %+v, %v; want %+v, error %v", h, err, tt.want, tt.err)
			}
			if err == nil {
				if rest, _ := io.ReadAll(r); string(rest) != "GET / HTTP/1.1\r\n" {
					t.Fatalf("read past the header: %q left", rest)
				}
			}
		})
	}
}

func TestAppendV2RoundTrip(t *testing.T) {
	for _, pair := range [][2]string{{"192.0.2.1:5", "10.0.0.1:80"}, {"[2001:db8::1]:5", "[2001:db8::2]:443"}} {
		src, dst := netip.MustParseAddrPort(pair[0]), netip.MustParseAddrPort(pair[1])
		h, err := ReadHeader(bytes.NewReader(AppendV2(nil, src, dst)))
		if err != nil || h.Source != src || h.Destination != dst || h.Version != 2 {
			t.Fatalf("%v: %+v %v", pair, h, err)
		}
	}
}

// FuzzReadHeader: no input makes ReadHeader fail other than with an
// error, a version 1 header it accepts ends at its CRLF, and an accepted
// header has addresses unless it is Local.
func FuzzReadHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 10.0.0.1 12345 443\r\nGET"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(AppendV2(nil, netip.MustParseAddrPort("192.0.2.1:1"), netip.MustParseAddrPort("10.0.0.1:2")))
	f.Add(AppendV2(nil, netip.MustParseAddrPort("[::1]:1"), netip.MustParseAddrPort("[::2]:2")))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		h, err := ReadHeader(r)
		if err != nil {
			return
		}
		used := len(data) - r.Len()
		if h.Version == 1 && !bytes.HasSuffix(data[:used], []byte("\r\n")) {
			t.Fatalf("version 1 header not ending in CRLF: %q", data[:used])
		}
		if !h.Local && (!h.Source.IsValid() || !h.Destination.IsValid()) {
			t.Fatalf("header without addresses: %+v", h)
		}
	})
}

// listen starts a Listener trusting 127.0.0.1 only, and a server on it
// that answers each connection's first line with its RemoteAddr.
func listen(t *testing.T) *Listener {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(inner, Options{From: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Timeout: time.Minute, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				fmt.Fprintf(c, "%s %s", c.RemoteAddr(), line)
			}()
		}
	}()
	return l
}

func dialFrom(t *testing.T, l *Listener, local string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestListener(t *testing.T) {
	l := listen(t)
	dialFrom(t, l, "127.0.0.1") // a trusted peer that sends nothing holds up no one

	c := dialFrom(t, l, "127.0.0.1")
	c.Write(AppendV2(nil, netip.MustParseAddrPort("198.51.100.7:4321"), netip.MustParseAddrPort("10.0.0.1:80")))
	io.WriteString(c, "hello\n")
	if got, _ := io.ReadAll(c); string(got) != "198.51.100.7:4321 hello\n" {
		t.Fatalf("trusted v2: %q", got)
	}

	c = dialFrom(t, l, "127.0.0.1")
	io.WriteString(c, "PROXY TCP4 198.51.100.8 10.0.0.1 999 80\r\nhi\n")
	if got, _ := io.ReadAll(c); string(got) != "198.51.100.8:999 hi\n" {
		t.Fatalf("trusted v1: %q", got)
	}

	// An untrusted peer's connection is passed as it is, with its own address.
	c = dialFrom(t, l, "127.0.0.2")
	io.WriteString(c, "PROXY TCP4 198.51.100.9 10.0.0.1 999 80\r\n")
	if got, _ := io.ReadAll(c); !strings.HasPrefix(string(got), "127.0.0.2:") || !strings.Contains(string(got), "PROXY TCP4 198.51.100.9") {
		t.Fatalf("untrusted: %q", got)
	}

	// A trusted peer without a valid header is refused: closed unanswered.
	c = dialFrom(t, l, "127.0.0.1")
	io.WriteString(c, "GET / HTTP/1.1\r\n\r\n")
	if got, _ := io.ReadAll(c); len(got) != 0 {
		t.Fatalf("trusted without a header was answered: %q", got)
	}
}

func TestAppendRoundTrip(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		src, dst netip.AddrPort
		local    bool
	}{
		{ap("192.0.2.1:5"), ap("10.0.0.1:80"), false},
		{ap("[2001:db8::1]:5"), ap("[2001:db8::2]:443"), false},
		{ap("192.0.2.1:5"), ap("[2001:db8::2]:443"), false}, // mixed: both as IPv6
		{netip.AddrPort{}, ap("10.0.0.1:80"), true},
	} {
		for v, hdr := range map[int][]byte{1: AppendV1(nil, tc.src, tc.dst), 2: AppendV2(nil, tc.src, tc.dst)} {
			h, err := ReadHeader(bytes.NewReader(hdr))
			if err != nil || h.Version != v || h.Local != tc.local {
				t.Fatalf("v%d %v→%v: %+v %v (%q)", v, tc.src, tc.dst, h, err, hdr)
			}
			if !tc.local && (h.Source.Addr().Unmap() != tc.src.Addr().Unmap() || h.Source.Port() != tc.src.Port() ||
				h.Destination.Addr().Unmap() != tc.dst.Addr().Unmap() || h.Destination.Port() != tc.dst.Port()) {
				t.Fatalf("v%d: %+v, want %v→%v", v, h, tc.src, tc.dst)
			}
		}
	}
	for v := 1; v <= 2; v++ {
		if h, err := ReadHeader(bytes.NewReader(AppendLocal(nil, v))); err != nil || !h.Local || h.Version != v {
			t.Fatalf("local v%d: %+v %v", v, h, err)
		}
	}
}
