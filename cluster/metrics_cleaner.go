package cluster

import (
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// cleanerMetrics describe the log cleaner's progress per compacted partition, read from the
// cleaner when scraped.
type cleanerMetrics struct {
	firstDirty, dirtyBytes, cleanBytes, inProgress, lastSeconds *prometheus.Desc
	passes, removed, read, written                              *prometheus.Desc
}

func newCleanerMetrics() cleanerMetrics {
	labels := []string{"topic", "partition"}
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, labels, nil) }
	return cleanerMetrics{
		firstDirty:  d("thorstream_cleaner_first_dirty_offset", "Offsets below this were compacted (the cleaner checkpoint)."),
		dirtyBytes:  d("thorstream_cleaner_dirty_bytes", "Bytes of the partition's segments from the first dirty offset on, the active segment included."),
		cleanBytes:  d("thorstream_cleaner_clean_bytes", "Bytes of the partition's segments wholly below the first dirty offset."),
		inProgress:  d("thorstream_cleaner_pass_in_progress", "1 while a cleaning pass runs on the partition."),
		lastSeconds: d("thorstream_cleaner_last_pass_duration_seconds", "How long the partition's last cleaning pass took."),
		passes:      d("thorstream_cleaner_passes_total", "Cleaning passes completed on the partition."),
		removed:     d("thorstream_cleaner_removed_records_total", "Records the cleaner removed: superseded, expired tombstones, without a key."),
		read:        d("thorstream_cleaner_read_bytes_total", "Bytes the cleaner read from the partition's log."),
		written:     d("thorstream_cleaner_written_bytes_total", "Bytes of cleaned segments the cleaner wrote for the partition."),
	}
}

func (c cleanerMetrics) describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.firstDirty, c.dirtyBytes, c.cleanBytes, c.inProgress, c.lastSeconds, c.passes, c.removed, c.read, c.written} {
		ch <- d
	}
}

// collect reports every compacted partition the cleaner has passed over or is watching.
func (c cleanerMetrics) collect(ch chan<- prometheus.Metric, b *Broker) {
	if b.cleaner == nil {
		return
	}
	for _, s := range b.cleaner.Stats() {
		i := strings.LastIndexByte(s.Name, '-')
		if i < 0 {
			continue
		}
		topic, part := s.Name[:i], s.Name[i+1:]
		if _, err := strconv.Atoi(part); err != nil {
			continue
		}
		if t := b.Snapshot().Topics[topic]; t == nil || !t.Config.Compact() {
			continue
		}
		emit := func(d *prometheus.Desc, kind prometheus.ValueType, v float64) {
			ch <- prometheus.MustNewConstMetric(d, kind, v, topic, part)
		}
		inProgress := 0.0
		if s.InProgress {
			inProgress = 1
		}
		emit(c.firstDirty, prometheus.GaugeValue, float64(s.Progress.FirstDirty))
		emit(c.dirtyBytes, prometheus.GaugeValue, float64(s.Progress.DirtyBytes))
		emit(c.cleanBytes, prometheus.GaugeValue, float64(s.Progress.CleanBytes))
		emit(c.inProgress, prometheus.GaugeValue, inProgress)
		emit(c.lastSeconds, prometheus.GaugeValue, s.Last.Duration.Seconds())
		emit(c.passes, prometheus.CounterValue, float64(s.Passes))
		emit(c.removed, prometheus.CounterValue, float64(s.RecordsRemoved))
		emit(c.read, prometheus.CounterValue, float64(s.BytesRead))
		emit(c.written, prometheus.CounterValue, float64(s.BytesWritten))
	}
}
