package balancer

import (
	"net"
	"net/url"
)

func urlParse(s string) (*url.URL, error) { return url.Parse(s) }

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func netListen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
