package cluster

import (
	"bytes"
	"errors"
	"net"
	"reflect"
	"testing"
	"time"
)

// sampleMessages has one message of every type, with every field set.
func sampleMessages() []message {
	rec := owned("session-1", ballot{3, "n2"}, 7, map[string]string{"cart": "[1,2]", "user": "ann"})
	rec.promised = ballot{4, "n3"}
	rec.kver["gone"] = 6
	rec.created, rec.access, rec.idle, rec.deadline = 1, 2, int64(time.Minute), 4
	tomb := owned("session-2", ballot{1, "n1"}, 2, nil)
	tomb.deleted, tomb.deletedAt = true, 99
	for _, r := range []*record{rec, tomb} {
		r.size = r.computeSize()
	}
	return []message{
		&helloMsg{cluster: "tether", node: "n1", addr: "127.0.0.1:7001", inc: 42, auth: authPSK, nonce: bytes.Repeat([]byte{1}, nonceLen), firstSeq: 9, ready: true},
		&challengeMsg{cluster: "tether", node: "n2", inc: 43, nonce: bytes.Repeat([]byte{2}, nonceLen), mac: bytes.Repeat([]byte{3}, macLen)},
		&authMsg{mac: bytes.Repeat([]byte{4}, macLen)},
		&welcomeMsg{resume: 10, ready: true},
		&rejectMsg{reason: "cluster: peer belongs to another cluster"},
		&ackMsg{cum: 77, entries: []ackEntry{{id: "s", status: ackApplied, bal: ballot{1, "n1"}, version: 3},
			{id: "t", status: ackFenced, bal: ballot{2, "n2"}}}},
		&nackMsg{expected: 12},
		&recordMsg{rec: rec},
		&recordMsg{copy: true, rec: tomb},
		&deltaMsg{id: "s", bal: ballot{1, "n1"}, version: 8, access: 5, idle: 6, deadline: 7,
			set: []kv{{"a", []byte("1")}, {"b", []byte{}}}, del: []string{"c"}},
		&touchMsg{items: []touchItem{{id: "s", bal: ballot{1, "n1"}, access: 123}}},
		&prepareMsg{req: 5, id: "s", bal: ballot{9, "n3"}, known: ballot{8, "n1"}, knownVer: 4},
		&promiseMsg{req: 5, id: "s", ok: true, promised: ballot{9, "n3"}, rec: rec, lease: 734 * time.Millisecond},
		&promiseMsg{req: 6, id: "s", promised: ballot{10, "n1"}},
		&fetchMsg{id: "s"},
		&syncRequestMsg{req: 11},
		&syncChunkMsg{req: 11, last: true, recs: []*record{rec, tomb}},
		&statusMsg{ready: true, leaving: true},
		&queryMsg{req: 12, id: "s"},
		&answerMsg{req: 12, id: "s", rec: rec},
		&answerMsg{req: 13, id: "t"},
	}
}

func TestMessagesRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		t.Run(m.kind().String(), func(t *testing.T) {
			p := encodePayload(m, 1234)
			got, seq, err := decodePayload(p)
			if err != nil {
				t.Fatal(err)
			}
			if seq != 1234 || !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, m)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	valid := encodePayload(&fetchMsg{id: "s"}, 1)
	tests := []struct {
		name    string
		payload []byte
		want    error
	}{
		{"empty", nil, ErrMalformed},
		{"other protocol version", append([]byte{ProtocolVersion + 1}, valid[1:]...), ErrProtocolVersion},
		{"unknown type", append([]byte{ProtocolVersion, byte(msgCount)}, valid[2:]...), ErrMalformed},
		{"type zero", append([]byte{ProtocolVersion, 0}, valid[2:]...), ErrMalformed},
		{"truncated", valid[:len(valid)-1], ErrMalformed},
		{"trailing bytes", append(append([]byte(nil), valid...), 0), ErrMalformed},
		{"count beyond the frame", append(appendHeader(nil, msgTouch, 1), 0xff, 0xff, 0x03), ErrMalformed},
		{"bad bool", append(appendHeader(nil, msgStatus, 1), 2, 0), ErrMalformed},
		{"unknown record flag", func() []byte {
			p := encodePayload(&recordMsg{rec: owned("s", ballot{1, "n"}, 1, nil)}, 1)
			// flags follow: copy, id, ballot, version, promised ballot.
			i := bytes.Index(p, []byte{1, 'n', 1, 1, 'n'}) + 5
			p[i] = 0x80
			return p
		}(), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := decodePayload(tc.payload); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(encodePayload(m, 1))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		m, seq, err := decodePayload(p)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to something that decodes the same.
		again, seq2, err := decodePayload(encodePayload(m, seq))
		if err != nil || seq2 != seq || !reflect.DeepEqual(again, m) {
			t.Fatalf("re-encoding %#v: %v", m, err)
		}
	})
}

// fuzzConn is a connection whose peer sends fixed bytes and reads nothing.
type fuzzConn struct {
	r *bytes.Reader
}

func (c *fuzzConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *fuzzConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c *fuzzConn) Close() error                     { return nil }
func (c *fuzzConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fuzzConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

func frame(payloads ...[]byte) []byte {
	var b bytes.Buffer
	for _, p := range payloads {
		b.Write([]byte{byte(len(p) >> 24), byte(len(p) >> 16), byte(len(p) >> 8), byte(len(p))})
		b.Write(p)
	}
	return b.Bytes()
}

func FuzzHandshake(f *testing.F) {
	hello := &helloMsg{cluster: "tether", node: "n1", addr: "127.0.0.1:7001", inc: 1, nonce: bytes.Repeat([]byte{1}, nonceLen), firstSeq: 1}
	f.Add(frame(encodePayload(hello, 0), encodePayload(&authMsg{}, 0)), false)
	psk := *hello
	psk.auth = authPSK
	f.Add(frame(encodePayload(&psk, 0), encodePayload(&authMsg{mac: bytes.Repeat([]byte{9}, macLen)}, 0)), true)
	f.Add([]byte{0, 0, 0, 5, 1, 2, 3}, false)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, true)
	f.Fuzz(func(t *testing.T, in []byte, withPSK bool) {
		cfg := &handshakeConfig{cluster: "tether", node: "n2", inc: 2, timeout: time.Second, maxFrame: 1 << 16}
		if withPSK {
			cfg.psk = bytes.Repeat([]byte{7}, 32)
		}
		_, info, err := serverHandshake(&fuzzConn{r: bytes.NewReader(in)}, cfg, func() bool { return true },
			func(peerInfo) (uint64, error) { return 1, nil })
		if err == nil && withPSK {
			t.Fatalf("handshake with a pre-shared key accepted forged input (peer %+v)", info)
		}
	})
}
