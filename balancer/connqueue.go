package balancer

import (
	"crypto/tls"
	"net"
	"sync"
)

// connQueue is a net.Listener whose connections are put in by the
// native engine: the TLS connections of clients that negotiated HTTP/2,
// for net/http's server to serve.
type connQueue struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnQueue() *connQueue {
	return &connQueue{conns: make(chan net.Conn), closed: make(chan struct{})}
}

// put hands c to the server accepting from q, or closes it if q is
// closed.
func (q *connQueue) put(c *tls.Conn) {
	select {
	case q.conns <- c:
	case <-q.closed:
		c.Close()
	}
}

// Accept returns the next connection put in, until q is closed.
func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.closed:
		return nil, net.ErrClosed
	}
}

// Close makes Accept and put fail from now on.
func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.closed) })
	return nil
}

// Addr is a placeholder: the real listener is the native engine's.
func (q *connQueue) Addr() net.Addr { return queueAddr{} }

type queueAddr struct{}

func (queueAddr) Network() string { return "h2" }
func (queueAddr) String() string  { return "h2-handover" }
