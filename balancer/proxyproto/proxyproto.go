// Package proxyproto reads the PROXY protocol header (versions 1 and 2,
// https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt) that an L4
// load balancer in front (HAProxy's send-proxy, an AWS NLB, …) puts at the
// start of each connection to pass on the client's address.
//
// A Listener wraps a net.Listener: connections from the trusted sources
// must start with a header, whose source address becomes the
// connection's RemoteAddr; connections from anyone else are passed as
// they are (a header from them is not read, and fails as HTTP). Headers
// are read on a goroutine per connection, so a slow or silent peer never
// holds up Accept.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by the errors of a malformed header.
var ErrInvalid = errors.New("invalid PROXY protocol header")

// v2sig is the signature that starts a version 2 header.
const v2sig = "\r\n\r\n\x00\r\nQUIT\n"

// maxV1 is the longest version 1 header, CRLF included.
const maxV1 = 107

// Header is what a PROXY header says.
type Header struct {
	// Version is 1 or 2.
	Version int
	// Local: the connection was made by the proxy itself (version 2 LOCAL,
	// version 1 UNKNOWN), for its health checks: Source is not set and
	// the connection's own address stands.
	Local bool
	// Source and Destination are the client's address and the address it
	// connected to, when not Local.
	Source, Destination netip.AddrPort
}

// ReadHeader reads one header from r, which must start with one. It reads
// exactly the header's bytes, nothing after it.
func ReadHeader(r io.Reader) (Header, error) {
	var first [1]byte
	if _, err := io.ReadFull(r, first[:]); err != nil {
		return Header{}, err
	}
	switch first[0] {
	case 'P':
		return readV1(r)
	case '\r':
		return readV2(r)
	}
	return Header{}, fmt.Errorf("%w: starts with %q", ErrInvalid, first[0])
}

// readV1 reads "PROXY TCP4 src dst sport dport\r\n" after its first byte,
// one byte at a time so as not to read past it.
func readV1(r io.Reader) (Header, error) {
	line := make([]byte, 1, maxV1)
	line[0] = 'P'
	var b [1]byte
	for !bytes.HasSuffix(line, []byte("\r\n")) {
		if len(line) == maxV1 {
			return Header{}, fmt.Errorf("%w: version 1 line longer than %d bytes", ErrInvalid, maxV1)
		}
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Header{}, err
		}
		line = append(line, b[0])
	}
	return parseV1(string(line[:len(line)-2]))
}

func parseV1(line string) (Header, error) {
	f := strings.Split(line, " ")
	h := Header{Version: 1}
	if len(f) >= 2 && f[0] == "PROXY" && f[1] == "UNKNOWN" {
		h.Local = true // the rest of the line is to be ignored
		return h, nil
	}
	if len(f) != 6 || f[0] != "PROXY" || (f[1] != "TCP4" && f[1] != "TCP6") {
		return Header{}, fmt.Errorf("%w: %q", ErrInvalid, line)
	}
	src, err1 := netip.ParseAddr(f[2])
	dst, err2 := netip.ParseAddr(f[3])
	sp, err3 := parsePort(f[4])
	dp, err4 := parsePort(f[5])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return Header{}, fmt.Errorf("%w: %q: %w", ErrInvalid, line, err)
	}
	if src.Is4() != (f[1] == "TCP4") || dst.Is4() != (f[1] == "TCP4") || src.Zone() != "" || dst.Zone() != "" {
		return Header{}, fmt.Errorf("%w: %q: addresses of the wrong family", ErrInvalid, line)
	}
	h.Source, h.Destination = netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp)
	return h, nil
}

// parsePort parses a decimal port without sign or leading zero.
func parsePort(s string) (uint16, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') || s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("bad port %q", s)
	}
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err
}

