package sessiontest

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tetherlb/tether/session"
)

// testConcurrentKeys has writers load a session and commit their own key,
// many times over, as tabs and AJAX calls of one user do: no write is lost.
func testConcurrentKeys(t *testing.T, h *harness) {
	const writers, rounds = 8, 25
	h.create("s1", nil, time.Hour, 0)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := "w" + strconv.Itoa(w)
			for r := 1; r <= rounds; r++ {
				rec, err := h.st.Load(ctx(), "s1")
				if err == nil {
					_, err = h.st.Save(ctx(), session.Delta{ID: "s1", BaseVersion: rec.Version,
						Set: map[string][]byte{key: []byte(strconv.Itoa(r))}, LastAccess: h.clock.Now()})
				}
				if err != nil {
					errs <- fmt.Errorf("%s round %d: %w", key, r, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := map[string]string{}
	for w := 0; w < writers; w++ {
		want["w"+strconv.Itoa(w)] = strconv.Itoa(rounds)
	}
	h.values("s1", want)
	if v := h.load("s1").Version; v != 1+writers*rounds {
		t.Fatalf("version %d after %d saves, want %d", v, writers*rounds, 1+writers*rounds)
	}
}

// testConcurrentSameKey has writers race on one key from one base version:
// the value left is that of the save the store applied last (the highest
// version), and every save but the first applied reports the conflict.
func testConcurrentSameKey(t *testing.T, h *harness) {
	const writers = 16
	h.create("s1", map[string]string{"k": "start"}, time.Hour, 0)
	results := make([]session.SaveResult, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[w], errs[w] = h.st.Save(ctx(), session.Delta{ID: "s1", BaseVersion: 1,
				Set: map[string][]byte{"k": []byte("w" + strconv.Itoa(w))}, LastAccess: h.clock.Now()})
		}()
	}
	wg.Wait()
	last, conflicts := -1, 0
	versions := map[uint64]bool{}
	for w := 0; w < writers; w++ {
		if errs[w] != nil {
			t.Fatalf("writer %d: %v", w, errs[w])
		}
		versions[results[w].Version] = true
		if last < 0 || results[w].Version > results[last].Version {
			last = w
		}
		if len(results[w].Conflicts) > 0 {
			conflicts++
		}
		if results[w].Version == 2 && len(results[w].Conflicts) != 0 {
			t.Errorf("the first save applied reports conflicts %v", results[w].Conflicts)
		}
	}
	if len(versions) != writers {
		t.Fatalf("versions %v: two saves got the same version", versions)
	}
	if conflicts != writers-1 {
		t.Errorf("%d saves report a conflict, want %d", conflicts, writers-1)
	}
	h.values("s1", map[string]string{"k": "w" + strconv.Itoa(last)})
}

// testConcurrentSessions works many sessions at once: creates, loads,
// saves, touches and deletes, each goroutine on its own sessions, to be run
// under -race.
func testConcurrentSessions(t *testing.T, h *harness) {
	const workers, each = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := churn(h, w, each); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := 0; w < workers; w++ {
		for i := 0; i < each; i++ {
			id := fmt.Sprintf("w%d-%d", w, i)
			if i%4 == 3 {
				h.gone(id)
			} else {
				h.values(id, map[string]string{"n": strconv.Itoa(i), "w": strconv.Itoa(w)})
			}
		}
	}
}

func churn(h *harness, w, each int) error {
	for i := 0; i < each; i++ {
		id := fmt.Sprintf("w%d-%d", w, i)
		now := h.clock.Now()
		if _, err := h.st.Save(ctx(), session.Delta{ID: id, Route: "n1", Created: now, LastAccess: now,
			IdleTimeout: time.Hour, Set: map[string][]byte{"w": []byte(strconv.Itoa(w))}}); err != nil {
			return fmt.Errorf("create %s: %w", id, err)
		}
		rec, err := h.st.Load(ctx(), id)
		if err != nil {
			return fmt.Errorf("load %s: %w", id, err)
		}
		if _, err := h.st.Save(ctx(), session.Delta{ID: id, BaseVersion: rec.Version, LastAccess: now,
			Set: map[string][]byte{"n": []byte(strconv.Itoa(i))}}); err != nil {
			return fmt.Errorf("save %s: %w", id, err)
		}
		if err := h.st.Touch(ctx(), id, now); err != nil {
			return fmt.Errorf("touch %s: %w", id, err)
		}
		if i%4 == 3 {
			if err := h.st.Delete(ctx(), id); err != nil {
				return fmt.Errorf("delete %s: %w", id, err)
			}
		}
		if _, err := h.st.Load(ctx(), "absent"); !errors.Is(err, session.ErrNotFound) {
			return fmt.Errorf("load of an absent session: %v", err)
		}
	}
	return nil
}

func testStats(t *testing.T, h *harness) {
	sr, ok := h.st.(session.StatsReporter)
	if !ok {
		t.Skip("the store does not report stats")
	}
	h.create("s1", map[string]string{"a": "1"}, time.Hour, 0)
	h.create("s2", map[string]string{"a": "1"}, time.Hour, 0)
	small := sr.Stats()
	if small.Sessions != 2 || small.Bytes <= 0 {
		t.Fatalf("stats with two sessions: %+v", small)
	}
	h.save("s1", 1, map[string]string{"big": string(make([]byte, 4096))})
	if big := sr.Stats(); big.Bytes < small.Bytes+4096 {
		t.Fatalf("bytes %d after adding 4 KiB to %d", big.Bytes, small.Bytes)
	}
	if err := h.st.Delete(ctx(), "s1"); err != nil {
		t.Fatal(err)
	}
	if st := sr.Stats(); st.Sessions != 1 || st.Bytes >= small.Bytes {
		t.Fatalf("stats after a delete: %+v (before: %+v)", st, small)
	}
}
