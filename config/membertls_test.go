package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tetherlb/tether/internal/testpki"
)

func TestMemberTLSErrors(t *testing.T) {
	ca := testpki.NewCA(t, "private")
	cert, key := ca.Issue(t, "tether")
	other, _ := ca.Issue(t, "other")
	junk := filepath.Join(t.TempDir(), "junk.pem")
	os.WriteFile(junk, []byte("not a certificate\n"), 0o600)
	bal := func(memberTLS, members string) string {
		return "balancers:\n  - name: b\n" + memberTLS + "    members:\n" + members
	}
	const m1 = "      - {url: 'https://10.0.0.1:8443', route: n1}\n"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"ca, client certificate, server name", bal("    member_tls: {ca: "+ca.CertFile+", cert: "+cert+", key: "+key+", server_name: app.internal}\n", m1), nil},
		{"a member's own", bal("", "      - {url: 'https://10.0.0.1:8443', route: n1, tls: {ca: "+ca.CertFile+"}}\n"), nil},
		{"missing ca", bal("    member_tls: {ca: /nonexistent/ca.pem}\n", m1), []string{`3: balancers[0].member_tls.ca: open /nonexistent/ca.pem`}},
		{"not a ca", bal("    member_tls: {ca: "+junk+"}\n", m1), []string{`3: balancers[0].member_tls.ca: ` + junk + ` holds no PEM certificate`}},
		{"cert without key", bal("    member_tls: {cert: "+cert+"}\n", m1), []string{`3: balancers[0].member_tls.cert: cert and key go together`}},
		{"key of another cert", bal("    member_tls: {cert: "+other+", key: "+key+"}\n", m1), []string{`3: balancers[0].member_tls.cert: tls: private key does not match public key`}},
		{"insecure with a ca", bal("    member_tls: {ca: "+ca.CertFile+", insecure_skip_verify: true}\n", m1), []string{`3: balancers[0].member_tls.insecure_skip_verify: ca and server_name have no effect`}},
		{"tls on an http member", bal("", "      - {url: 'http://10.0.0.1:8080', route: n1, tls: {server_name: x}}\n"), []string{`4: balancers[0].members[0].tls: tls is for https members`}},
		{"one address, two settings", bal("", m1+"      - {url: 'https://10.0.0.1:8443/b', route: n2, tls: {server_name: b.internal}}\n"),
			[]string{`5: balancers[0].members[1].tls: members[0] is at the same address 10.0.0.1:8443 with other tls settings`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantErrors(t, tt.yaml, tt.want) })
	}
}

func TestClientTLS(t *testing.T) {
	ca := testpki.NewCA(t, "private")
	cert, key := ca.Issue(t, "tether")
	c, err := ClientTLS(MergeTLS(&MemberTLS{CA: ca.CertFile, ServerName: "a"}, &MemberTLS{Cert: cert, Key: key, ServerName: "b"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.RootCAs == nil || len(c.Certificates) != 1 || c.ServerName != "b" || c.InsecureSkipVerify {
		t.Fatalf("config %+v", c)
	}
	if c, err := ClientTLS(nil); c != nil || err != nil {
		t.Fatalf("nil settings: %v %v", c, err)
	}
}
