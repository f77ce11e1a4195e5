package memcachestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tetherlb/tether/session"
)

// A session is one memcached item holding its whole record, encoded as
//
//	"tms1"  version  route  created  last-access  idle  deadline
//	n × (key, value, version that wrote it)
//	m × (removed key, version that removed it)
//
// with unsigned varints for counts, versions and lengths, signed varints
// for times (µs since the epoch; 0: none) and the idle timeout (µs), and a
// length before every string. Writes replace the item with a
// compare-and-swap on the version memcached read, so that concurrent
// writers of one session apply one after another.
const magic = "tms1"

// maxTombstones bounds the removed keys a record remembers, as memstore.
const maxTombstones = 32

// record is a decoded item: the session and the version that last wrote
// each key, removed keys included.
type record struct {
	session.Record
	wrote map[string]uint64
}

// encode appends r's encoding to b.
func encode(b []byte, r *record) []byte {
	b = append(b, magic...)
	b = binary.AppendUvarint(b, r.Version)
	b = appendString(b, r.Route)
	for _, t := range []time.Time{r.Created, r.LastAccess} {
		b = binary.AppendVarint(b, micros(t))
	}
	b = binary.AppendVarint(b, r.IdleTimeout.Microseconds())
	b = binary.AppendVarint(b, micros(r.Deadline))
	keys := slices.Sorted(maps.Keys(r.Values))
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, string(r.Values[k]))
		b = binary.AppendUvarint(b, r.wrote[k])
	}
	var dead []string
	for k := range r.wrote {
		if _, ok := r.Values[k]; !ok {
			dead = append(dead, k)
		}
	}
	slices.Sort(dead)
	b = binary.AppendUvarint(b, uint64(len(dead)))
	for _, k := range dead {
		b = appendString(b, k)
		b = binary.AppendUvarint(b, r.wrote[k])
	}
	return b
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errShort is a record that ends early.
var errShort = errors.New("truncated")

// decoder reads an encoded record.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errShort
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// time reads a time in µs; 0 is the zero time.
func (d *decoder) time() time.Time {
	v := d.varint()
	if v == 0 || d.err != nil {
		return time.Time{}
	}
	if v < 0 || v > maxMicros {
		d.err = fmt.Errorf("time %d out of range", v)
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// maxMicros is the year 9999 in µs: later times are not ones we wrote.
const maxMicros = 253402300799 * 1e6

// maxIdle is a century in µs, a longer idle timeout than any session has
// (and short of a time.Duration's range).
const maxIdle = 100 * 365 * 24 * 3600 * 1e6

// decode reads an item written by encode for session id, refusing
// anything else.
func decode(id string, b []byte) (*record, error) {
	if len(b) < len(magic) || string(b[:len(magic)]) != magic {
		return nil, errors.New("not a tether session (bad magic)")
	}
	d := &decoder{b: b[len(magic):]}
	r := &record{Record: session.Record{ID: id}, wrote: map[string]uint64{}}
	r.Version = d.uvarint()
	r.Route = d.string()
	r.Created, r.LastAccess = d.time(), d.time()
	idle := d.varint()
	if idle < 0 || idle > maxIdle {
		return nil, fmt.Errorf("idle timeout %d out of range", idle)
	}
	r.IdleTimeout = time.Duration(idle) * time.Microsecond
	r.Deadline = d.time()
	n := d.uvarint()
	if n > uint64(len(d.b)) { // every key takes a byte at least
		return nil, errShort
	}
	r.Values = make(map[string][]byte, n)
	for range n {
		k, v := d.string(), d.string()
		r.Values[k], r.wrote[k] = []byte(v), d.uvarint()
	}
	m := d.uvarint()
	if m > uint64(len(d.b)) {
		return nil, errShort
	}
	for range m {
		k := d.string()
		r.wrote[k] = d.uvarint()
	}
	switch {
	case d.err != nil:
		return nil, d.err
	case len(d.b) != 0:
		return nil, fmt.Errorf("%d bytes after the record", len(d.b))
	case r.Version == 0:
		return nil, errors.New("version 0")
	case len(r.wrote) != len(r.Values)+int(m):
		return nil, errors.New("a key twice")
	}
	return r, nil
}
