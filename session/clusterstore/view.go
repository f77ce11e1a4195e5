package clusterstore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"time"
)

// Copy is what one node holds of a session, without its values: for
// operators and tests comparing the nodes of a cluster (one owner, one
// copy). The session's values are not shown; Digest tells copies apart.
type Copy struct {
	// Owner is the node that owns the session by this copy.
	Owner string `json:"owner"`
	// Epoch is the ownership epoch, raised by every takeover.
	Epoch uint64 `json:"epoch"`
	// Version counts the session's writes.
	Version uint64 `json:"version"`
	// Keys is the number of values.
	Keys int `json:"keys"`
	// Digest is the SHA-256 of the keys and values, in hex.
	Digest string `json:"digest"`
	// LastAccess is the latest use this node knows of.
	LastAccess time.Time `json:"last_access"`
}

// Copy returns this node's copy of session id, without asking its peers:
// ErrNotFound (the session package's) when it has no live one. On the
// owner, a session whose time has come is expired by the call.
func (s *Store) Copy(id string) (Copy, error) {
	r, err := s.node.Get(id)
	if err != nil {
		return Copy{}, mapErr("copy", id, err)
	}
	keys := make([]string, 0, len(r.Values))
	for k := range r.Values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		for _, b := range [][]byte{[]byte(k), r.Values[k]} {
			h.Write(binary.AppendUvarint(nil, uint64(len(b))))
			h.Write(b)
		}
	}
	return Copy{Owner: r.Owner, Epoch: r.Epoch, Version: r.Version, Keys: len(keys),
		Digest: hex.EncodeToString(h.Sum(nil)), LastAccess: utc(r.LastAccess)}, nil
}
