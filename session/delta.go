package session

import "fmt"

// CheckDelta returns an error wrapping ErrBadDelta for a delta no Manager
// produces: an empty id, or a key both set and removed. Stores call it
// first in Save.
func CheckDelta(d Delta) error {
	if d.ID == "" {
		return fmt.Errorf("empty id: %w", ErrBadDelta)
	}
	for _, k := range d.Removed {
		if _, ok := d.Set[k]; ok {
			return fmt.Errorf("key %q both set and removed: %w", k, ErrBadDelta)
		}
	}
	return nil
}
