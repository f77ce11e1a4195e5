package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// peer is this node's view of another node. Guarded by Node.mu.
type peer struct {
	name      string
	addr      string
	state     MemberState // MemberAlive, MemberDead or MemberLeft, from gossip
	known     bool        // gossip has listed it
	ready     bool
	leaving   bool
	inc       uint64     // its incarnation, from gossip metadata or a handshake
	contacted bool       // an outgoing handshake with incarnation inc succeeded
	pulledInc uint64     // the incarnation whose state was pulled, or needs no pull
	refused   string     // why its last handshake was refused; "" once one succeeds
	streaming sync.Mutex // one state transfer to this peer at a time
	out       *link
	in        *inbound
}

// live reports whether the peer may be running: gossip has not declared it
// dead, and it is known by gossip or by a handshake.
func (p *peer) live() bool { return p.state == MemberAlive }

// member reports whether the peer counts in takeovers and acknowledgements:
// alive, and not refusing this node's handshakes. A node that fails
// authentication fails it with every node of the cluster, so it can hold
// no session data nor acknowledge anyone's writes.
func (p *peer) member() bool { return p.live() && p.refused == "" }

// peerLocked returns the peer called name, creating it; n.mu must be held.
func (n *Node) peerLocked(name string) *peer {
	p := n.peers[name]
	if p == nil {
		p = &peer{name: name, state: MemberAlive}
		n.peers[name] = p
	}
	return p
}

// memberlistConfig maps Options onto memberlist's configuration.
func (n *Node) memberlistConfig() *memberlist.Config {
	g := n.opts.Gossip
	c := memberlist.DefaultLANConfig()
	c.Name = n.name
	c.Transport = n.tr
	c.Label = n.opts.ClusterName
	c.SecretKey = n.opts.GossipKey
	c.Events = mlEvents{n}
	c.Delegate = mlDelegate{n}
	c.ProbeInterval = g.ProbeInterval
	c.ProbeTimeout = g.ProbeTimeout
	c.SuspicionMult = g.SuspicionMult
	c.GossipInterval = g.GossipInterval
	c.PushPullInterval = g.PushPullInterval
	c.TCPTimeout = g.TCPTimeout
	c.GossipToTheDeadTime = 10 * g.ProbeInterval
	c.DeadNodeReclaimTime = g.ProbeInterval // a restarted node may come back at once
	c.Logger = log.New(&logBridge{log: n.log}, "", 0)
	return c
}

// Gossip metadata: version, incarnation, readiness.
const metaVersion = 1

func (n *Node) meta() []byte {
	b := []byte{metaVersion}
	b = binary.BigEndian.AppendUint64(b, n.inc)
	if n.IsReady() {
		return append(b, 1)
	}
	return append(b, 0)
}

func parseMeta(b []byte) (inc uint64, ready, ok bool) {
	if len(b) != 10 || b[0] != metaVersion {
		return 0, false, false
	}
	return binary.BigEndian.Uint64(b[1:9]), b[9] == 1, true
}

type mlDelegate struct{ n *Node }

