package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tetherlb/tether/group"
)

func TestGroupMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	st := group.Status{Name: "a", Synced: true, Alone: false, Instances: []group.Instance{{Name: "a", Up: true}, {Name: "b", Up: false}}}
	sessions := func(yield func(string, string, int64)) { yield("shop", "n1", 4); yield("shop", "n2", 0) }
	if err := RegisterGroup(reg, func() group.Status { return st }, sessions); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP tether_group_alone 1 while this instance reaches no other instance of the group and serves with the state it has.
# TYPE tether_group_alone gauge
tether_group_alone 0
# HELP tether_group_instance_up 1 for every instance of the group this one reaches (itself included), 0 for one it has seen and no longer reaches.
# TYPE tether_group_instance_up gauge
tether_group_instance_up{instance="a",self="true"} 1
tether_group_instance_up{instance="b",self="false"} 0
# HELP tether_group_member_live_sessions Live sessions of the member seen by any instance of the group (a session seen by two counts once); tether_member_live_sessions is this instance's own.
# TYPE tether_group_member_live_sessions gauge
tether_group_member_live_sessions{balancer="shop",member="n1"} 4
tether_group_member_live_sessions{balancer="shop",member="n2"} 0
# HELP tether_group_synced 1 once this instance has taken the group's state since it started (always 1 without peers).
# TYPE tether_group_synced gauge
tether_group_synced 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
