package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// sketchBits is the HyperLogLog precision: 2^12 registers of one byte
// (4 KiB dense), a standard error of about 1.6% for large counts; small
// counts (up to a few hundred) are almost always exact.
const sketchBits = 12

const sketchSize = 1 << sketchBits

// Sketch is a HyperLogLog sketch of 64-bit hashes: a set that can be
// merged with another (union) and counted approximately in fixed memory.
// An empty sketch counts exactly zero, and a sketch with any hash in it
// counts at least one. The zero value is empty and ready to use. A Sketch
// is not safe for concurrent use.
type Sketch struct {
	reg []uint8 // nil while empty
}

// Add adds hash h, which must be well mixed (all 64 bits uniform).
func (s *Sketch) Add(h uint64) {
	if s.reg == nil {
		s.reg = make([]uint8, sketchSize)
	}
	i := h >> (64 - sketchBits)
	rank := uint8(bits.LeadingZeros64(h<<sketchBits|1<<(sketchBits-1))) + 1
	if rank > s.reg[i] {
		s.reg[i] = rank
	}
}

// Merge adds every hash of o to s.
func (s *Sketch) Merge(o *Sketch) {
	if o == nil || o.reg == nil {
		return
	}
	if s.reg == nil {
		s.reg = make([]uint8, sketchSize)
	}
	for i, r := range o.reg {
		if r > s.reg[i] {
			s.reg[i] = r
		}
	}
}

// Count estimates how many distinct hashes were added: 0 exactly when
// none was.
func (s *Sketch) Count() int64 {
	if s == nil || s.reg == nil {
		return 0
	}
	zeros, sum := 0, 0.0
	for _, r := range s.reg {
		if r == 0 {
			zeros++
		}
		sum += math.Ldexp(1, -int(r))
	}
	const m = float64(sketchSize)
	if zeros == sketchSize {
		return 0
	}
	est := 0.7213 / (1 + 1.079/m) * m * m / sum
	if est <= 2.5*m && zeros > 0 {
		// Linear counting, inverted exactly: the expected number of empty
		// registers after n hashes is m(1-1/m)^n.
		est = math.Log(float64(zeros)/m) / math.Log(1-1/m)
	}
	return max(int64(math.Round(est)), 1)
}

// Encoding: a version byte, then either nothing (empty), or the sparse
// form (0x01, then 3 bytes per non-zero register: index (2, big endian)
// and rank), or the dense form (0x02, then every register).
const (
	sketchEmpty  = 0x00
	sketchSparse = 0x01
	sketchDense  = 0x02
)

// MarshalBinary encodes s, sparse when most registers are zero.
func (s *Sketch) MarshalBinary() ([]byte, error) {
	if s.reg == nil {
		return []byte{sketchEmpty}, nil
	}
	n := 0
	for _, r := range s.reg {
		if r != 0 {
			n++
		}
	}
	if 3*n >= sketchSize {
		return append([]byte{sketchDense}, s.reg...), nil
	}
	out := make([]byte, 1, 1+3*n)
	out[0] = sketchSparse
	for i, r := range s.reg {
		if r != 0 {
			out = binary.BigEndian.AppendUint16(out, uint16(i))
			out = append(out, r)
		}
	}
	return out, nil
}

var errSketch = errors.New("group: invalid sketch")

// maxRank is the largest rank a register can hold.
const maxRank = 64 - sketchBits + 1

// UnmarshalBinary decodes what MarshalBinary encoded; anything else is an
// error and leaves s empty.
func (s *Sketch) UnmarshalBinary(b []byte) error {
	s.reg = nil
	if len(b) == 0 {
		return fmt.Errorf("%w: empty", errSketch)
	}
	switch b[0] {
	case sketchEmpty:
		if len(b) != 1 {
			return fmt.Errorf("%w: data after an empty sketch", errSketch)
		}
		return nil
	case sketchDense:
		if len(b) != 1+sketchSize {
			return fmt.Errorf("%w: dense sketch of %d bytes", errSketch, len(b)-1)
		}
		reg := make([]uint8, sketchSize)
		for i, r := range b[1:] {
			if r > maxRank {
				return fmt.Errorf("%w: rank %d", errSketch, r)
			}
			reg[i] = r
		}
		s.reg = reg
		return nil
	case sketchSparse:
		body := b[1:]
		if len(body)%3 != 0 || len(body) == 0 {
			return fmt.Errorf("%w: sparse sketch of %d bytes", errSketch, len(body))
		}
		reg := make([]uint8, sketchSize)
		for ; len(body) > 0; body = body[3:] {
			i, r := binary.BigEndian.Uint16(body), body[2]
			if int(i) >= sketchSize || r == 0 || r > maxRank {
				return fmt.Errorf("%w: register %d rank %d", errSketch, i, r)
			}
			reg[i] = r
		}
		s.reg = reg
		return nil
	}
	return fmt.Errorf("%w: unknown form %d", errSketch, b[0])
}
