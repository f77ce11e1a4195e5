package clusterstore

import (
	"errors"
	"fmt"

	"github.com/tetherlb/tether/cluster"
	"github.com/tetherlb/tether/session"
)

// mapErr maps a cluster error onto the session package's contract: the
// expected outcomes onto its sentinels, the rest with a message saying
// what happened to the write. Both errors stay in the chain (errors.Is
// finds the cluster's sentinel too). nil stays nil.
func mapErr(op, id string, err error) error {
	if err == nil {
		return nil
	}
	var why error
	switch {
	case errors.Is(err, cluster.ErrNotFound):
		why = session.ErrNotFound
	case errors.Is(err, cluster.ErrExists):
		why = session.ErrExists
	case errors.Is(err, cluster.ErrBadBase):
		why = session.ErrBadDelta
	case errors.Is(err, cluster.ErrConflict):
		why = session.ErrConflict
	case errors.Is(err, cluster.ErrTooLarge):
		why = session.ErrStoreFull
	case errors.Is(err, cluster.ErrFenced), errors.Is(err, cluster.ErrNotOwner):
		return fmt.Errorf("clusterstore: %s %s: another node has taken the session over; not saved here: %w", op, session.ShortID(id), err)
	case errors.Is(err, cluster.ErrNoMajority):
		return fmt.Errorf("clusterstore: %s %s: this node cannot reach a majority of the cluster; refused: %w", op, session.ShortID(id), err)
	case errors.Is(err, cluster.ErrNotAcknowledged):
		return fmt.Errorf("clusterstore: %s %s: no peer acknowledged the write in time; it may not survive a failure: %w", op, session.ShortID(id), err)
	default:
		return fmt.Errorf("clusterstore: %s %s: %w", op, session.ShortID(id), err)
	}
	return fmt.Errorf("clusterstore: %s %s: %w: %w", op, session.ShortID(id), why, err)
}