func (d mlDelegate) NodeMeta(limit int) []byte {
	m := d.n.meta()
	if len(m) > limit {
		return nil
	}
	return m
}
func (mlDelegate) NotifyMsg([]byte)                {}
func (mlDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (mlDelegate) LocalState(bool) []byte          { return nil }
func (mlDelegate) MergeRemoteState([]byte, bool)   {}

// mlEvents turns gossip events into peer changes. memberlist calls it with
// its own lock held: nothing here may call back into memberlist.
type mlEvents struct{ n *Node }

func (e mlEvents) NotifyJoin(m *memberlist.Node)   { e.n.memberUp(m) }
func (e mlEvents) NotifyUpdate(m *memberlist.Node) { e.n.memberUp(m) }
func (e mlEvents) NotifyLeave(m *memberlist.Node)  { e.n.memberDown(m.Name) }

func (n *Node) memberUp(m *memberlist.Node) {
	if m.Name == n.name {
		return
	}
	inc, ready, ok := parseMeta(m.Meta)
	n.mu.Lock()
	if n.closed() {
		n.mu.Unlock()
		return
	}
	p := n.peerLocked(m.Name)
	if p.state != MemberAlive || !p.known {
		n.log.Info("cluster: member up", "peer", m.Name, "addr", m.Address())
	}
	p.addr, p.state, p.known, p.leaving = m.Address(), MemberAlive, true, false
	gone := false
	if ok {
		gone = n.setIncLocked(p, inc)
		p.ready = p.ready || ready
	}
	n.ensureLinkLocked(p)
	n.maybePullLocked(p, false)
	n.notifyLocked()
	mem := p.view()
	n.mu.Unlock()
	if gone {
		n.peerGone(m.Name)
	}
	n.obs.MemberChanged(mem)
}

// ensureLinkLocked starts the outgoing link to a live peer whose address
// is known, or revives it; n.mu must be held.
func (n *Node) ensureLinkLocked(p *peer) {
	if p.addr == "" || n.closed() {
		return
	}
	if p.out != nil {
		p.out.setAlive(true, p.addr)
		return
	}
	p.out = newLink(n, p.name, p.addr)
	links := append(append([]*link(nil), *n.links.Load()...), p.out)
	n.links.Store(&links)
	n.spawnLocked(p.out.run)
}

func (n *Node) memberDown(name string) {
	n.mu.Lock()
	p := n.peers[name]
	if p == nil || name == n.name {
		n.mu.Unlock()
		return
	}
	p.state = MemberDead
	if p.leaving {
		p.state = MemberLeft
	}
	p.contacted = false
	if p.out != nil {
		p.out.setAlive(false, "")
	}
	n.notifyLocked()
	mem := p.view()
	n.mu.Unlock()
	n.peerGone(name)
	n.obs.MemberChanged(mem)
	n.log.Info("cluster: member down", "peer", name, "state", mem.State)
}

// setIncLocked records a peer's incarnation; true when it replaced another
// (the peer restarted: what it held is gone).
func (n *Node) setIncLocked(p *peer, inc uint64) bool {
	if inc == 0 || inc == p.inc {
		return false
	}
	old := p.inc
	p.inc = inc
	if old == 0 {
		return false
	}
	p.contacted, p.ready = false, false
	return true
}

// peerGone fails what waited on a peer that died or restarted.
func (n *Node) peerGone(name string) {
	n.waits.peerGone(name)
	n.mu.Lock()
	for req, s := range n.syncs {
		if s.peer == name {
			delete(n.syncs, req)
			close(s.done)
		}
	}
	n.notifyLocked()
	n.mu.Unlock()
}

// contact is called after a successful handshake with a peer, in either
// direction: it records the peer's incarnation and readiness, and pulls
// its state when this node may have missed some of it.
func (n *Node) contact(name, addr string, inc uint64, ready, gap bool) {
	n.mu.Lock()
	p := n.peerLocked(name)
	if p.out == nil && addr != "" && p.state == MemberAlive {
		// The peer dialed before gossip told this node about it: link back
		// to the address it announced (gossip corrects it if need be).
		p.addr = addr
		n.ensureLinkLocked(p)
	}
	gone := n.setIncLocked(p, inc)
	p.contacted, p.refused = true, ""
	p.ready = p.ready || ready
	if gap {
		p.pulledInc = 0
	}
	n.maybePullLocked(p, true)
	n.notifyLocked()
	n.mu.Unlock()
	if gone {
		n.peerGone(name)
	}
}

// setReady records a peer's readiness from its status message.
func (n *Node) setReady(name string, ready, leaving bool) {
	n.mu.Lock()
	p := n.peerLocked(name)
	changed := p.ready != ready
	p.ready = p.ready || ready
	p.leaving = leaving
	n.maybePullLocked(p, false)
	n.notifyLocked()
	mem := p.view()
	n.mu.Unlock()
	if changed {
		n.obs.MemberChanged(mem)
	}
}

// maybePullLocked pulls the state of a peer incarnation this node has not
// synchronized with. A peer still joining at first contact needs no pull:
// everything it will hold comes from nodes this one already hears from.
func (n *Node) maybePullLocked(p *peer, contact bool) {
	if p.inc == 0 || p.pulledInc == p.inc || !p.contacted || !p.live() || p.out == nil {
		return
	}
	if !p.ready {
		if contact {
			p.pulledInc = p.inc
		}
		return
	}
	p.pulledInc = p.inc
	req := n.newReq()
	n.log.Debug("cluster: pulling state", "from", p.name, "req", req)
	s := &pull{peer: p.name, done: make(chan struct{})}
	n.syncs[req] = s
	if !p.out.enqueue(msgSyncRequest, encodeBody(&syncRequestMsg{req: req})) {
		delete(n.syncs, req)
		close(s.done)
		p.pulledInc = 0
	}
}

// pull is a state transfer this node requested from a peer.
type pull struct {
	peer string
	done chan struct{}
}

func (p *peer) view() Member {
	return Member{Name: p.name, Addr: p.addr, State: p.state, Ready: p.ready}
}

// refusedBy records that peer refused this node's handshake (or failed
// authentication); a successful handshake clears it.
func (n *Node) refusedBy(peer string, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p := n.peers[peer]; p != nil && p.refused == "" {
		p.refused = err.Error()
		n.notifyLocked()
	}
}

// joinLoop joins the configured peers, waits for the state of the live
// ones, marks the node ready, and then keeps rejoining configured peers
// that are not members (static membership: they may start later).
func (n *Node) joinLoop() {
	defer n.wg.Done()
	peers := n.otherPeers()
	if len(peers) == 0 {
		n.markReady("no peers configured")
	} else if joined, err := n.ml.Join(peers); joined == 0 {
		n.log.Info("cluster: no peer answered; starting alone", "peers", peers, "err", err)
		n.markReady("no peer answered")
	} else {
		n.awaitState()
	}
	t := time.NewTicker(n.opts.Gossip.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-n.closing:
			return
		case <-t.C:
		}
		if missing := n.missingPeers(peers); len(missing) > 0 {
			_, _ = n.ml.Join(missing)
		}
	}
}

