package cluster

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thorstream/thorstream/codec/batch"
	"github.com/thorstream/thorstream/log/partition"
)

// Metrics are the storage side's Prometheus metrics: what partitions take in and hand out, group
// commits and their syncs, recovery at start, and each partition's log (read from the replicas
// when scraped, never updated on the write path). A nil *Metrics is off: replicas then count
// nothing and read no clock for it.
//
// Counting costs no allocation: every replica resolves its topic's counters once, when it is
// created, and the write path only adds to them (atomics, a few nanoseconds each).
type Metrics struct {
	bytesIn, recordsIn   *prometheus.CounterVec // {topic}
	bytesOut, recordsOut *prometheus.CounterVec // {topic}
	fsyncs               prometheus.Counter
	fsyncSeconds         prometheus.Histogram
	fsyncWait            prometheus.Histogram
	groupRecords         prometheus.Histogram
	recoveryDropped      prometheus.Counter

	// broker is the broker whose partitions are collected at scrape time (Attach).
	broker atomic.Pointer[Broker]

	logStart, logEnd, size, segments, fenced *prometheus.Desc
	cleaner                                  cleanerMetrics
	replication                              replicationMetrics
}

// LatencyBuckets are the buckets, in seconds, of the broker's latency histograms: 100 µs (a sync
// on a fast disk, a produce with fsync=never) to 10 s.
var LatencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// NewMetrics returns the storage metrics; register them (they are a prometheus.Collector) and
// pass them in Options.Metrics, then Attach the opened broker.
func NewMetrics() *Metrics {
	topic := []string{"topic"}
	partitionLabels := []string{"topic", "partition"}
	return &Metrics{
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "thorstream_topic_bytes_in_total",
			Help: "Record batch bytes appended to the topic's partitions."}, topic),
		recordsIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "thorstream_topic_records_in_total",
			Help: "Records appended to the topic's partitions."}, topic),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "thorstream_topic_bytes_out_total",
			Help: "Record batch bytes sent to consumers in fetch responses."}, topic),
		recordsOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "thorstream_topic_records_out_total",
			Help: "Records sent to consumers in fetch responses (whole batches, as stored)."}, topic),
		fsyncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "thorstream_log_fsyncs_total",
			Help: "Partition log syncs (fdatasync) that completed, every policy and partition together."}),
		fsyncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "thorstream_log_fsync_duration_seconds",
			Help: "Time one partition log sync (fdatasync) took.", Buckets: LatencyBuckets}),
		fsyncWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "thorstream_produce_fsync_wait_seconds",
			Help:    "With fsync=always, time from a partition append reaching its partition writer to the end of its group commit's sync: the wait behind the sync before it, the write and its own sync.",
			Buckets: LatencyBuckets}),
		groupRecords: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "thorstream_log_group_commit_records",
			Help:    "Records appended by one group commit (one write, and with fsync=always one sync, for every request a partition writer took at once).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10)}),
		recoveryDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "thorstream_recovery_dropped_bytes_total",
			Help: "Bytes that recovery at start cut off partition logs (torn or corrupt tails, segments moved aside after a cut); they are kept in files beside the segments."}),

		logStart: prometheus.NewDesc("thorstream_partition_log_start_offset",
			"First offset still in the partition's log.", partitionLabels, nil),
		logEnd: prometheus.NewDesc("thorstream_partition_log_end_offset",
			"Offset the partition's next record gets (its high watermark: everything below is committed).", partitionLabels, nil),
		size: prometheus.NewDesc("thorstream_partition_size_bytes",
			"Bytes of the partition's segments on disk.", partitionLabels, nil),
		segments: prometheus.NewDesc("thorstream_partition_segments",
			"Segments in the partition's log, the active one included.", partitionLabels, nil),
		fenced: prometheus.NewDesc("thorstream_partition_fenced",
			"1 when the partition refuses writes after a storage error (KAFKA_STORAGE_ERROR), else 0.", partitionLabels, nil),
		cleaner:     newCleanerMetrics(),
		replication: newReplicationMetrics(),
	}
}

// Attach makes b the broker whose partitions are collected, and forgets a topic's counters when
// it is deleted.
func (m *Metrics) Attach(b *Broker) {
	m.broker.Store(b)
	b.OnTopicDeleted(m.forgetTopic)
}

func (m *Metrics) forgetTopic(topic string) {
	for _, v := range []*prometheus.CounterVec{m.bytesIn, m.recordsIn, m.bytesOut, m.recordsOut} {
		v.DeleteLabelValues(topic)
	}
}

// Describe is prometheus.Collector's.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
	for _, d := range []*prometheus.Desc{m.logStart, m.logEnd, m.size, m.segments, m.fenced} {
		ch <- d
	}
	m.cleaner.describe(ch)
	m.replication.describe(ch)
}

