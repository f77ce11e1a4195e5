package ajp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// minimalGET is a Forward Request as mod_jk sends it for GET / with a Host
// header and a secret, written out byte by byte.
var minimalGET = []byte{
	0x02, 0x02, // forward request, GET
	0x00, 0x08, 'H', 'T', 'T', 'P', '/', '1', '.', '1', 0x00, // protocol
	0x00, 0x01, '/', 0x00, // req_uri
	0x00, 0x09, '1', '2', '7', '.', '0', '.', '0', '.', '1', 0x00, // remote_addr
	0xFF, 0xFF, // remote_host: null
	0x00, 0x09, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't', 0x00, // server_name
	0x1F, 0x90, // server_port 8080
	0x00,       // is_ssl
	0x00, 0x02, // two headers
	0xA0, 0x0B, 0x00, 0x09, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't', 0x00, // Host (coded)
	0x00, 0x03, 'X', '-', 'a', 0x00, 0x00, 0x01, 'b', 0x00, // X-a: b (named)
	0x0C, 0x00, 0x01, 's', 0x00, // secret "s"
	0x05, 0x00, 0x03, 'q', '=', '1', 0x00, // query_string
	0x0A, 0x00, 0x0F, 'A', 'J', 'P', '_', 'R', 'E', 'M', 'O', 'T', 'E', '_', 'P', 'O', 'R', 'T', 0x00,
	0x00, 0x04, '4', '2', '4', '2', 0x00, // req_attribute AJP_REMOTE_PORT=4242
	0x0B, 0x01, 0x00, // ssl_key_size 256
	0xFF, // terminator
}

func TestDecodeForwardRequest(t *testing.T) {
	f, err := decodeForwardRequest(minimalGET, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := &forwardRequest{
		method: "GET", protocol: "HTTP/1.1", uri: "/", remoteAddr: "127.0.0.1", serverName: "localhost",
		serverPort: 8080, header: http.Header{"Host": {"localhost"}, "X-A": {"b"}},
		query: "q=1", hasQuery: true, secret: "s", hasSecret: true, sslKeySize: 256,
		attrs: map[string]string{"AJP_REMOTE_PORT": "4242"},
	}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("decoded\n %+v\nwant\n %+v", f, want)
	}
}

func TestDecodeForwardRequestErrors(t *testing.T) {
	replace := func(old, new []byte) []byte {
		if !bytes.Contains(minimalGET, old) {
			t.Fatalf("%x not in the request", old)
		}
		return bytes.Replace(minimalGET, old, new, 1)
	}
	tests := []struct {
		name string
		p    []byte
		max  int
		want error
		msg  string
	}{
		{"empty", nil, 100, ErrBadPacket, "truncated"},
		{"not a forward request", []byte{typeCPing}, 100, ErrBadPacket, "not a forward request"},
		{"every prefix is truncated", minimalGET[:len(minimalGET)-1], 100, ErrBadPacket, "truncated"},
		{"method code 0", replace([]byte{0x02, 0x02}, []byte{0x02, 0x00}), 100, ErrBadPacket, "unknown method"},
		{"method code 28", replace([]byte{0x02, 0x02}, []byte{0x02, 28}), 100, ErrBadPacket, "unknown method"},
		{"null protocol", replace([]byte{0x00, 0x08, 'H'}, []byte{0xFF, 0xFF, 'H'}), 100, ErrBadPacket, ""},
		{"string not NUL-terminated", replace([]byte("HTTP/1.1\x00"), []byte("HTTP/1.1X")), 100, ErrBadPacket, "NUL"},
		{"string longer than the packet", replace([]byte{0x00, 0x01, '/'}, []byte{0x7F, 0x01, '/'}), 100, ErrBadPacket, "truncated string"},
		{"is_ssl 2", replace([]byte{0x1F, 0x90, 0x00}, []byte{0x1F, 0x90, 0x02}), 100, ErrBadPacket, "boolean"},
		{"too many headers", minimalGET, 1, ErrTooManyHeaders, "2 headers, limit 1"},
		{"unknown header code", replace([]byte{0xA0, 0x0B}, []byte{0xA0, 0x0F}), 100, ErrBadPacket, "header code"},
		{"header name with a space", replace([]byte("X-a"), []byte("X a")), 100, ErrBadPacket, "header name"},
		{"header value with LF", replace([]byte{0x01, 'b', 0x00}, []byte{0x01, '\n', 0x00}), 100, ErrBadPacket, "invalid value"},
		{"null header value", replace([]byte{0x00, 0x01, 'b', 0x00}, []byte{0xFF, 0xFF}), 100, ErrBadPacket, "invalid value"},
		{"unknown attribute", replace([]byte{0x0B, 0x01, 0x00}, []byte{0x0E, 0x01, 0x00}), 100, ErrBadPacket, "attribute code"},
		{"trailing bytes", append(append([]byte{}, minimalGET...), 0), 100, ErrBadPacket, "after the terminator"},
		{"stored method code without the attribute", replace([]byte{0x02, 0x02}, []byte{0x02, 0xFF}), 100, ErrBadPacket, "stored_method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeForwardRequest(tt.p, tt.max)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %v, want %v with %q", err, tt.want, tt.msg)
			}
		})
	}
	// Every strict prefix of a valid request is refused, never accepted.
	for n := range len(minimalGET) {
		if _, err := decodeForwardRequest(minimalGET[:n], 100); err == nil {
			t.Fatalf("prefix of %d bytes accepted", n)
		}
	}
}

