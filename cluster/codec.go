package cluster

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Limits on decoded fields; a message exceeding them is malformed.
const (
	maxNameLen  = 255     // node and cluster names
	maxIDLen    = 512     // session ids
	maxKeyLen   = 4 << 10 // value keys
	nonceLen    = 32
	macLen      = 32
	maxReasonLn = 1024
)

// enc appends the primitive encodings used by every message body.
type enc struct{ b []byte }

func (e *enc) u8(v byte)       { e.b = append(e.b, v) }
func (e *enc) uv(v uint64)     { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) iv(v int64)      { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) str(s string)    { e.uv(uint64(len(s))); e.b = append(e.b, s...) }
func (e *enc) bytes(b []byte)  { e.uv(uint64(len(b))); e.b = append(e.b, b...) }
func (e *enc) ballot(b ballot) { e.uv(b.n); e.str(b.node) }
func (e *enc) boolean(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

// dec reads them back. Errors are sticky: after the first one every read
// returns a zero value, and err says what went wrong.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, what)
	}
	d.b = nil
}

func (d *dec) u8() byte {
	if len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *dec) uv() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) iv() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) boolean() bool {
	switch d.u8() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("bad bool")
	return false
}

// raw returns the next n-prefixed bytes without copying.
func (d *dec) raw(limit int, what string) []byte {
	n := d.uv()
	if d.err != nil {
		return nil
	}
	if n > uint64(limit) || n > uint64(len(d.b)) {
		d.fail(what + " too long")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) str(limit int, what string) string { return string(d.raw(limit, what)) }

// bytes returns a copy of the next length-prefixed bytes (the frame buffer
// they come from is reused); a zero length yields a non-nil empty slice.
func (d *dec) bytes(limit int, what string) []byte {
	v := d.raw(limit, what)
	if d.err != nil {
		return nil
	}
	return append(make([]byte, 0, len(v)), v...)
}

// count reads an element count. Every element takes at least one byte, so a
// count larger than what is left is malformed, which bounds allocations by
// the frame size.
func (d *dec) count(what string) int {
	n := d.uv()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail(what + " count too large")
		return 0
	}
	return int(n)
}

func (d *dec) ballot() ballot {
	return ballot{n: d.uv(), node: d.str(maxNameLen, "node name")}
}

func (d *dec) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
	return d.err
}

// message is one decoded replication message body.
type message interface {
	kind() MessageType
	encode(e *enc)
}

// encodePayload encodes m with its header.
func encodePayload(m message, seq uint64) []byte {
	e := enc{b: appendHeader(make([]byte, 0, 64), m.kind(), seq)}
	m.encode(&e)
	return e.b
}

// encodeBody encodes m without a header, so that one body can be sent on
// several links, each with its own sequence number.
func encodeBody(m message) []byte {
	var e enc
	m.encode(&e)
	return e.b
}

// decodePayload decodes a whole payload: header and body.
func decodePayload(p []byte) (message, uint64, error) {
	t, seq, body, err := parseHeader(p)
	if err != nil {
		return nil, 0, err
	}
	m, err := decodeBody(t, body)
	return m, seq, err
}

// decodeBody decodes the body of a message of type t.
func decodeBody(t MessageType, body []byte) (message, error) {
	d := &dec{b: body}
	var m message
	switch t {
	case msgHello:
		m = decodeHello(d)
	case msgChallenge:
		m = decodeChallenge(d)
	case msgAuth:
		m = &authMsg{mac: d.bytes(macLen, "mac")}
	case msgWelcome:
		m = &welcomeMsg{resume: d.uv(), ready: d.boolean()}
	case msgReject:
		m = &rejectMsg{reason: d.str(maxReasonLn, "reason")}
	case msgAck:
		m = decodeAck(d)
	case msgNack:
		m = &nackMsg{expected: d.uv()}
	case msgRecord:
		m = &recordMsg{copy: d.boolean(), rec: decodeRecord(d)}
	case msgDelta:
		m = decodeDelta(d)
	case msgTouch:
		m = decodeTouch(d)
	case msgPrepare:
		m = &prepareMsg{req: d.uv(), id: d.str(maxIDLen, "id"), bal: d.ballot(), known: d.ballot(), knownVer: d.uv()}
	case msgPromise:
		m = decodePromise(d)
	case msgFetch:
		m = &fetchMsg{id: d.str(maxIDLen, "id")}
	case msgSyncRequest:
		m = &syncRequestMsg{req: d.uv()}
	case msgSyncChunk:
		m = decodeSyncChunk(d)
	case msgStatus:
		m = &statusMsg{ready: d.boolean(), leaving: d.boolean()}
	case msgQuery:
		m = &queryMsg{req: d.uv(), id: d.str(maxIDLen, "id")}
	case msgAnswer:
		m = decodeAnswer(d)
	default:
		return nil, fmt.Errorf("%w: unknown message type %d", ErrMalformed, t)
	}
	if err := d.finish(); err != nil {
		return nil, fmt.Errorf("%s: %w", t, err)
	}
	return m, nil
}

