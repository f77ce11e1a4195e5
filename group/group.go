package group

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math/bits"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// MinSecret is the shortest shared secret accepted, in bytes.
const MinSecret = 16

// Options configures a Group. Zero values mean the defaults given.
type Options struct {
	// Name is this instance's name in the group: in stamps, the audit log
	// and the manager. It must differ on every instance. Default: Listen.
	Name string
	// Listen is the TCP and UDP address (host:port) the group talks on.
	// Required.
	Listen string
	// Peers are the other instances' addresses (host:port; a host name is
	// resolved again at every join). This instance's own address may be
	// in the list (one list for every instance); it is skipped.
	Peers []string
	// Secret is the shared secret (at least MinSecret bytes) every
	// instance of the group has. The keys that encrypt and authenticate
	// the group's traffic and that hash session ids are derived from it.
	// Required.
	Secret []byte
	// Apply is called, one call at a time, for every record received that
	// is new here (written by another instance, or by this one before it
	// restarted); won says whether it is now the
	// record's value here (false: a later write was already here). The
	// record may have been replaced again by the time Apply runs: compare
	// with Get under the caller's own lock. Apply may call Get and Set.
	Apply func(r Record, won bool)
	// Tallies, if set, returns this instance's view of live sessions; it
	// is called every SyncInterval and its result sent to the group.
	Tallies func() map[string]Tally
	// SyncInterval is how often tallies are sent and state is exchanged
	// in full with one other instance. Default 1s.
	SyncInterval time.Duration
	// ViewTTL is how long another instance's tallies count without news
	// from it. Default 5 × SyncInterval.
	ViewTTL time.Duration
	// RejoinInterval is how often an instance that misses some peers
	// tries to join them again. Default 2s.
	RejoinInterval time.Duration
	// Logger receives the group's log. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Tally is what one instance sees of one key's (a member's) sessions: its
// exact count and a sketch of the keyed hashes of the session ids.
type Tally struct {
	Count  int64
	Sketch *Sketch
}

// Group is this instance's membership of a group. Its methods are safe
// for concurrent use.
type Group struct {
	o         Options
	ml        *memberlist.Memberlist
	clock     hlc
	hashKey   hashKey
	gossipKey []byte
	host      string
	port      int
	others    []string // Peers without this instance's own address

	mu       sync.Mutex
	records  map[string]Record
	views    map[string]*view // by instance name, this one's included
	seq      uint64
	synced   bool
	syncedAt time.Time
	peers    map[string]*peerInfo // by name, every instance ever seen

	applyMu sync.Mutex
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// view is one instance's latest tallies.
type view struct {
	seq     uint64
	got     time.Time
	tallies map[string]Tally
}

type peerInfo struct {
	addr  string
	up    bool
	since time.Time
}

// New returns this instance's side of the group; Start makes it listen.
func New(o Options) (*Group, error) {
	if o.Listen == "" {
		return nil, errors.New("group: Options.Listen is required")
	}
	if len(o.Secret) < MinSecret {
		return nil, fmt.Errorf("group: a shared secret of at least %d bytes is required (got %d)", MinSecret, len(o.Secret))
	}
	if o.Name == "" {
		o.Name = o.Listen
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = time.Second // a change missed by a send is repaired this fast
	}
	if o.ViewTTL <= 0 {
		o.ViewTTL = 5 * o.SyncInterval // five missed tallies: the instance is gone
	}
	if o.RejoinInterval <= 0 {
		o.RejoinInterval = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	host, port, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("group: listen %q: %w", o.Listen, err)
	}
	pn, err := strconv.Atoi(port)
	if err != nil || pn <= 0 || pn > 65535 {
		return nil, fmt.Errorf("group: listen %q: a port from 1 to 65535 is required", o.Listen)
	}
	gossipKey, err := hkdf.Key(sha256.New, o.Secret, nil, "tether group gossip key", 32)
	if err != nil {
		return nil, err
	}
	hk, err := newHashKey(o.Secret)
	if err != nil {
		return nil, err
	}
	g := &Group{
		o: o, clock: hlc{now: o.Now}, others: otherPeers(o.Peers, o.Listen),
		records: map[string]Record{}, views: map[string]*view{}, peers: map[string]*peerInfo{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	g.hashKey, g.gossipKey = hk, gossipKey
	g.host, g.port = host, pn
	if len(g.others) == 0 {
		g.markSynced() // nobody to take state from
	}
	return g, nil
}

// Start listens on Listen and starts sending tallies and joining missing
// peers; it joins nobody yet (see Join). Records may arrive, and Apply be
// called, from now on.
func (g *Group) Start() error {
	c := memberlist.DefaultLANConfig()
	c.Name = g.o.Name
	c.BindAddr, c.BindPort = g.host, g.port
	c.AdvertiseAddr, c.AdvertisePort = g.host, g.port
	c.SecretKey = g.gossipKey
	c.Label = "tether-group"
	c.Delegate = delegate{g}
	c.Events = events{g}
	c.PushPullInterval = 2 * g.o.SyncInterval
	c.ProbeInterval = time.Second
	c.ProbeTimeout = 500 * time.Millisecond
	c.TCPTimeout = 2 * time.Second
	c.DeadNodeReclaimTime = time.Second // a restarted instance may come back at once
	c.Logger = log.New(logBridge{g.o.Logger}, "", 0)
	tr, err := newTransport(g.host, g.port, c.Logger)
	if err != nil {
		return fmt.Errorf("group: listen %s: %w", g.o.Listen, err)
	}
	c.Transport = tr
	ml, err := memberlist.Create(c)
	if err != nil {
		tr.Shutdown()
		return fmt.Errorf("group: %w", err)
	}
	g.ml = ml
	go g.loop()
	return nil
}

// Name returns this instance's name.
func (g *Group) Name() string { return g.o.Name }

// SessionHash returns the group-wide keyed hash of a session id: the same
// on every instance, unknown to anyone without the secret.
func (g *Group) SessionHash(id string) uint64 { return g.hashKey.sum(id) }

// hashKey keys the session hash.
type hashKey [16]byte

func newHashKey(secret []byte) (hashKey, error) {
	var k hashKey
	b, err := hkdf.Key(sha256.New, secret, nil, "tether group session hash key", len(k))
	copy(k[:], b)
	return k, err
}

func (k hashKey) sum(id string) uint64 {
	// xxHash64's rounds over 8-byte words, seeded with the key, and
	// murmur3's finalizer, so that every bit of the result depends on
	// every bit of the id (the sketches need uniform hashes). Not a MAC:
	// ids are random already; the key keeps the hashes meaningless to
	// anyone without the group's secret.
	const p1, p2, p5 = 11400714785074694791, 14029467366897019727, 2870177450012600261
	h := binary.LittleEndian.Uint64(k[:8]) ^ uint64(len(id))*p5
	for ; len(id) >= 8; id = id[8:] {
		w := uint64(id[0]) | uint64(id[1])<<8 | uint64(id[2])<<16 | uint64(id[3])<<24 |
			uint64(id[4])<<32 | uint64(id[5])<<40 | uint64(id[6])<<48 | uint64(id[7])<<56
		h ^= bits.RotateLeft64(w*p2, 31) * p1
		h = bits.RotateLeft64(h, 27)*p1 + p2
	}
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i]) * p5
		h = bits.RotateLeft64(h, 11) * p1
	}
	h ^= binary.LittleEndian.Uint64(k[8:])
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// otherPeers returns peers without self, resolved once at the start (the
// list given is what joins use: memberlist resolves names at every join).
func otherPeers(peers []string, self string) []string {
	var out []string
	for _, p := range peers {
		if p != self && !sameAddr(p, self) {
			out = append(out, p)
		}
	}
	return out
}

// sameAddr reports whether two host:port addresses name the same socket
// (a name resolving to the listen address counts).
func sameAddr(a, b string) bool {
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || ap != bp {
		return false
	}
	ips, err := net.LookupHost(ah)
	if err != nil {
		return false
	}
	return slices.Contains(ips, bh)
}

// Join joins the peers, taking the group's state from the first that
// answers; it retries until one does or ctx ends. It returns nil at once
// if there are no peers.
func (g *Group) Join(ctx context.Context) error {
	peers := g.others
	if len(peers) == 0 {
		return nil
	}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		n, err := g.ml.Join(peers)
		if n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("group: no peer answered (%v): %w", err, ctx.Err())
		case <-t.C:
		}
	}
}

