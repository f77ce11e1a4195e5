package group

import (
	"log"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
)

// transport is memberlist's TCP and UDP transport, but its connections to
// other instances leave from the listen address: the group's traffic then
// comes from the address the instances name each other by (what
// firewalls, and tests that cut the network between addresses, see),
// not from whatever the kernel picks.
type transport struct {
	*memberlist.NetTransport
	local *net.TCPAddr // nil: the kernel picks (a listen on all addresses)
}

var _ memberlist.NodeAwareTransport = (*transport)(nil)

func newTransport(host string, port int, logger *log.Logger) (*transport, error) {
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port, Logger: logger})
	if err != nil {
		return nil, err
	}
	t := &transport{NetTransport: nt}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		t.local = &net.TCPAddr{IP: ip}
	}
	return t, nil
}

// DialTimeout implements memberlist.Transport.
func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if t.local != nil {
		d.LocalAddr = t.local
	}
	return d.Dial("tcp", addr)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport.
func (t *transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}