// Authentication modes announced in the hello.
const (
	authNone byte = 0
	authPSK  byte = 1
)

type helloMsg struct {
	cluster  string
	node     string
	addr     string // where the dialer listens, for the acceptor's own link back
	inc      uint64 // the dialer's incarnation: random per process start
	auth     byte
	nonce    []byte
	firstSeq uint64 // oldest sequence number the dialer can still send
	ready    bool
}

func (*helloMsg) kind() MessageType { return msgHello }
func (m *helloMsg) encode(e *enc) {
	e.str(m.cluster)
	e.str(m.node)
	e.str(m.addr)
	e.uv(m.inc)
	e.u8(m.auth)
	e.bytes(m.nonce)
	e.uv(m.firstSeq)
	e.boolean(m.ready)
}

func decodeHello(d *dec) *helloMsg {
	return &helloMsg{
		cluster: d.str(maxNameLen, "cluster"), node: d.str(maxNameLen, "node"), addr: d.str(maxNameLen, "addr"),
		inc: d.uv(), auth: d.u8(), nonce: d.bytes(nonceLen, "nonce"), firstSeq: d.uv(), ready: d.boolean(),
	}
}

type challengeMsg struct {
	cluster string
	node    string
	inc     uint64
	nonce   []byte
	mac     []byte // HMAC proving the acceptor knows the key; empty without one
}

func (*challengeMsg) kind() MessageType { return msgChallenge }
func (m *challengeMsg) encode(e *enc) {
	e.str(m.cluster)
	e.str(m.node)
	e.uv(m.inc)
	e.bytes(m.nonce)
	e.bytes(m.mac)
}

func decodeChallenge(d *dec) *challengeMsg {
	return &challengeMsg{
		cluster: d.str(maxNameLen, "cluster"), node: d.str(maxNameLen, "node"), inc: d.uv(),
		nonce: d.bytes(nonceLen, "nonce"), mac: d.bytes(macLen, "mac"),
	}
}

type authMsg struct{ mac []byte }

func (*authMsg) kind() MessageType { return msgAuth }
func (m *authMsg) encode(e *enc)   { e.bytes(m.mac) }

type welcomeMsg struct {
	resume uint64 // the next sequence number the acceptor expects
	ready  bool
}

func (*welcomeMsg) kind() MessageType { return msgWelcome }
func (m *welcomeMsg) encode(e *enc)   { e.uv(m.resume); e.boolean(m.ready) }

type rejectMsg struct{ reason string }

func (*rejectMsg) kind() MessageType { return msgReject }
func (m *rejectMsg) encode(e *enc)   { e.str(m.reason) }

// Per-session results carried by acks.
const (
	ackApplied byte = 1 // the replica's record is now at (bal, version)
	ackFenced  byte = 2 // the replica promised bal, newer than the write's ballot
)

type ackEntry struct {
	id      string
	status  byte
	bal     ballot
	version uint64
}

type ackMsg struct {
	cum     uint64 // every sequence number up to cum has been received
	entries []ackEntry
}

func (*ackMsg) kind() MessageType { return msgAck }
func (m *ackMsg) encode(e *enc) {
	e.uv(m.cum)
	e.uv(uint64(len(m.entries)))
	for _, a := range m.entries {
		e.str(a.id)
		e.u8(a.status)
		e.ballot(a.bal)
		e.uv(a.version)
	}
}

func decodeAck(d *dec) *ackMsg {
	m := &ackMsg{cum: d.uv()}
	n := d.count("ack entries")
	for i := 0; i < n && d.err == nil; i++ {
		a := ackEntry{id: d.str(maxIDLen, "id"), status: d.u8(), bal: d.ballot(), version: d.uv()}
		if a.status != ackApplied && a.status != ackFenced {
			d.fail("bad ack status")
		}
		m.entries = append(m.entries, a)
	}
	return m
}