// loop sends tallies and joins missing peers again.
func (g *Group) loop() {
	defer close(g.done)
	sync := time.NewTicker(g.o.SyncInterval)
	defer sync.Stop()
	rejoin := time.NewTicker(g.o.RejoinInterval)
	defer rejoin.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-sync.C:
			g.publish()
		case <-rejoin.C:
			if peers := g.others; len(peers) > 0 && g.ml.NumMembers()-1 < len(peers) {
				_, _ = g.ml.Join(peers) // failures: the status shows who is missing
			}
		}
	}
}

// publish takes this instance's tallies and sends them to every other.
func (g *Group) publish() {
	if g.o.Tallies == nil {
		return
	}
	ts := g.o.Tallies()
	g.mu.Lock()
	g.seq++
	v := &view{seq: g.seq, got: g.o.Now(), tallies: ts}
	g.views[g.o.Name] = v
	msg := encode(msgViews, wireMsg{Views: []wireView{{Origin: g.o.Name, Seq: v.seq, Tallies: wireTallies(ts)}}})
	g.mu.Unlock()
	g.sendAll(msg)
}

// sendAll sends msg to every other live instance, each on its own
// goroutine: a frozen peer delays nobody else.
func (g *Group) sendAll(msg []byte) {
	if g.ml == nil {
		return // not started: Join's exchange carries the state
	}
	for _, n := range g.ml.Members() {
		if n.Name == g.o.Name {
			continue
		}
		go func() {
			if err := g.ml.SendReliable(n, msg); err != nil {
				g.o.Logger.Debug("group: send failed", "to", n.Name, "err", err)
			}
		}()
	}
}

