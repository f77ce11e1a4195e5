package clusterstore

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// MinSecret is the shortest shared secret DeriveKeys accepts, in bytes.
const MinSecret = 16

// DeriveKeys derives from one secret shared by every node of a cluster the
// two keys the cluster uses: the replication channel's pre-shared key
// (cluster.Options.PSK, 32 bytes: mutual authentication and AES-GCM) and
// the gossip key (cluster.Options.GossipKey, 32 bytes: AES-256). Each is
// HKDF-SHA256 of the secret under a label of its own, so that neither
// reveals the secret or the other. The secret must hold at least MinSecret
// bytes; use random ones (head -c 32 /dev/urandom | base64).
func DeriveKeys(secret []byte) (psk, gossip []byte, err error) {
	if len(secret) < MinSecret {
		return nil, nil, fmt.Errorf("clusterstore: cluster key of %d bytes, want at least %d", len(secret), MinSecret)
	}
	if psk, err = hkdf.Key(sha256.New, secret, nil, "tether cluster replication key", 32); err != nil {
		return nil, nil, err
	}
	if gossip, err = hkdf.Key(sha256.New, secret, nil, "tether cluster gossip key", 32); err != nil {
		return nil, nil, err
	}
	return psk, gossip, nil
}