type nackMsg struct{ expected uint64 }

func (*nackMsg) kind() MessageType { return msgNack }
func (m *nackMsg) encode(e *enc)   { e.uv(m.expected) }

// recordMsg carries a full record. An owner's record (copy false: a create,
// a takeover, a tombstone) is fenced and acknowledged like a delta; a copy
// (the answer to a fetch) is merged if newer and never acknowledged.
type recordMsg struct {
	copy bool
	rec  *record
}

func (*recordMsg) kind() MessageType { return msgRecord }
func (m *recordMsg) encode(e *enc)   { e.boolean(m.copy); encodeRecord(e, m.rec) }

// Record flags on the wire.
const (
	flagDeleted byte = 1 << iota
)

func encodeRecord(e *enc, r *record) {
	e.str(r.id)
	e.ballot(r.bal)
	e.uv(r.version)
	e.ballot(r.promised)
	var flags byte
	if r.deleted {
		flags |= flagDeleted
	}
	e.u8(flags)
	e.iv(r.created)
	e.iv(r.access)
	e.iv(r.idle)
	e.iv(r.deadline)
	e.iv(r.deletedAt)
	e.uv(uint64(len(r.kver)))
	for k, v := range r.kver {
		e.str(k)
		e.uv(v)
		val, ok := r.vals[k]
		e.boolean(ok)
		if ok {
			e.bytes(val)
		}
	}
}

func decodeRecord(d *dec) *record {
	r := &record{id: d.str(maxIDLen, "id"), bal: d.ballot(), version: d.uv(), promised: d.ballot()}
	flags := d.u8()
	if flags&^flagDeleted != 0 {
		d.fail("unknown record flags")
	}
	r.deleted = flags&flagDeleted != 0
	r.created, r.access, r.idle, r.deadline, r.deletedAt = d.iv(), d.iv(), d.iv(), d.iv(), d.iv()
	n := d.count("keys")
	r.vals = make(map[string][]byte, n)
	r.kver = make(map[string]uint64, n)
	for i := 0; i < n && d.err == nil; i++ {
		k := d.str(maxKeyLen, "key")
		r.kver[k] = d.uv()
		if d.boolean() {
			r.vals[k] = d.bytes(d.maxLen(), "value")
		}
	}
	if d.err == nil && len(r.kver) != n {
		d.fail("duplicate key")
	}
	r.size = r.computeSize()
	return r
}

// maxLen is the most a length-prefixed field could hold: what is left.
func (d *dec) maxLen() int { return len(d.b) }

type kv struct {
	key string
	val []byte
}

type deltaMsg struct {
	id       string
	bal      ballot
	version  uint64 // the version this delta creates; it applies on version-1
	access   int64
	idle     int64
	deadline int64
	set      []kv
	del      []string
}

func (*deltaMsg) kind() MessageType { return msgDelta }
func (m *deltaMsg) encode(e *enc) {
	e.str(m.id)
	e.ballot(m.bal)
	e.uv(m.version)
	e.iv(m.access)
	e.iv(m.idle)
	e.iv(m.deadline)
	e.uv(uint64(len(m.set)))
	for _, p := range m.set {
		e.str(p.key)
		e.bytes(p.val)
	}
	e.uv(uint64(len(m.del)))
	for _, k := range m.del {
		e.str(k)
	}
}

func decodeDelta(d *dec) *deltaMsg {
	m := &deltaMsg{id: d.str(maxIDLen, "id"), bal: d.ballot(), version: d.uv(),
		access: d.iv(), idle: d.iv(), deadline: d.iv()}
	n := d.count("set keys")
	for i := 0; i < n && d.err == nil; i++ {
		m.set = append(m.set, kv{key: d.str(maxKeyLen, "key"), val: d.bytes(d.maxLen(), "value")})
	}
	n = d.count("removed keys")
	for i := 0; i < n && d.err == nil; i++ {
		m.del = append(m.del, d.str(maxKeyLen, "key"))
	}
	if d.err == nil && m.version == 0 {
		d.fail("delta version 0")
	}
	return m
}

type touchItem struct {
	id     string
	bal    ballot
	access int64
}

type touchMsg struct{ items []touchItem }

