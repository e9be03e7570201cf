package core

import (
	"runtime/debug"
	"strings"
	"time"

	"github.com/thorstream/thorstream/codec/proto"
)

// statusInfo is what BrokerStatus answers besides the topics: fixed when the server is made.
type statusInfo struct {
	started   time.Time
	listeners []proto.BrokerListener
}

func newStatusInfo(o Options, e *Endpoint, advertised string) statusInfo {
	ls := o.Listeners
	if len(ls) == 0 {
		ls = []proto.BrokerListener{{Name: "binary", Address: o.AdvertisedAddr, Advertised: advertised}}
	}
	return statusInfo{started: e.Now(), listeners: ls}
}

// brokerStatus answers BrokerStatus: node, build, uptime, what the broker hosts and its
// listeners. It reads only atomics (the snapshot and segment sizes), on the control goroutine.
func (s *Server) brokerStatus(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte) {
	var req proto.BrokerStatusRequest
	if err := req.ReadFrom(body); err != nil {
		decodeError(sess, seq, hdr, err)
		return
	}
	resp := proto.BrokerStatusResponse{
		NodeID:    s.Broker.NodeID(),
		Version:   BuildVersion(),
		UptimeMs:  max(s.Now().Sub(s.status.started).Milliseconds(), 0),
		Listeners: s.status.listeners,
	}
	snap := s.Broker.Snapshot()
	for _, name := range snap.Names {
		t := snap.Topics[name]
		if t == nil {
			continue
		}
		hosted := false
		for _, r := range t.Replicas {
			if r == nil {
				continue // another node of the cluster hosts it
			}
			hosted = true
			resp.Partitions++
			resp.DataBytes += r.Size()
		}
		if hosted || len(t.Replicas) == 0 {
			resp.Topics++
		}
	}
	sess.Complete(seq, bodyResponse(hdr.CorrelationID, &resp))
}

// BuildVersion names the running build: the module version ("devel" for a build from a
// checkout), then the source revision and the Go release, as the Go toolchain stamped them:
// "devel (08188fc2a1b3, modified, go1.26.8)".
func BuildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	version := info.Main.Version
	if version == "" || version == "(devel)" {
		version = "devel"
	}
	var details []string
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision":
			details = append(details, s.Value[:min(len(s.Value), 12)])
		case s.Key == "vcs.modified" && s.Value == "true":
			details = append(details, "modified")
		}
	}
	details = append(details, info.GoVersion)
	return version + " (" + strings.Join(details, ", ") + ")"
}
