package cluster

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"
)

// Handshake errors. A connection that fails the handshake is closed and
// logged; the node carries on.
var (
	// ErrAuth: the peer did not prove knowledge of the pre-shared key, its
	// TLS certificate was refused, or a sealed frame failed authentication.
	ErrAuth = errors.New("cluster: authentication failed")
	// ErrClusterMismatch: the peer belongs to another cluster (name).
	ErrClusterMismatch = errors.New("cluster: peer belongs to another cluster")
	// ErrRejected: the peer refused the handshake; the error carries its reason.
	ErrRejected = errors.New("cluster: handshake rejected by peer")
)

// maxHandshakeFrame bounds frames read before the peer is authenticated.
const maxHandshakeFrame = 4 << 10

// Labels bind MACs and keys to their role, so that one side's proof can
// never be replayed as the other's.
const (
	labelServerMAC = "tether-replication-v1 acceptor proof"
	labelClientMAC = "tether-replication-v1 dialer proof"
	labelC2S       = "tether-replication-v1 dialer to acceptor"
	labelS2C       = "tether-replication-v1 acceptor to dialer"
)

// handshakeConfig is what both sides of a replication handshake need.
type handshakeConfig struct {
	cluster  string
	node     string
	addr     string // this node's advertised address
	inc      uint64
	psk      []byte
	tls      *tls.Config
	timeout  time.Duration
	maxFrame int
}

// peerInfo is what a handshake learns about the other side.
type peerInfo struct {
	node     string
	addr     string // acceptor side: the dialer's advertised address
	inc      uint64
	ready    bool
	firstSeq uint64 // acceptor side: the dialer's oldest resendable seq
	resume   uint64 // dialer side: the next seq the acceptor expects
}

// clientHandshake runs the dialer's side on a connection whose preamble has
// been written. On success the returned framer is ready for sealed (or
// plain) frames.
func clientHandshake(conn net.Conn, cfg *handshakeConfig, firstSeq uint64, ready bool) (*framer, peerInfo, error) {
	var info peerInfo
	if err := conn.SetDeadline(time.Now().Add(cfg.timeout)); err != nil {
		return nil, info, err
	}
	if cfg.tls != nil {
		tc := tls.Client(conn, cfg.tls)
		if err := tc.Handshake(); err != nil {
			return nil, info, tlsError(err)
		}
		conn = tc
	}
	f := newFramer(conn, maxHandshakeFrame)
	hello := &helloMsg{cluster: cfg.cluster, node: cfg.node, addr: cfg.addr, inc: cfg.inc, nonce: randomBytes(nonceLen),
		firstSeq: firstSeq, ready: ready}
	if cfg.psk != nil {
		hello.auth = authPSK
	}
	hp := encodePayload(hello, 0)
	if err := sendFlush(f, hp); err != nil {
		return nil, info, err
	}
	m, _, err := readHandshake(f)
	if err != nil {
		return nil, info, err
	}
	ch, ok := m.(*challengeMsg)
	if !ok {
		return nil, info, fmt.Errorf("%w: expected challenge, got %s", ErrMalformed, m.kind())
	}
	if ch.cluster != cfg.cluster {
		return nil, info, fmt.Errorf("%w: %q, this node is in %q", ErrClusterMismatch, ch.cluster, cfg.cluster)
	}
	if ch.node == "" || ch.node == cfg.node {
		return nil, info, fmt.Errorf("%w: peer calls itself %q", ErrMalformed, ch.node)
	}
	info.node, info.inc = ch.node, ch.inc
	var send, recv *sealState
	auth := &authMsg{}
	if cfg.psk != nil {
		th := transcript(hp, ch)
		if !hmac.Equal(ch.mac, mac(cfg.psk, labelServerMAC, th)) {
			return nil, info, fmt.Errorf("%w: acceptor %q does not know the pre-shared key", ErrAuth, ch.node)
		}
		auth.mac = mac(cfg.psk, labelClientMAC, th)
		if send, recv, err = sessionKeys(cfg.psk, th, labelC2S, labelS2C); err != nil {
			return nil, info, err
		}
	}
	if err := sendFlush(f, encodePayload(auth, 0)); err != nil {
		return nil, info, err
	}
	f.send, f.recv = send, recv
	m, _, err = readHandshake(f)
	if err != nil {
		return nil, info, err
	}
	w, ok := m.(*welcomeMsg)
	if !ok {
		return nil, info, fmt.Errorf("%w: expected welcome, got %s", ErrMalformed, m.kind())
	}
	info.resume, info.ready = w.resume, w.ready
	f.max = cfg.maxFrame
	return f, info, conn.SetDeadline(time.Time{})
}