func TestReadPacket(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want []byte
		err  error
	}{
		{"payload", []byte{0x12, 0x34, 0x00, 0x02, 0xAA, 0xBB, 0xCC}, []byte{0xAA, 0xBB}, nil},
		{"empty payload", []byte{0x12, 0x34, 0x00, 0x00}, []byte{}, nil},
		{"largest allowed", append([]byte{0x12, 0x34, 0x1F, 0xFC}, make([]byte, 8188)...), make([]byte, 8188), nil},
		{"one byte too large", append([]byte{0x12, 0x34, 0x1F, 0xFD}, make([]byte, 8189)...), nil, ErrPacketTooLarge},
		{"reply magic", []byte{'A', 'B', 0x00, 0x00}, nil, ErrBadPacket},
		{"nothing", nil, nil, io.EOF},
		{"truncated header", []byte{0x12, 0x34, 0x00}, nil, io.ErrUnexpectedEOF},
		{"truncated payload", []byte{0x12, 0x34, 0x00, 0x05, 1, 2}, nil, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := readPacket(bufio.NewReader(bytes.NewReader(tt.in)), make([]byte, 8188), 8192)
			if !errors.Is(err, tt.err) || (err == nil && !bytes.Equal(p, tt.want)) {
				t.Fatalf("got %x, %v; want %x, %v", p, err, tt.want, tt.err)
			}
		})
	}
}

func TestDecodeBodyChunk(t *testing.T) {
	tests := []struct {
		name string
		p    []byte
		want []byte
		bad  bool
	}{
		{"empty packet ends the body", []byte{}, nil, false},
		{"zero length ends the body", []byte{0, 0}, []byte{}, false},
		{"data", []byte{0, 3, 'a', 'b', 'c'}, []byte("abc"), false},
		{"shorter length than payload", []byte{0, 2, 'a', 'b', 'c'}, []byte("ab"), false},
		{"one byte", []byte{0}, nil, true},
		{"length beyond the payload", []byte{0, 4, 'a'}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := decodeBodyChunk(tt.p)
			if (err != nil) != tt.bad || !bytes.Equal(d, tt.want) {
				t.Fatalf("got %q, %v", d, err)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	headers, err := appendSendHeaders(nil, 302, "Found", http.Header{
		"Location": {"/a"}, "X-B": {"c\nd"}, "Bad Name": {"x"},
	}, 8192)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"send headers", headers, []byte{
			'A', 'B', 0x00, 0x20,
			0x04, 0x01, 0x2E, // Send Headers, 302
			0x00, 0x05, 'F', 'o', 'u', 'n', 'd', 0x00,
			0x00, 0x02, // two headers, "Bad Name" dropped
			0xA0, 0x06, 0x00, 0x02, '/', 'a', 0x00, // Location (coded)
			0x00, 0x03, 'X', '-', 'B', 0x00, 0x00, 0x03, 'c', ' ', 'd', 0x00, // LF made a space
		}},
		{"send body chunk", appendBodyChunk(nil, []byte("hi")), []byte{'A', 'B', 0x00, 0x06, 0x03, 0x00, 0x02, 'h', 'i', 0x00}},
		{"flush", appendBodyChunk(nil, nil), []byte{'A', 'B', 0x00, 0x04, 0x03, 0x00, 0x00, 0x00}},
		{"end response, reuse", appendEndResponse(nil, true), []byte{'A', 'B', 0x00, 0x02, 0x05, 0x01}},
		{"end response, close", appendEndResponse(nil, false), []byte{'A', 'B', 0x00, 0x02, 0x05, 0x00}},
		{"get body chunk", appendGetBodyChunk(nil, 8186), []byte{'A', 'B', 0x00, 0x03, 0x06, 0x1F, 0xFA}},
		{"cpong", appendCPong(nil), []byte{'A', 'B', 0x00, 0x01, 0x09}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Equal(tt.got, tt.want) {
				t.Fatalf("got  %x\nwant %x", tt.got, tt.want)
			}
		})
	}
}

func TestSendHeadersTooLarge(t *testing.T) {
	prefix := []byte("kept")
	h := http.Header{"X-Big": {strings.Repeat("x", 8200)}}
	b, err := appendSendHeaders(prefix, 200, "OK", h, 8192)
	if !errors.Is(err, ErrHeadersTooLarge) || string(b) != "kept" {
		t.Fatalf("got %d bytes, %v", len(b), err)
	}
	if b, err := appendSendHeaders(nil, 200, "OK", h, 16384); err != nil || len(b) > 16384 {
		t.Fatalf("with a 16 KiB packet: %d bytes, %v", len(b), err)
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		ok   bool
	}{
		{"secret", Options{Secret: "s"}, true},
		{"no secret", Options{}, false},
		{"explicitly no secret", Options{AllowNoSecret: true}, true},
		{"packet size below 8192", Options{Secret: "s", PacketSize: 4096}, false},
		{"packet size 65536", Options{Secret: "s", PacketSize: 65536}, true},
		{"packet size above 65536", Options{Secret: "s", PacketSize: 65537}, false},
		{"negative MaxHeaders", Options{Secret: "s", MaxHeaders: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.o.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}