// awaitState waits until every live peer has been contacted and every
// state transfer from a ready one has finished, or JoinTimeout.
func (n *Node) awaitState() {
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.JoinTimeout)
	defer cancel()
	for {
		ch := n.waitChanged()
		waiting := n.joinWaiting()
		if len(waiting) == 0 {
			n.markReady("state received")
			return
		}
		select {
		case <-ch:
		case <-n.closing:
			return
		case <-ctx.Done():
			n.log.Warn("cluster: join timed out; ready with the state received so far", "waiting", waiting)
			n.markReady("join timeout")
			return
		}
	}
}

// joinWaiting lists what the join still waits for.
func (n *Node) joinWaiting() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, p := range n.peers {
		if p.member() && p.known && (!p.contacted || p.pulledInc != p.inc) {
			out = append(out, "contact "+p.name)
		}
	}
	for _, s := range n.syncs {
		out = append(out, "state from "+s.peer)
	}
	return out
}

// otherPeers returns Options.Peers without this node's own address.
func (n *Node) otherPeers() []string {
	self := n.Addr()
	var out []string
	for _, p := range n.opts.Peers {
		if p != self && p != n.opts.Addr && p != n.opts.AdvertiseAddr {
			out = append(out, p)
		}
	}
	return out
}

// missingPeers returns the configured peers that are not live members.
func (n *Node) missingPeers(peers []string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	have := map[string]bool{}
	for _, p := range n.peers {
		if p.live() && p.known {
			have[p.addr] = true
		}
	}
	var out []string
	for _, a := range peers {
		if !have[a] {
			out = append(out, a)
		}
	}
	return out
}

// logBridge sends memberlist's log lines to slog: errors as warnings,
// warnings as info, the rest as debug.
type logBridge struct{ log *slog.Logger }

func (b *logBridge) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(bytes.TrimRight(p, "\n")))
	level := slog.LevelDebug
	switch {
	case strings.Contains(line, "[ERR]"):
		level = slog.LevelWarn
	case strings.Contains(line, "[WARN]"):
		level = slog.LevelInfo
	}
	b.log.Log(context.Background(), level, line, "component", "memberlist")
	return len(p), nil
}

// claimPeers returns the live peers whose promise a takeover requires (all
// but the believed owner), and whether that owner is alive.
func (n *Node) claimPeers(owner string) ([]string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var req []string
	ownerAlive := false
	for name, p := range n.peers {
		if !p.member() || p.out == nil {
			continue
		}
		if name == owner {
			ownerAlive = true
		} else {
			req = append(req, name)
		}
	}
	return req, ownerAlive
}

// readyAmong counts the peers of answers that are ready.
func (n *Node) readyAmong(answers map[string]*promiseMsg) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for name := range answers {
		if p := n.peers[name]; p != nil && p.ready {
			c++
		}
	}
	return c
}
