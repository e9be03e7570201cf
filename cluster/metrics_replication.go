package cluster

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/thorstream/thorstream/cluster/meta"
)

// replicationMetrics are Kafka's classic replication gauges, one series each per node, computed
// from the broker's snapshot when scraped (nothing is kept up on the produce or fetch path):
//
//   - under-replicated partitions: those this node leads whose ISR is smaller than their
//     replicas (Kafka's UnderReplicatedPartitions);
//   - offline partitions: those with no leader, counted by the active controller only, 0 on the
//     other nodes (Kafka's OfflinePartitionsCount), so the sum over the nodes is the cluster's;
//   - the largest lag, in records behind the leader's log end, of any follower of the partitions
//     this node leads, where the leader last saw it (followers not heard from since the leader
//     took over are not counted: their position is unknown).
type replicationMetrics struct {
	underReplicated, offline, maxLag *prometheus.Desc
}

func newReplicationMetrics() replicationMetrics {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return replicationMetrics{
		underReplicated: d("thorstream_under_replicated_partitions",
			"Partitions this node leads whose in-sync replicas are fewer than their replicas."),
		offline: d("thorstream_offline_partitions",
			"Partitions without a leader, counted by the active controller (0 on the other nodes)."),
		maxLag: d("thorstream_replica_max_lag_records",
			"The largest lag, in records behind the leader's log end, of a follower of the partitions this node leads."),
	}
}

func (m replicationMetrics) describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.underReplicated, m.offline, m.maxLag} {
		ch <- d
	}
}

// collect reads b's snapshot and the replicas this node leads.
func (m replicationMetrics) collect(ch chan<- prometheus.Metric, b *Broker) {
	self := b.NodeID()
	controller := b.ControllerID() == self
	var under, offline int
	var maxLag int64
	snap := b.Snapshot()
	for _, name := range snap.Names {
		t := snap.Topics[name]
		if t == nil {
			continue
		}
		for p := range t.Partitions {
			pa := &t.Partitions[p]
			if pa.Leader == meta.NoLeader {
				if controller {
					offline++
				}
				continue
			}
			if pa.Leader != self {
				continue
			}
			if len(pa.ISR) < len(pa.Replicas) {
				under++
			}
			if p < len(t.Replicas) && t.Replicas[p] != nil {
				maxLag = max(maxLag, t.Replicas[p].maxFollowerLag())
			}
		}
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	gauge(m.underReplicated, float64(under))
	gauge(m.offline, float64(offline))
	gauge(m.maxLag, float64(maxLag))
}

// maxFollowerLag is the largest lag of a follower this replica's leader has heard from: its log
// end minus the follower's at its last fetch (0 on a follower, or without followers).
func (r *Replica) maxFollowerLag() int64 {
	followers := r.Followers() // before the log end: no follower is past the end read after
	logEnd := r.LogEndOffset()
	var lag int64
	for _, f := range followers {
		lag = max(lag, logEnd-f.FetchOffset)
	}
	return lag
}
