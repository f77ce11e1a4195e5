package group

import (
	"sync"
	"time"
)

// Stamp orders the writes of a record: hybrid logical clock time (Wall,
// milliseconds since the Unix epoch, and Logical, a counter within that
// millisecond) and the instance the write came through. Stamps of two
// writes are never equal: one instance never issues the same time twice.
type Stamp struct {
	Wall    int64  `json:"w"`
	Logical uint32 `json:"l"`
	Origin  string `json:"o"`
}

// Less reports whether s comes before t: by Wall, then Logical, then
// Origin (byte order). This is the one order every instance applies.
func (s Stamp) Less(t Stamp) bool {
	switch {
	case s.Wall != t.Wall:
		return s.Wall < t.Wall
	case s.Logical != t.Logical:
		return s.Logical < t.Logical
	}
	return s.Origin < t.Origin
}

// IsZero reports whether s is the zero stamp (no write).
func (s Stamp) IsZero() bool { return s == Stamp{} }

// Time returns the wall part of s.
func (s Stamp) Time() time.Time { return time.UnixMilli(s.Wall) }

// hlc is a hybrid logical clock: its times follow the wall clock and are
// always above every time it has issued or observed, so that a write made
// after seeing another is ordered after it even if clocks disagree.
type hlc struct {
	mu      sync.Mutex
	now     func() time.Time
	wall    int64
	logical uint32
}

// next returns a new time, greater than every time issued or observed.
func (c *hlc) next() (int64, uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pt := c.now().UnixMilli(); pt > c.wall {
		c.wall, c.logical = pt, 0
	} else {
		c.logical++
	}
	return c.wall, c.logical
}

// observe moves the clock past a time seen in a record.
func (c *hlc) observe(wall int64, logical uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if wall > c.wall || (wall == c.wall && logical > c.logical) {
		c.wall, c.logical = wall, logical
	}
}
