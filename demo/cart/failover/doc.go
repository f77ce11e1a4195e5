// Package failover holds the multi-process tests of replicated sessions:
// three real `tether cart --cluster` processes behind a real `tether serve`
// (sessions: replicated, active health checks), killed with SIGKILL,
// frozen with SIGSTOP, restarted, and stopped one by one with SIGTERM
// under traffic; and the same system on a shared store instead (`tether
// cart --store redis://…`, `memcached://…`, on real redis-server and
// memcached processes), whose server is killed too. And nodes each on a
// loopback address of its own, without a balancer, cut from each other by
// nftables rules: the partition cases at the majority level, and
// TestNemesis, the randomized test whose clients' histories under
// partitions, kills, restarts and freezes are checked for linearizability.
// It has no code of its own; see its tests and docs/cluster.md.
package failover