// serverHandshake runs the acceptor's side on a connection whose preamble
// has been read. accept decides, from the dialer's hello, where the stream
// resumes (or refuses it with an error whose text is sent to the peer).
func serverHandshake(conn net.Conn, cfg *handshakeConfig, ready func() bool,
	accept func(peerInfo) (uint64, error)) (*framer, peerInfo, error) {
	var info peerInfo
	if err := conn.SetDeadline(time.Now().Add(cfg.timeout)); err != nil {
		return nil, info, err
	}
	if cfg.tls != nil {
		tc := tls.Server(conn, cfg.tls)
		if err := tc.Handshake(); err != nil {
			return nil, info, tlsError(err)
		}
		conn = tc
	}
	f := newFramer(conn, maxHandshakeFrame)
	m, hp, err := readHandshake(f)
	if err != nil {
		return nil, info, err
	}
	hello, ok := m.(*helloMsg)
	if !ok {
		return nil, info, fmt.Errorf("%w: expected hello, got %s", ErrMalformed, m.kind())
	}
	hp = bytes.Clone(hp)
	if err := checkHello(hello, cfg); err != nil {
		reject(f, err)
		return nil, info, err
	}
	info = peerInfo{node: hello.node, addr: hello.addr, inc: hello.inc, ready: hello.ready, firstSeq: hello.firstSeq}
	ch := &challengeMsg{cluster: cfg.cluster, node: cfg.node, inc: cfg.inc, nonce: randomBytes(nonceLen)}
	th := transcript(hp, ch)
	if cfg.psk != nil {
		ch.mac = mac(cfg.psk, labelServerMAC, th)
	}
	if err := sendFlush(f, encodePayload(ch, 0)); err != nil {
		return nil, info, err
	}
	m, _, err = readHandshake(f)
	if err != nil {
		return nil, info, err
	}
	auth, ok := m.(*authMsg)
	if !ok {
		return nil, info, fmt.Errorf("%w: expected auth, got %s", ErrMalformed, m.kind())
	}
	if cfg.psk != nil {
		if !hmac.Equal(auth.mac, mac(cfg.psk, labelClientMAC, th)) {
			err := fmt.Errorf("%w: dialer %q does not know the pre-shared key", ErrAuth, hello.node)
			reject(f, ErrAuth)
			return nil, info, err
		}
		if f.recv, f.send, err = sessionKeys(cfg.psk, th, labelC2S, labelS2C); err != nil {
			return nil, info, err
		}
	}
	resume, err := accept(info)
	if err != nil {
		reject(f, err)
		return nil, info, err
	}
	if err := sendFlush(f, encodePayload(&welcomeMsg{resume: resume, ready: ready()}, 0)); err != nil {
		return nil, info, err
	}
	f.max = cfg.maxFrame
	return f, info, conn.SetDeadline(time.Time{})
}

// tlsError classifies a failed TLS handshake: a certificate refused by
// either side is an authentication failure (ErrAuth); anything else (a
// reset, a timeout) is an ordinary connection error.
func tlsError(err error) error {
	var verr *tls.CertificateVerificationError
	var alert tls.AlertError
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	if errors.As(err, &verr) || errors.As(err, &alert) || errors.As(err, &unknown) || errors.As(err, &invalid) {
		return fmt.Errorf("%w: tls: %v", ErrAuth, err)
	}
	return fmt.Errorf("cluster: tls: %w", err)
}

func checkHello(h *helloMsg, cfg *handshakeConfig) error {
	switch {
	case h.cluster != cfg.cluster:
		return fmt.Errorf("%w: %q, this node is in %q", ErrClusterMismatch, h.cluster, cfg.cluster)
	case h.node == "" || h.node == cfg.node:
		return fmt.Errorf("%w: dialer calls itself %q", ErrMalformed, h.node)
	case len(h.nonce) != nonceLen:
		return fmt.Errorf("%w: nonce of %d bytes", ErrMalformed, len(h.nonce))
	case cfg.psk != nil && h.auth != authPSK:
		return fmt.Errorf("%w: a pre-shared key is required", ErrAuth)
	case cfg.psk == nil && h.auth != authNone:
		return fmt.Errorf("%w: dialer uses a pre-shared key, this node has none", ErrAuth)
	}
	return nil
}

// readHandshake reads one handshake message; a reject becomes ErrRejected.
func readHandshake(f *framer) (message, []byte, error) {
	p, err := f.read()
	if err != nil {
		return nil, nil, err
	}
	m, _, err := decodePayload(p)
	if err != nil {
		return nil, nil, err
	}
	if r, ok := m.(*rejectMsg); ok {
		return nil, nil, fmt.Errorf("%w: %s", ErrRejected, r.reason)
	}
	return m, p, nil
}

// reject tells the peer why, best effort (the connection is closed next).
func reject(f *framer, why error) {
	f.send = nil
	_ = sendFlush(f, encodePayload(&rejectMsg{reason: why.Error()}, 0))
}

func sendFlush(f *framer, p []byte) error {
	if err := f.write(p); err != nil {
		return err
	}
	return f.flush()
}

// transcript hashes the hello and the challenge without its MAC: both
// nonces and both identities.
func transcript(hello []byte, ch *challengeMsg) []byte {
	core := *ch
	core.mac = nil
	h := sha256.New()
	h.Write(hello)
	h.Write(encodePayload(&core, 0))
	return h.Sum(nil)
}

func mac(key []byte, label string, th []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(label))
	h.Write(th)
	return h.Sum(nil)
}

// sessionKeys derives one AES-256-GCM key per direction from the
// pre-shared key, salted with the transcript (fresh nonces of both sides).
func sessionKeys(psk, th []byte, first, second string) (*sealState, *sealState, error) {
	a, err := sealFor(psk, th, first)
	if err != nil {
		return nil, nil, err
	}
	b, err := sealFor(psk, th, second)
	return a, b, err
}

func sealFor(psk, th []byte, label string) (*sealState, error) {
	key, err := hkdf.Key(sha256.New, psk, th, label, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealState{aead: g}, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return b
}
