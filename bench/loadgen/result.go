package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"time"
)

// Modes of a run, as they appear in Result.Mode.
const (
	ModeProduce  = "produce"
	ModeConsume  = "consume"
	ModeEndToEnd = "e2e"
)

// Latency kinds, as they appear in Result.LatencyKind.
const (
	// LatencySendToAck is from Produce being called for the record to its acknowledgement
	// (with acks=0, to the request being written), including time buffered in the client.
	LatencySendToAck = "send-to-ack"
	// LatencyRecordAge is from the record's timestamp (set by its producer) to its receipt.
	LatencyRecordAge = "record-age"
	// LatencyEndToEnd is from Produce being called to the record being received by the
	// consumer in the same process (a monotonic clock, so no clock skew).
	LatencyEndToEnd = "end-to-end"
)

// Result is the outcome of one run. Records and Bytes count successes only: acknowledged
// records for Produce, received ones for Consume and EndToEnd.
type Result struct {
	Mode  string `json:"mode"`
	Topic string `json:"topic"`
	// Start is when the run began (after the clients connected); ElapsedSec counts from it.
	Start         time.Time `json:"start"`
	Records       int64     `json:"records"`
	Bytes         int64     `json:"bytes"`
	Failed        int64     `json:"failed"`
	FirstErrors   []string  `json:"first_errors,omitempty"`
	ElapsedSec    float64   `json:"elapsed_sec"`
	RecordsPerSec float64   `json:"records_per_sec"`
	MiBPerSec     float64   `json:"mib_per_sec"`
	LatencyKind   string    `json:"latency_kind"`
	Latency       Latency   `json:"latency"`
	// Produced counts acknowledged records for EndToEnd (Records counts received ones).
	Produced int64 `json:"produced,omitempty"`
	// Series is the run second by second (Options.SampleInterval), the last entry covering
	// the part interval up to the end.
	Series []Sample `json:"series,omitempty"`
	// Options echoes the run's settings after defaults.
	Options ResultOptions `json:"options"`
	// Host describes the machine and the build that ran the load.
	Host Host `json:"host"`

	// histogram is the run's latency histogram, for the report's chart; nil in a Result read
	// back from JSON.
	histogram *Histogram
}

// Sample is one interval of a run. Latency fields describe the interval's sampled records and
// are 0 when it had none.
type Sample struct {
	// TimeSec is the end of the interval in seconds since Result.Start.
	TimeSec       float64 `json:"t_sec"`
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Failed        int64   `json:"failed"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MiBPerSec     float64 `json:"mib_per_sec"`
	// Latency is how many records' latency the interval measured.
	Latency uint64  `json:"latency_count"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
}

// Host is where a run ran: enough to tell two runs' machines and builds apart.
type Host struct {
	Hostname   string `json:"hostname,omitempty"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	// Revision is the source revision thorload was built from, when the build recorded it.
	Revision string `json:"revision,omitempty"`
}

func thisHost() Host {
	h := Host{OS: runtime.GOOS, Arch: runtime.GOARCH, NumCPU: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()}
	h.Hostname, _ = os.Hostname()
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				h.Revision = s.Value
			}
		}
	}
	return h
}

// ResultOptions is the part of Options worth keeping with a result.
type ResultOptions struct {
	Brokers []string `json:"brokers"`
	// Until says what ends the run: a record count, a duration, both, or (Consume without
	// either) the end offsets seen at the start or an interruption.
	Until          string  `json:"until"`
	Records        int64   `json:"records,omitempty"`
	DurationSec    float64 `json:"duration_sec,omitempty"`
	IdleTimeoutSec float64 `json:"idle_timeout_sec,omitempty"`
	RecordSize     int     `json:"record_size,omitempty"`
	Rate           float64 `json:"rate,omitempty"`
	Partitions     int32   `json:"partitions,omitempty"`
	Acks           string  `json:"acks,omitempty"`
	Compression    string  `json:"compression,omitempty"`
	Idempotent     bool    `json:"idempotent,omitempty"`
	LingerMs       float64 `json:"linger_ms,omitempty"`
	BatchBytes     int32   `json:"batch_bytes,omitempty"`
	MaxInFlight    int     `json:"max_in_flight,omitempty"`
	Producers      int     `json:"producers,omitempty"`
	From           string  `json:"from,omitempty"`
}

func resultOptions(mode string, o Options) ResultOptions {
	r := ResultOptions{Brokers: o.Brokers, Until: o.until(mode), Records: o.Records, DurationSec: o.Duration.Seconds()}
	if mode != ModeProduce {
		r.IdleTimeoutSec = o.IdleTimeout.Seconds()
	}
	if mode == ModeConsume {
		r.From = o.From
		return r
	}
	r.RecordSize, r.Rate, r.Partitions = o.RecordSize, o.Rate, o.Partitions
	r.Acks, r.Compression, r.Idempotent = o.Acks, o.Compression, o.Idempotent
	r.LingerMs = o.Linger.Seconds() * 1000
	r.BatchBytes, r.MaxInFlight = o.BatchBytes, o.MaxInFlight
	r.Producers = o.Producers
	return r
}

// WriteSummary writes a human summary of r.
func (r *Result) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "%s %s: %d records in %.2f s: %.0f records/s, %.2f MiB/s", r.Mode, r.Topic, r.Records, r.ElapsedSec, r.RecordsPerSec, r.MiBPerSec)
	if r.Mode == ModeEndToEnd {
		fmt.Fprintf(w, " (%d produced)", r.Produced)
	}
	fmt.Fprintf(w, ", %d failed\n", r.Failed)
	l := r.Latency
	sample := ""
	if int64(l.Count) < r.Records {
		sample = fmt.Sprintf(", %d sampled records", l.Count)
	}
	fmt.Fprintf(w, "latency (%s, ms%s): mean %.3f  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
		r.LatencyKind, sample, l.MeanMs, l.P50Ms, l.P90Ms, l.P99Ms, l.P999Ms, l.MaxMs)
	if len(r.FirstErrors) > 0 {
		fmt.Fprintf(w, "first errors:\n")
		for _, e := range r.FirstErrors {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

// WriteJSON writes r as indented JSON followed by a newline.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
