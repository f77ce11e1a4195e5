package ajp

import (
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// respBody reads the container's packets for one request: it answers Get
// Body Chunk from the request body wherever it comes, and is the response
// body's reader once the headers are in.
type respBody struct {
	c       *Client
	cc      *clientConn
	body    *reqBody
	stop    func() bool // ends the watch of the request's context
	packets int         // packets read

	mu   sync.Mutex
	data []byte // the rest of the current body chunk, in cc.rbuf
	err  error  // sticky: io.EOF after End Response
	head bool   // a response without a body: HEAD, 204, 304

	status int   // the response's status
	left   int64 // body bytes the Content-Length still announces; -1: no length
}

// next reads the next packet that is not a Get Body Chunk, answering
// those on the way.
func (rb *respBody) next() ([]byte, error) {
	o := &rb.c.o
	for {
		rb.cc.nc.SetReadDeadline(time.Now().Add(o.ResponseTimeout))
		p, err := readFramed(rb.cc.br, rb.cc.rbuf, o.PacketSize, magicToServer)
		if err != nil {
			return nil, err
		}
		rb.packets++
		if len(p) == 0 {
			return nil, badPacket("empty packet")
		}
		if p[0] != typeGetBodyChunk {
			return p, nil
		}
		if len(p) != 3 {
			return nil, badPacket("get body chunk of %d bytes", len(p))
		}
		want := min(int(p[1])<<8|int(p[2]), o.PacketSize-requestBodyOverhead)
		rb.cc.out, err = rb.body.appendChunk(rb.cc.out[:0], max(want, 1))
		if err != nil {
			return nil, err
		}
		rb.cc.nc.SetWriteDeadline(time.Now().Add(o.ResponseTimeout))
		if _, err := rb.cc.nc.Write(rb.cc.out); err != nil {
			return nil, err
		}
	}
}

// response builds the *http.Response for the headers received.
func (rb *respBody) response(r *http.Request, status int, reason string, h http.Header) *http.Response {
	if reason == "" {
		reason = http.StatusText(status)
	}
	rb.status, rb.left = status, -1
	resp := &http.Response{
		Status: strconv.Itoa(status) + " " + reason, StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: rb, ContentLength: -1, Request: r,
	}
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64); err == nil && n >= 0 {
			resp.ContentLength = n
		} else {
			h.Del("Content-Length")
		}
	}
	rb.left = resp.ContentLength
	if r.Method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified {
		rb.head, rb.left = true, -1
		resp.ContentLength = 0
		if r.Method == http.MethodHead && h.Get("Content-Length") != "" {
			resp.ContentLength = -1 // keep the header: the length of a GET
		}
	}
	return resp
}

// Read reads the response body; a zero-length chunk (the container's
// flush) ends a Read with what it has, so that a caller copying the body
// writes and flushes it.
func (rb *respBody) Read(p []byte) (int, error) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	for len(rb.data) == 0 {
		if rb.err != nil {
			return 0, rb.err
		}
		if err := rb.advance(); err != nil {
			return 0, err
		}
	}
	n := copy(p, rb.data)
	rb.data = rb.data[n:]
	return n, nil
}

// advance reads the next packet of the response; rb.mu is held.
func (rb *respBody) advance() error {
	pk, err := rb.next()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // the container hung up before End Response
	}
	if err == nil {
		switch pk[0] {
		case typeSendBodyChunk:
			rb.data, err = decodeSendBodyChunk(pk)
			switch {
			case err != nil:
			case rb.head && len(rb.data) > 0:
				err = badPacket("body for a response that has none")
			case rb.left >= 0 && int64(len(rb.data)) > rb.left:
				err = badPacket("body longer than its Content-Length")
			case rb.left >= 0:
				rb.left -= int64(len(rb.data))
			}
			return rb.fail(err)
		case typeEndResponse:
			if len(pk) != 2 || pk[1] > 1 {
				return rb.fail(badPacket("end response of %d bytes", len(pk)))
			}
			if rb.left > 0 {
				return rb.fail(fmt.Errorf("%w: the body ended %d bytes short of its Content-Length", io.ErrUnexpectedEOF, rb.left))
			}
			rb.err = io.EOF
			rb.stop()
			// The container asks for body chunks: one it did not ask for
			// is never on the wire, so the connection is in step even if
			// the body was not read to its end.
			if pk[1] == 1 {
				rb.c.putConn(rb.cc)
			} else {
				rb.cc.nc.Close()
				if rb.status == http.StatusForbidden && rb.c.o.Refused != nil {
					rb.c.o.Refused()
				}
			}
			return io.EOF
		default:
			err = badPacket("packet type %d in a response body", pk[0])
		}
	}
	return rb.fail(err)
}

func (rb *respBody) fail(err error) error {
	if err != nil {
		rb.err = err
		rb.stop()
		rb.cc.nc.Close()
	}
	return err
}

// Close ends the response: a body read to its end has put its connection
// back; one cut short closes it, since the rest is still on the wire.
func (rb *respBody) Close() error {
	rb.cc.nc.SetReadDeadline(time.Now()) // interrupts a Read in progress
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if rb.err == nil {
		rb.err = errors.New("ajp: response body closed")
		rb.stop()
		rb.cc.nc.Close()
	}
	return nil
}

// SetTLS fills f's TLS fields from the client's connection state, as
// mod_ssl gives them to mod_jk: Secure, the cipher suite, its key size,
// the protocol and the client's certificate chain in PEM. Go does not
// expose the TLS session id: SSLSession stays empty.
func SetTLS(f *Forward, cs *tls.ConnectionState) {
	f.Secure = true
	f.SSLCipher = tls.CipherSuiteName(cs.CipherSuite)
	f.SSLKeySize = keySize(f.SSLCipher)
	f.SSLProtocol = tls.VersionName(cs.Version)
	var b strings.Builder
	for _, c := range cs.PeerCertificates {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	f.SSLCert = b.String()
}

// keySize is the symmetric key size in bits of a cipher suite's name.
func keySize(name string) int {
	switch {
	case strings.Contains(name, "AES_128"):
		return 128
	case strings.Contains(name, "AES_256"), strings.Contains(name, "CHACHA20"):
		return 256
	case strings.Contains(name, "3DES"):
		return 168
	}
	return 0
}
