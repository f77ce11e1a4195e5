package config

import (
	"fmt"
	"net"
	"regexp"
	"time"
)

// Group makes several `tether serve` instances act as one: a state,
// weight or member change made through any instance's manager applies on
// every instance, and live session counts and drains are the union of
// what every instance sees. Omitted: the instance is on its own.
type Group struct {
	// Name is this instance's name in the group, shown in the audit log
	// and the manager; it must differ on every instance. Default: Listen.
	Name string `yaml:"name"`
	// Listen is the address (host:port, TCP and UDP) the instances talk
	// on. Required.
	Listen string `yaml:"listen"`
	// Peers are the other instances' Listen addresses (host:port; host
	// names are resolved again at every join). This instance's own
	// address may be listed, so that every instance can have one list.
	// Default: none (the instance waits for the others to join it).
	Peers []string `yaml:"peers"`
	// KeyFile holds the group's shared secret (surrounding white space
	// ignored, at least 16 bytes: `openssl rand -hex 32`), the same on
	// every instance. Required: the group's traffic is always encrypted
	// and authenticated.
	KeyFile string `yaml:"key_file"`
	// JoinTimeout is how long serve waits at start to take the group's
	// state from a peer before it serves with its own (and says so in the
	// manager's /healthz). Default 5s.
	JoinTimeout time.Duration `yaml:"join_timeout"`
}

// DefaultGroupJoinTimeout is Group.JoinTimeout's default.
const DefaultGroupJoinTimeout = 5 * time.Second

var groupName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// group checks the group section; c is the whole file (a group needs a
// manager).
func (v *checker) group(c *Config) {
	g := c.Group
	if g == nil {
		return
	}
	v.listen("group.listen", g.Listen)
	if _, port, err := net.SplitHostPort(g.Listen); err == nil && port == "0" {
		v.add("group.listen", "%q: the peers need a fixed port", g.Listen)
	}
	if g.Name != "" && !groupName.MatchString(g.Name) {
		v.add("group.name", "%q: use 1 to 128 letters, digits, '.', '_', ':' or '-'", g.Name)
	}
	for i, p := range g.Peers {
		if _, err := ResolveListen(p); err != nil {
			v.add(fmt.Sprintf("group.peers[%d]", i), "%v", err)
		}
	}
	v.file("group.key_file", g.KeyFile, "a file with the group's shared secret is required (openssl rand -hex 32 > group.key, the same on every instance)")
	if g.JoinTimeout < 0 {
		v.add("group.join_timeout", "%v must not be negative", g.JoinTimeout)
	}
	if c.Manager == nil {
		v.add("group", "a group needs a manager: changes are made through it")
	}
}