// Set writes value under key, stamped now through this instance, and sends
// it to the group. It returns the record written.
func (g *Group) Set(key string, value []byte) Record {
	w, l := g.clock.next()
	r := Record{Key: key, Value: slices.Clone(value), Stamp: Stamp{Wall: w, Logical: l, Origin: g.o.Name}}
	g.mu.Lock()
	g.records[key] = r
	g.mu.Unlock()
	g.sendAll(encode(msgRecords, wireMsg{Records: []Record{r}}))
	return r
}

// Get returns the record under key.
func (g *Group) Get(key string) (Record, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.records[key]
	return r, ok
}

// Records returns every record, sorted by key.
func (g *Group) Records() []Record {
	g.mu.Lock()
	out := make([]Record, 0, len(g.records))
	for _, r := range g.records {
		out = append(out, r)
	}
	g.mu.Unlock()
	slices.SortFunc(out, func(a, b Record) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	return out
}

// merge takes records from another instance and applies the new ones.
func (g *Group) merge(rs []Record) {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	for _, r := range rs {
		g.clock.observe(r.Stamp.Wall, r.Stamp.Logical)
		g.mu.Lock()
		cur, ok := g.records[r.Key]
		isNew := !ok || cur.Stamp != r.Stamp
		won := !ok || cur.Stamp.Less(r.Stamp)
		if won {
			g.records[r.Key] = r
		}
		g.mu.Unlock()
		// A record of this instance's name that it does not hold was
		// written before a restart: it is applied like any other.
		if isNew && g.o.Apply != nil {
			g.o.Apply(r, won)
		}
	}
}

// mergeViews keeps the newest tallies of each other instance.
func (g *Group) mergeViews(vs []wireView) {
	now := g.o.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, v := range vs {
		if v.Origin == g.o.Name {
			continue
		}
		if cur := g.views[v.Origin]; cur != nil && cur.seq >= v.Seq {
			continue
		}
		g.views[v.Origin] = &view{seq: v.Seq, got: now, tallies: v.tallies()}
	}
}

// Sessions returns the group's count of key's sessions: the union of this
// instance's tally (local, exact, now) and the latest tallies of the
// other live instances (received within ViewTTL).
func (g *Group) Sessions(key string, local Tally) int64 {
	u := &Sketch{}
	u.Merge(local.Sketch)
	most := local.Count
	now := g.o.Now()
	g.mu.Lock()
	for name, v := range g.views {
		if name != g.o.Name && now.Sub(v.got) > g.o.ViewTTL {
			continue
		}
		if t, ok := v.tallies[key]; ok {
			u.Merge(t.Sketch)
			most = max(most, t.Count)
		}
	}
	g.mu.Unlock()
	return max(u.Count(), most)
}

// Complete reports whether the session counts cover every instance
// reachable now: each has sent its tallies within the last three
// SyncIntervals. A count of zero ends something (a drain) only when it is
// complete.
func (g *Group) Complete() bool {
	now := g.o.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, p := range g.peers {
		if name == g.o.Name || !p.up {
			continue
		}
		if v := g.views[name]; v == nil || now.Sub(v.got) > 3*g.o.SyncInterval {
			return false
		}
	}
	return true
}

// Status is the group as this instance sees it.
type Status struct {
	// Name is this instance.
	Name string
	// Synced: this instance has taken the group's state from another
	// instance since it started (always true without peers).
	Synced   bool
	SyncedAt time.Time
	// Alone: no other instance is reachable now, although peers are
	// configured. The instance keeps serving with the state it has.
	Alone bool
	// Instances are every instance seen since the start, this one first,
	// then by name.
	Instances []Instance
}

// Instance is one instance of the group.
type Instance struct {
	Name string
	Addr string
	// Up: reachable now (memberlist's failure detector).
	Up bool
	// Since is when Up last changed.
	Since time.Time
	// LastTallies is when its session tallies last arrived (zero: never).
	LastTallies time.Time
}

// Status returns the group as this instance sees it.
func (g *Group) Status() Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := Status{Name: g.o.Name, Synced: g.synced, SyncedAt: g.syncedAt}
	st.Instances = append(st.Instances, Instance{Name: g.o.Name, Addr: g.o.Listen, Up: true})
	names := make([]string, 0, len(g.peers))
	for n := range g.peers {
		if n != g.o.Name {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	up := 0
	for _, n := range names {
		p := g.peers[n]
		in := Instance{Name: n, Addr: p.addr, Up: p.up, Since: p.since}
		if v := g.views[n]; v != nil {
			in.LastTallies = v.got
		}
		if p.up {
			up++
		}
		st.Instances = append(st.Instances, in)
	}
	st.Alone = len(g.others) > 0 && up == 0
	return st
}

func (g *Group) markSynced() {
	g.mu.Lock()
	if !g.synced {
		g.synced, g.syncedAt = true, g.o.Now()
	}
	g.mu.Unlock()
}

// Close leaves the group and stops its goroutines. Calling it again does
// nothing.
func (g *Group) Close() error {
	if g.ml == nil {
		return nil // never started
	}
	var err error
	g.once.Do(func() {
		close(g.stop)
		<-g.done
		_ = g.ml.Leave(time.Second)
		err = g.ml.Shutdown()
	})
	return err
}

// delegate is memberlist's view of the group's data.
type delegate struct{ g *Group }

func (delegate) NodeMeta(int) []byte { return nil }

func (d delegate) NotifyMsg(b []byte) {
	t, m, err := decode(b)
	if err != nil {
		d.g.o.Logger.Warn("group: message refused", "err", err)
		return
	}
	switch t {
	case msgRecords:
		d.g.merge(m.Records)
	case msgViews:
		d.g.mergeViews(m.Views)
	}
}

func (delegate) GetBroadcasts(int, int) [][]byte { return nil }

// LocalState is this instance's whole state for a push/pull exchange.
func (d delegate) LocalState(bool) []byte {
	g := d.g
	g.mu.Lock()
	defer g.mu.Unlock()
	m := wireMsg{}
	for _, r := range g.records {
		m.Records = append(m.Records, r)
	}
	// Only this instance's own tallies: another's would look fresh to the
	// receiver although they may be old here.
	if v := g.views[g.o.Name]; v != nil {
		m.Views = append(m.Views, wireView{Origin: g.o.Name, Seq: v.seq, Tallies: wireTallies(v.tallies)})
	}
	return encode(msgState, m)
}

// MergeRemoteState takes another instance's whole state.
func (d delegate) MergeRemoteState(b []byte, join bool) {
	_, m, err := decode(b)
	if err != nil {
		d.g.o.Logger.Warn("group: state refused", "err", err)
		return
	}
	d.g.merge(m.Records)
	d.g.mergeViews(m.Views)
	d.g.markSynced()
}

// events tracks which instances are up. memberlist calls it with its own
// lock held: nothing here calls memberlist.
type events struct{ g *Group }

func (e events) NotifyJoin(n *memberlist.Node)   { e.set(n, true) }
func (e events) NotifyUpdate(n *memberlist.Node) { e.set(n, true) }
func (e events) NotifyLeave(n *memberlist.Node)  { e.set(n, false) }

func (e events) set(n *memberlist.Node, up bool) {
	g := e.g
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.peers[n.Name]
	if p == nil {
		p = &peerInfo{}
		g.peers[n.Name] = p
	}
	p.addr = net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	if p.up != up || p.since.IsZero() {
		p.up, p.since = up, g.o.Now()
	}
	if !up {
		delete(g.views, n.Name) // its sessions no longer count
	}
}

// logBridge sends memberlist's log lines to the group's logger at debug
// level ("[WARN]"/"[ERR]" lines at warn).
type logBridge struct{ l *slog.Logger }

func (b logBridge) Write(p []byte) (int, error) {
	s := string(p)
	if len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	switch {
	case strings.Contains(s, "[ERR]"):
		b.l.Warn("group: " + s)
	default:
		b.l.Debug("group: " + s)
	}
	return len(p), nil
}