func (*touchMsg) kind() MessageType { return msgTouch }
func (m *touchMsg) encode(e *enc) {
	e.uv(uint64(len(m.items)))
	for _, t := range m.items {
		e.str(t.id)
		e.ballot(t.bal)
		e.iv(t.access)
	}
}

func decodeTouch(d *dec) *touchMsg {
	m := &touchMsg{}
	n := d.count("touches")
	for i := 0; i < n && d.err == nil; i++ {
		m.items = append(m.items, touchItem{id: d.str(maxIDLen, "id"), bal: d.ballot(), access: d.iv()})
	}
	return m
}

type prepareMsg struct {
	req      uint64
	id       string
	bal      ballot // the claimant's ballot
	known    ballot // the claimant's own record, so that only newer ones are sent back
	knownVer uint64
}

func (*prepareMsg) kind() MessageType { return msgPrepare }
func (m *prepareMsg) encode(e *enc) {
	e.uv(m.req)
	e.str(m.id)
	e.ballot(m.bal)
	e.ballot(m.known)
	e.uv(m.knownVer)
}

type promiseMsg struct {
	req      uint64
	id       string
	ok       bool
	promised ballot  // the highest ballot this acceptor has promised
	rec      *record // the acceptor's record when newer than the claimant's
	// lease is how long the claimant must wait before it writes the
	// session: what is left of a lease this acceptor granted (lease.go).
	lease time.Duration
}

func (*promiseMsg) kind() MessageType { return msgPromise }
func (m *promiseMsg) encode(e *enc) {
	e.uv(m.req)
	e.str(m.id)
	e.boolean(m.ok)
	e.ballot(m.promised)
	e.boolean(m.rec != nil)
	if m.rec != nil {
		encodeRecord(e, m.rec)
	}
	e.uv(uint64(m.lease))
}

func decodePromise(d *dec) *promiseMsg {
	m := &promiseMsg{req: d.uv(), id: d.str(maxIDLen, "id"), ok: d.boolean(), promised: d.ballot()}
	if d.boolean() {
		m.rec = decodeRecord(d)
	}
	if l := d.uv(); l > uint64(maxLease) {
		d.fail(fmt.Sprintf("lease of %d ns", l))
	} else {
		m.lease = time.Duration(l)
	}
	return m
}

type fetchMsg struct{ id string }

func (*fetchMsg) kind() MessageType { return msgFetch }
func (m *fetchMsg) encode(e *enc)   { e.str(m.id) }

type syncRequestMsg struct{ req uint64 }

func (*syncRequestMsg) kind() MessageType { return msgSyncRequest }
func (m *syncRequestMsg) encode(e *enc)   { e.uv(m.req) }

type syncChunkMsg struct {
	req  uint64
	last bool
	recs []*record
}

func (*syncChunkMsg) kind() MessageType { return msgSyncChunk }
func (m *syncChunkMsg) encode(e *enc) {
	e.uv(m.req)
	e.boolean(m.last)
	e.uv(uint64(len(m.recs)))
	for _, r := range m.recs {
		encodeRecord(e, r)
	}
}

func decodeSyncChunk(d *dec) *syncChunkMsg {
	m := &syncChunkMsg{req: d.uv(), last: d.boolean()}
	n := d.count("records")
	for i := 0; i < n && d.err == nil; i++ {
		m.recs = append(m.recs, decodeRecord(d))
	}
	return m
}

type statusMsg struct {
	ready   bool
	leaving bool
}

func (*statusMsg) kind() MessageType { return msgStatus }
func (m *statusMsg) encode(e *enc)   { e.boolean(m.ready); e.boolean(m.leaving) }

type queryMsg struct {
	req uint64
	id  string
}

func (*queryMsg) kind() MessageType { return msgQuery }
func (m *queryMsg) encode(e *enc)   { e.uv(m.req); e.str(m.id) }

type answerMsg struct {
	req uint64
	id  string
	rec *record // nil: the peer has no copy
}

func (*answerMsg) kind() MessageType { return msgAnswer }
func (m *answerMsg) encode(e *enc) {
	e.uv(m.req)
	e.str(m.id)
	e.boolean(m.rec != nil)
	if m.rec != nil {
		encodeRecord(e, m.rec)
	}
}

func decodeAnswer(d *dec) *answerMsg {
	m := &answerMsg{req: d.uv(), id: d.str(maxIDLen, "id")}
	if d.boolean() {
		m.rec = decodeRecord(d)
	}
	return m
}
