package group

import (
	"encoding/json"
	"errors"
	"fmt"
)

// The wire format: one version byte, one message type byte, then a JSON
// body. A message of another version or an unknown type is refused (and
// logged), never guessed at.
const wireVersion = 1

// msgType says what a message carries.
//
// WARNING: append only; never renumber or reuse a value.
type msgType byte

const (
	// msgRecords: records written or forwarded (body: wireMsg.Records).
	msgRecords msgType = 1
	// msgViews: an instance's session tallies (body: wireMsg.Views).
	msgViews msgType = 2
	// msgState: a full state exchange (push/pull): records and views.
	msgState msgType = 3
)

// Limits of what a message may hold; a message past them is refused.
const (
	maxKeyBytes    = 512
	maxValueBytes  = 64 << 10
	maxOriginBytes = 128
	maxMsgBytes    = 32 << 20
)

// Record is one register of the shared state: a key, its value (opaque to
// the group) and the stamp of the write that set it.
type Record struct {
	Key   string `json:"k"`
	Value []byte `json:"v"`
	Stamp Stamp  `json:"s"`
}

// wireMsg is the JSON body of every message.
type wireMsg struct {
	Records []Record   `json:"records,omitempty"`
	Views   []wireView `json:"views,omitempty"`
}

// wireView is one instance's tallies, numbered by that instance.
type wireView struct {
	Origin  string               `json:"origin"`
	Seq     uint64               `json:"seq"`
	Tallies map[string]wireTally `json:"tallies,omitempty"`
}

type wireTally struct {
	Count  int64  `json:"n"`
	Sketch []byte `json:"s"`
}

var errWire = errors.New("group: invalid message")

func encode(t msgType, m wireMsg) []byte {
	body, err := json.Marshal(m)
	if err != nil {
		panic(err) // only plain types: cannot fail
	}
	return append([]byte{wireVersion, byte(t)}, body...)
}

// decode parses and checks a message.
func decode(b []byte) (msgType, wireMsg, error) {
	var m wireMsg
	if len(b) < 2 {
		return 0, m, fmt.Errorf("%w: %d bytes", errWire, len(b))
	}
	if b[0] != wireVersion {
		return 0, m, fmt.Errorf("%w: version %d, this tether speaks %d", errWire, b[0], wireVersion)
	}
	t := msgType(b[1])
	if t < msgRecords || t > msgState {
		return 0, m, fmt.Errorf("%w: unknown type %d", errWire, t)
	}
	if len(b) > maxMsgBytes {
		return 0, m, fmt.Errorf("%w: %d bytes", errWire, len(b))
	}
	if err := json.Unmarshal(b[2:], &m); err != nil {
		return 0, m, fmt.Errorf("%w: %v", errWire, err)
	}
	for _, r := range m.Records {
		switch {
		case r.Key == "" || len(r.Key) > maxKeyBytes:
			return 0, m, fmt.Errorf("%w: key of %d bytes", errWire, len(r.Key))
		case len(r.Value) > maxValueBytes:
			return 0, m, fmt.Errorf("%w: value of %d bytes", errWire, len(r.Value))
		case r.Stamp.Origin == "" || len(r.Stamp.Origin) > maxOriginBytes:
			return 0, m, fmt.Errorf("%w: origin of %d bytes", errWire, len(r.Stamp.Origin))
		}
	}
	for _, v := range m.Views {
		if v.Origin == "" || len(v.Origin) > maxOriginBytes {
			return 0, m, fmt.Errorf("%w: view origin of %d bytes", errWire, len(v.Origin))
		}
		for k, tl := range v.Tallies {
			var s Sketch
			if err := s.UnmarshalBinary(tl.Sketch); err != nil || len(k) > maxKeyBytes || tl.Count < 0 {
				return 0, m, fmt.Errorf("%w: tally %q", errWire, k)
			}
		}
	}
	return t, m, nil
}

// tallies decodes a view's tallies (decode has checked them).
func (v wireView) tallies() map[string]Tally {
	out := make(map[string]Tally, len(v.Tallies))
	for k, wt := range v.Tallies {
		s := &Sketch{}
		_ = s.UnmarshalBinary(wt.Sketch)
		out[k] = Tally{Count: wt.Count, Sketch: s}
	}
	return out
}

func wireTallies(ts map[string]Tally) map[string]wireTally {
	out := make(map[string]wireTally, len(ts))
	for k, t := range ts {
		s := t.Sketch
		if s == nil {
			s = &Sketch{}
		}
		b, _ := s.MarshalBinary()
		out[k] = wireTally{Count: t.Count, Sketch: b}
	}
	return out
}
