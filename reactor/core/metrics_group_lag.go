package core

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/groups"
)

// GroupLag is the thorstream_group_lag metric: for every consumer group this node coordinates
// and every partition it has committed an offset for that this node leads, the partition's log
// end offset (high watermark) minus that offset.
// Nothing is kept up on the commit path: each scrape asks the coordinator for its groups and
// their offsets, and the replicas for their log ends. It is a prometheus.Collector; register it,
// then Attach the coordinator and the broker once they run.
type GroupLag struct {
	desc   *prometheus.Desc
	source atomic.Pointer[lagSource]
	// wait bounds a scrape's wait for the coordinator's answers; groups whose shard has not
	// answered by then are left out of that scrape.
	wait time.Duration
}

type lagSource struct {
	coord  *groups.Coordinator
	broker *cluster.Broker
}

// NewGroupLag returns the collector, reporting nothing until Attach.
func NewGroupLag() *GroupLag {
	return &GroupLag{
		desc: prometheus.NewDesc("thorstream_group_lag",
			"Records of the partition a consumer group has not committed yet: the partition's log end offset minus the group's committed offset (0 when the commit is at or past the end).",
			[]string{"group", "topic", "partition"}, nil),
		wait: 5 * time.Second,
	}
}

// Attach makes coord's groups and b's partitions the ones collected.
func (g *GroupLag) Attach(coord *groups.Coordinator, b *cluster.Broker) {
	g.source.Store(&lagSource{coord: coord, broker: b})
}

// Describe is prometheus.Collector's.
func (g *GroupLag) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

// Collect is prometheus.Collector's. It runs on the scraping goroutine and waits, at most
// g.wait, for the shards' answers (which arrive on their goroutines).
func (g *GroupLag) Collect(ch chan<- prometheus.Metric) {
	src := g.source.Load()
	if src == nil || !src.coord.Ready() {
		return
	}
	deadline := time.NewTimer(g.wait)
	defer deadline.Stop()

	type listed struct {
		groups []groups.ListedGroup
		code   errcode.Code
	}
	listCh := make(chan listed, 1) // buffered: a late reply never blocks its shard
	src.coord.List(nil, func(gs []groups.ListedGroup, code errcode.Code) { listCh <- listed{gs, code} })
	var all []groups.ListedGroup
	select {
	case l := <-listCh:
		all = l.groups // with an error, the groups of the shards that answered
	case <-deadline.C:
		return
	}
	if len(all) == 0 {
		return
	}

	type fetched struct {
		group string
		resp  groups.FetchResponse
	}
	// Buffered for every group: replies that come after the deadline are dropped unread.
	fetchCh := make(chan fetched, len(all))
	for _, lg := range all {
		name := lg.Group
		src.coord.FetchOffsets(groups.FetchRequest{Group: name}, func(r groups.FetchResponse) { fetchCh <- fetched{name, r} })
	}
	for range all {
		var f fetched
		select {
		case f = <-fetchCh:
		case <-deadline.C:
			return
		}
		if f.resp.ErrorCode != errcode.None {
			continue
		}
		for _, t := range f.resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != errcode.None || p.Offset < 0 {
					continue
				}
				// Only partitions this node leads: their log ends are this node's to report (the
				// leader of each other partition reports its lag).
				r := src.broker.Route(t.Topic, p.Partition).Replica
				if r == nil {
					continue // another node leads it, or the topic was deleted
				}
				lag := max(r.HighWatermark()-p.Offset, 0)
				ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(lag),
					f.group, t.Topic, strconv.Itoa(int(p.Partition)))
			}
		}
	}
}