// readV2 reads a binary header after its first byte.
func readV2(r io.Reader) (Header, error) {
	var head [16]byte
	head[0] = '\r'
	if _, err := io.ReadFull(r, head[1:]); err != nil {
		return Header{}, err
	}
	if string(head[:12]) != v2sig {
		return Header{}, fmt.Errorf("%w: bad version 2 signature", ErrInvalid)
	}
	verCmd, fam := head[12], head[13]
	n := binary.BigEndian.Uint16(head[14:16])
	body := make([]byte, n) // at most 64 KiB, from a trusted source
	if _, err := io.ReadFull(r, body); err != nil {
		return Header{}, err
	}
	if verCmd>>4 != 2 {
		return Header{}, fmt.Errorf("%w: version %d", ErrInvalid, verCmd>>4)
	}
	h := Header{Version: 2}
	switch verCmd & 0xf {
	case 0: // LOCAL: the proxy's own connection
		h.Local = true
		return h, nil
	case 1: // PROXY
	default:
		return Header{}, fmt.Errorf("%w: command %d", ErrInvalid, verCmd&0xf)
	}
	switch fam >> 4 {
	case 1: // AF_INET
		if len(body) < 12 {
			return Header{}, fmt.Errorf("%w: %d bytes of IPv4 addresses", ErrInvalid, len(body))
		}
		h.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[0:4])), binary.BigEndian.Uint16(body[8:10]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[4:8])), binary.BigEndian.Uint16(body[10:12]))
	case 2: // AF_INET6
		if len(body) < 36 {
			return Header{}, fmt.Errorf("%w: %d bytes of IPv6 addresses", ErrInvalid, len(body))
		}
		h.Source = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[0:16])), binary.BigEndian.Uint16(body[32:34]))
		h.Destination = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[16:32])), binary.BigEndian.Uint16(body[34:36]))
	default: // AF_UNSPEC, AF_UNIX: no usable address; the connection's stands
		h.Local = true
	}
	return h, nil // TLVs, if any, are skipped
}

// AppendV2 appends a version 2 PROXY header for a connection from src to
// dst to b, as a proxy sending one does (IPv6 addresses if either is);
// with an invalid src or dst, a LOCAL header.
func AppendV2(b []byte, src, dst netip.AddrPort) []byte {
	s, d := src.Addr().Unmap(), dst.Addr().Unmap()
	if !s.IsValid() || !d.IsValid() {
		return AppendLocal(b, 2)
	}
	b = append(b, v2sig...)
	if s.Is4() && d.Is4() {
		b = append(b, 0x21, 0x11, 0, 12)
		b = append(b, s.AsSlice()...)
		b = append(b, d.AsSlice()...)
	} else {
		b = append(b, 0x21, 0x21, 0, 36)
		s16, d16 := s.As16(), d.As16()
		b = append(b, s16[:]...)
		b = append(b, d16[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

// AppendV1 appends a version 1 PROXY header for a connection from src to
// dst to b ("PROXY TCP4 src dst sport dport\r\n"); with an invalid src or
// dst, "PROXY UNKNOWN\r\n".
func AppendV1(b []byte, src, dst netip.AddrPort) []byte {
	s, d := src.Addr().Unmap(), dst.Addr().Unmap()
	if !s.IsValid() || !d.IsValid() {
		return append(b, "PROXY UNKNOWN\r\n"...)
	}
	family := "TCP4 "
	if !s.Is4() || !d.Is4() {
		family = "TCP6 "
		s, d = netip.AddrFrom16(s.As16()), netip.AddrFrom16(d.As16())
	}
	b = append(append(b, "PROXY "...), family...)
	b = append(s.AppendTo(b), ' ')
	b = append(d.AppendTo(b), ' ')
	b = append(strconv.AppendUint(b, uint64(src.Port()), 10), ' ')
	b = strconv.AppendUint(b, uint64(dst.Port()), 10)
	return append(b, "\r\n"...)
}

// AppendLocal appends the header of a connection the proxy makes on its
// own behalf (a health check) in version v (1 or 2): "PROXY UNKNOWN" or
// a version 2 LOCAL command.
func AppendLocal(b []byte, v int) []byte {
	if v == 1 {
		return append(b, "PROXY UNKNOWN\r\n"...)
	}
	return append(append(b, v2sig...), 0x20, 0x00, 0, 0)
}
