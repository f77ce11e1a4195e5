package clustertest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tetherlb/tether/cluster"
	"github.com/tetherlb/tether/cluster/clustertest"
)

func TestSmoke(t *testing.T) {
	h := clustertest.New(t, clustertest.Config{Nodes: 3})
	ctx := context.Background()
	a, b := h.Node(0), h.Node(1)
	if _, err := a.Create(ctx, cluster.NewSession{ID: "s1", Values: map[string][]byte{"k": []byte("v")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Update(ctx, cluster.Delta{ID: "s1", Base: 1, Set: map[string][]byte{"k2": []byte("v2")}}); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		for i := range 3 {
			r, err := h.Node(i).Get("s1")
			if err != nil {
				return fmt.Errorf("n%d: %v", i+1, err)
			}
			if r.Version != 2 {
				return fmt.Errorf("n%d: version %d", i+1, r.Version)
			}
		}
		return nil
	})
	r, err := b.Claim(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Owner != "n2" || string(r.Values["k2"]) != "v2" {
		t.Fatalf("claimed %+v", r)
	}
	if _, err := a.Update(ctx, cluster.Delta{ID: "s1", Base: 2, Set: map[string][]byte{"x": nil}}); err == nil {
		t.Fatal("old owner could still write")
	} else {
		t.Log(err)
	}
	t.Logf("%+v", b.Info())
	t.Log("body done", time.Now())
	t.Cleanup(func() { t.Log("cleanup start", time.Now()) })
}
