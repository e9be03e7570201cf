package core

import (
	"strings"
	"testing"
	"time"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// TestBrokerStatus: BrokerStatus counts every topic and partition (the internal offsets topic
// too), sums the partitions' bytes on disk, and names the node, the build, the uptime and the
// listeners.
func TestBrokerStatus(t *testing.T) {
	e := newEnv(t, cluster.Options{NodeID: 4})
	status := func() proto.BrokerStatusResponse {
		t.Helper()
		var resp proto.BrokerStatusResponse
		e.call(proto.KeyBrokerStatus, &proto.BrokerStatusRequest{}, &resp)
		return resp
	}
	before := status()
	if before.NodeID != 4 || before.Version == "" || before.UptimeMs < 0 || before.DataBytes != 0 {
		t.Fatalf("status of an empty broker: %+v", before)
	}
	if len(before.Listeners) != 1 || before.Listeners[0] != (proto.BrokerListener{Name: "binary", Address: "broker.local:9092", Advertised: "broker.local:9092"}) {
		t.Fatalf("listeners %+v, want the binary listener at the advertised address", before.Listeners)
	}

	e.createTopic("a", 3)
	e.createTopic("b", 2)
	batch := makeBatch(5, 1_700_000_000_000, 1)
	if p := e.produce("a", 1, batch); p.ErrorCode != 0 {
		t.Fatalf("produce: %+v", p)
	}
	after := status()
	if after.Topics != before.Topics+2 || after.Partitions != before.Partitions+5 {
		t.Fatalf("after creating 2 topics of 5 partitions: %d topics, %d partitions; before %d, %d",
			after.Topics, after.Partitions, before.Topics, before.Partitions)
	}
	if after.DataBytes != int64(len(batch)) {
		t.Fatalf("data bytes %d after appending one batch of %d bytes", after.DataBytes, len(batch))
	}
}

// TestBrokerStatusListenersAndUptime: the listeners given in Options are reported as they are,
// and the uptime follows the server's clock.
func TestBrokerStatusListenersAndUptime(t *testing.T) {
	e := newEnv(t, cluster.Options{})
	clock := time.Unix(1_700_000_000, 0)
	listeners := []proto.BrokerListener{
		{Name: "binary", Address: "0.0.0.0:9092", Advertised: "10.1.1.1:9092"},
		{Name: "kafka", Address: "0.0.0.0:9093", Advertised: "10.1.1.1:9093"},
	}
	s, err := NewServer(Options{Broker: e.broker, AdvertisedAddr: "10.1.1.1:9092", Listeners: listeners,
		Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	e.server = s
	clock = clock.Add(90 * time.Minute)
	var resp proto.BrokerStatusResponse
	e.call(proto.KeyBrokerStatus, &proto.BrokerStatusRequest{}, &resp)
	if resp.UptimeMs != (90*time.Minute).Milliseconds() || len(resp.Listeners) != 2 || resp.Listeners[1] != listeners[1] {
		t.Fatalf("%+v", resp)
	}

	// A body where none belongs is malformed, like any other request's trailing bytes.
	corr := e.send(proto.KeyBrokerStatus, proto.Version, []byte{0})
	h, body := e.recv(corr)
	if errcode.Code(h.ErrorCode) != errcode.InvalidRequest || !strings.Contains(h.ErrorMessage, "BrokerStatus") || len(body) != 0 {
		t.Fatalf("BrokerStatus with a body: %d %q, %d body bytes", h.ErrorCode, h.ErrorMessage, len(body))
	}
}

func TestBuildVersion(t *testing.T) {
	// A test binary has build information: the module version is "devel" or a release, and the
	// Go release is named.
	if v := BuildVersion(); !strings.Contains(v, "go1.") {
		t.Fatalf("BuildVersion() = %q", v)
	}
}
