package proto

// BrokerStatus (key 10), version 1: what an operator asks a broker about itself.
//
// Request: empty.
//
// Response body:
//
//	nodeId int32 | version string | uptimeMs int64 | topics int32 | partitions int32 |
//	dataBytes int64 | listeners [ name string | address string | advertised string ]
//
// version names the broker build; uptimeMs is measured by the broker since it started serving;
// topics and partitions count every topic this broker hosts, internal ones included; dataBytes is
// the size of their .log files; listeners are the ones the broker accepts connections on, each
// with the address it is bound to and the one it gives clients.

// BrokerStatusRequest is a BrokerStatus request (no fields).
type BrokerStatusRequest struct{}

// ReadFrom decodes the request body.
func (v *BrokerStatusRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *BrokerStatusRequest) AppendTo(dst []byte) []byte { return dst }

// BrokerListener is one listener in a BrokerStatus response.
type BrokerListener struct {
	Name       string // "binary" (this protocol) or "kafka"
	Address    string // host:port the listener is bound to
	Advertised string // host:port clients are given
}

// BrokerStatusResponse is a decoded BrokerStatus response body.
type BrokerStatusResponse struct {
	NodeID     int32
	Version    string
	UptimeMs   int64
	Topics     int32
	Partitions int32
	DataBytes  int64
	Listeners  []BrokerListener
}

// ReadFrom decodes the response body.
func (v *BrokerStatusResponse) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.NodeID = r.Int32()
	v.Version = r.String()
	v.UptimeMs = r.Int64()
	v.Topics = r.Int32()
	v.Partitions = r.Int32()
	v.DataBytes = r.Int64()
	v.Listeners = growSlice(v.Listeners, max(r.ArrayLen(6), 0)) // three empty strings
	for i := range v.Listeners {
		v.Listeners[i] = BrokerListener{Name: r.String(), Address: r.String(), Advertised: r.String()}
	}
	return r.Complete()
}

// AppendTo encodes the response body.
func (v *BrokerStatusResponse) AppendTo(dst []byte) []byte {
	dst = AppendInt32(dst, v.NodeID)
	dst = AppendString(dst, v.Version)
	dst = AppendInt64(dst, v.UptimeMs)
	dst = AppendInt32(dst, v.Topics)
	dst = AppendInt32(dst, v.Partitions)
	dst = AppendInt64(dst, v.DataBytes)
	dst = AppendArrayLen(dst, len(v.Listeners))
	for _, l := range v.Listeners {
		dst = AppendString(dst, l.Name)
		dst = AppendString(dst, l.Address)
		dst = AppendString(dst, l.Advertised)
	}
	return dst
}
