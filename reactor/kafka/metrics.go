package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/reactor/core"
)

// metricsAPIs is what the Kafka protocol serves, for core.Metrics.Protocol: every advertised API
// and version (Produce v0-v2 included: they are answered, with UNSUPPORTED_VERSION).
func metricsAPIs() []core.API {
	apis := make([]core.API, 0, len(advertised))
	for _, a := range advertised {
		apis = append(apis, core.API{Key: a.key, Name: kmsg.NameForKey(a.key), Min: a.min, Max: a.max})
	}
	return apis
}

// countRequest counts a request whose header parsed with err and returns its counters: those of
// "unsupported", counted as an error, when the header did not parse. On the loop; allocates
// nothing.
func (s *Server) countRequest(h header, err error) *core.APICounters {
	if err != nil {
		c := s.Metrics.Unsupported()
		c.Request()
		c.Error()
		return c
	}
	c := s.Metrics.API(h.key, h.version)
	c.Request()
	return c
}
