package reactor

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/thorstream/thorstream/reactor/core"
)

// connMetric reads one sample of the connection metrics: name with its listener and, for the
// closed counter, reason.
func connMetric(t *testing.T, m *core.Metrics, name, listener, reason string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["listener"] != listener || labels["reason"] != reason {
				continue
			}
			if f.GetType() == dto.MetricType_GAUGE {
				return s.GetGauge().GetValue()
			}
			return s.GetCounter().GetValue()
		}
	}
	t.Fatalf("no sample %s{listener=%q,reason=%q}", name, listener, reason)
	return 0
}

// waitMetric polls until the sample reads want.
func waitMetric(t *testing.T, m *core.Metrics, name, listener, reason string, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := connMetric(t, m, name, listener, reason)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s{listener=%q,reason=%q} = %v, want %v", name, listener, reason, got, want)
		}
		time.Sleep(10 * time.Millisecond) // polling interval of a condition with a deadline
	}
}

// waitClosedByBroker reads c until the broker closes it.
func waitClosedByBroker(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("the broker did not close the connection (read %d bytes): %v", n, err)
	}
}

func TestConnectionMetricsCountOpensClosesAndReasons(t *testing.T) {
	m := core.NewMetrics()
	r := startReactor(t, Options{KafkaAddr: "127.0.0.1:0", Metrics: m, FrameReadTimeout: 300 * time.Millisecond})
	binaryAddr, kafkaAddr := r.Addrs()[0], r.Addrs()[1]

	// A client that is served and hangs up.
	if got := roundTrip(t, binaryAddr, "ping-ping"); got != "binary:ping-ping" {
		t.Fatalf("round trip: %q", got)
	}
	waitMetric(t, m, "thorstream_connections_closed_total", "binary", "client", 1)
	waitMetric(t, m, "thorstream_connections_open", "binary", "", 0)
	waitMetric(t, m, "thorstream_connections_total", "binary", "", 1)

	dial := func(addr string) net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// A negative frame size: closed as a bad frame.
	c := dial(kafkaAddr)
	if _, err := c.Write([]byte{0xff, 0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	waitClosedByBroker(t, c)
	waitMetric(t, m, "thorstream_connections_closed_total", "kafka", "bad_frame", 1)

	// Half a frame, and then nothing: closed when the frame read deadline passes.
	c = dial(kafkaAddr)
	if _, err := c.Write([]byte{0, 0, 0, 100, 1, 2}); err != nil {
		t.Fatal(err)
	}
	waitClosedByBroker(t, c)
	waitMetric(t, m, "thorstream_connections_closed_total", "kafka", "frame_timeout", 1)
	waitMetric(t, m, "thorstream_connections_open", "kafka", "", 0)
	waitMetric(t, m, "thorstream_connections_total", "kafka", "", 2)

	// Open at the stop: closed by the shutdown.
	dial(binaryAddr)
	waitMetric(t, m, "thorstream_connections_open", "binary", "", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, m, "thorstream_connections_closed_total", "binary", "shutdown", 1)
	waitMetric(t, m, "thorstream_connections_open", "binary", "", 0)
	if got := connMetric(t, m, "thorstream_connections_closed_total", "kafka", "client"); got != 0 {
		t.Errorf("%v Kafka connections counted as closed by their client, want 0", got)
	}
}
