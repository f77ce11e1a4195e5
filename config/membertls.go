package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
)

// memberTLS checks a member_tls or a member's tls: the files exist and
// hold what they should.
func (v *checker) memberTLS(f string, t *MemberTLS) {
	if t == nil {
		return
	}
	if t.CA != "" {
		if _, err := LoadCA(t.CA); err != nil {
			v.add(f+".ca", "%v", err)
		}
	}
	switch {
	case (t.Cert == "") != (t.Key == ""):
		v.add(f+".cert", "cert and key go together: give both or neither")
	case t.Cert != "":
		if _, err := tls.LoadX509KeyPair(t.Cert, t.Key); err != nil {
			v.add(f+".cert", "%v", err)
		}
	}
	if t.InsecureSkipVerify && (t.CA != "" || t.ServerName != "") {
		v.add(f+".insecure_skip_verify", "ca and server_name have no effect when every certificate is accepted: remove one or the other")
	}
}

// LoadCA reads a PEM file of CA certificates into a pool.
func LoadCA(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return p, nil
}

// MergeTLS returns the TLS settings of a member: the balancer's, with the
// keys the member sets replacing them. Either may be nil; so is the
// result when both are.
func MergeTLS(bal, member *MemberTLS) *MemberTLS {
	switch {
	case member == nil:
		return bal
	case bal == nil:
		return member
	}
	out := *bal
	if member.CA != "" {
		out.CA = member.CA
	}
	if member.Cert != "" {
		out.Cert, out.Key = member.Cert, member.Key
	}
	if member.ServerName != "" {
		out.ServerName = member.ServerName
	}
	out.InsecureSkipVerify = out.InsecureSkipVerify || member.InsecureSkipVerify
	return &out
}

// ClientTLS builds the tls.Config that t describes, reading its files.
func ClientTLS(t *MemberTLS) (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	c := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // only when the file asks for it
	if t.CA != "" {
		p, err := LoadCA(t.CA)
		if err != nil {
			return nil, err
		}
		c.RootCAs = p
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// sameAddressTLS checks that the https members of a balancer at one
// address have the same TLS settings: connections are found by address.
func (v *checker) sameAddressTLS(f string, b *Balancer) {
	seen := map[string]int{}
	for i := range b.Members {
		m := &b.Members[i]
		u, err := url.Parse(m.URL)
		if err != nil || u.Scheme != "https" {
			continue
		}
		addr := u.Host
		if u.Port() == "" {
			addr = net.JoinHostPort(u.Hostname(), "443")
		}
		j, dup := seen[addr]
		if !dup {
			seen[addr] = i
			continue
		}
		mine, theirs := MergeTLS(b.MemberTLS, m.TLS), MergeTLS(b.MemberTLS, b.Members[j].TLS)
		if (mine == nil) != (theirs == nil) || (mine != nil && *mine != *theirs) {
			v.add(fmt.Sprintf("%s.members[%d].tls", f, i), "members[%d] is at the same address %s with other tls settings: give them the same", j, addr)
		}
	}
}