// Collect is prometheus.Collector's: the counters, then every partition's log as it is now.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
	b := m.broker.Load()
	if b == nil {
		return
	}
	m.cleaner.collect(ch, b)
	m.replication.collect(ch, b)
	snap := b.Snapshot()
	for _, name := range snap.Names {
		t := snap.Topics[name]
		if t == nil {
			continue
		}
		for _, r := range t.Replicas {
			if r == nil { // another node's partition
				continue
			}
			p := strconv.Itoa(int(r.partition))
			gauge := func(d *prometheus.Desc, v float64) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name, p)
			}
			gauge(m.logStart, float64(r.log.StartOffset()))
			gauge(m.logEnd, float64(r.HighWatermark()))
			gauge(m.size, float64(r.log.Size()))
			gauge(m.segments, float64(len(r.log.Segments())))
			fenced := 0.0
			if r.fenced.Load() != nil {
				fenced = 1
			}
			gauge(m.fenced, fenced)
		}
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.bytesIn, m.recordsIn, m.bytesOut, m.recordsOut,
		m.fsyncs, m.fsyncSeconds, m.fsyncWait, m.groupRecords, m.recoveryDropped}
}

// replicaMetrics are one replica's counters, resolved once when the replica is created.
type replicaMetrics struct {
	m                    *Metrics
	bytesIn, recordsIn   prometheus.Counter
	bytesOut, recordsOut prometheus.Counter
}

// forReplica resolves the counters of a replica of topic (nil when m is off) and counts what
// recovery cut off log on this open.
func (m *Metrics) forReplica(topic string, log *partition.Log) *replicaMetrics {
	if m == nil {
		return nil
	}
	if n := log.RecoveryBytesDropped(); n > 0 {
		m.recoveryDropped.Add(float64(n))
	}
	return &replicaMetrics{
		m:          m,
		bytesIn:    m.bytesIn.WithLabelValues(topic),
		recordsIn:  m.recordsIn.WithLabelValues(topic),
		bytesOut:   m.bytesOut.WithLabelValues(topic),
		recordsOut: m.recordsOut.WithLabelValues(topic),
	}
}

// clockStart is the origin of monotonic clock readings kept as integers (AppendRequest.queued).
var clockStart = time.Now()

// monotonicNanos is the monotonic clock in nanoseconds since clockStart, at least 1.
func monotonicNanos() int64 { return max(int64(time.Since(clockStart)), 1) }

// noteQueued stamps req as it enters the inbox, for the fsync wait. On the submitter's goroutine,
// before the send that hands req to the writer.
func (r *Replica) noteQueued(req *AppendRequest) {
	if r.metrics != nil {
		req.queued = monotonicNanos()
	}
}

// noteAppended counts the batches of the group just written (r.iovecs). Writer goroutine.
func (r *Replica) noteAppended() {
	rm := r.metrics
	if rm == nil {
		return
	}
	bytes, records := 0, 0
	for _, b := range r.iovecs {
		bytes += len(b)
		if h, err := batch.ParseHeader(b); err == nil {
			records += int(h.RecordCount)
		}
	}
	rm.bytesIn.Add(float64(bytes))
	rm.recordsIn.Add(float64(records))
	rm.m.groupRecords.Observe(float64(records))
}

// syncClock is when a sync starts (0 when metrics are off). Writer goroutine.
func (r *Replica) syncClock() int64 {
	if r.metrics == nil {
		return 0
	}
	return monotonicNanos()
}

// noteSynced counts a sync that began at start (syncClock) and, when group is set, the wait of
// each of the group's appends that it made durable. Writer goroutine.
func (r *Replica) noteSynced(start int64, group bool) {
	rm := r.metrics
	if rm == nil {
		return
	}
	now := monotonicNanos()
	rm.m.fsyncs.Inc()
	rm.m.fsyncSeconds.Observe(float64(now-start) / 1e9)
	if !group {
		return
	}
	for i, req := range r.group {
		if req.queued > 0 && i < len(r.results) && r.results[i].Err == nil {
			rm.m.fsyncWait.Observe(float64(now-req.queued) / 1e9)
		}
	}
}

// CountFetched counts records, whole batches read from this partition, as sent to a consumer.
// Any goroutine; a no-op when metrics are off.
func (r *Replica) CountFetched(records []byte) {
	rm := r.metrics
	if rm == nil || len(records) == 0 {
		return
	}
	count := 0
	for rest := records; len(rest) > 0; {
		n, err := batch.Size(rest)
		if err != nil || n > len(rest) {
			break
		}
		if h, err := batch.ParseHeader(rest); err == nil {
			count += int(h.RecordCount)
		}
		rest = rest[n:]
	}
	rm.bytesOut.Add(float64(len(records)))
	rm.recordsOut.Add(float64(count))
}
