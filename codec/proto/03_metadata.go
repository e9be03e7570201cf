package proto

// Metadata (key 3), version 1.
//
// Request:
//
//	topics [ name string ] | allowAutoCreate int8
//
// A null topics array asks for every topic; an empty one for none (brokers and cluster only).
// With allowAutoCreate set and auto-creation enabled on the broker, missing topics are created
// with the broker's default partition count.
//
// Response body:
//
//	clusterId string | controllerId int32 |
//	brokers [ nodeId int32 | host string | port int32 ] |
//	topics [ errorCode int16 | errorMessage string | name string | internal int8 |
//	         partitions [ partition int32 | errorCode int16 | leaderId int32 | leaderEpoch int32 |
//	                      replicas [ int32 ] | isr [ int32 ] ] |
//	         configs [ key string | value string ] ]

// MetadataRequest is a decoded Metadata request.
type MetadataRequest struct {
	Topics          []string // nil: all topics
	AllowAutoCreate bool
}

// ReadFrom decodes the request body.
func (v *MetadataRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	n := r.ArrayLen(2)
	if n < 0 {
		v.Topics = nil
	} else {
		v.Topics = growSlice(v.Topics, n)
		if v.Topics == nil {
			// An empty array asks for no topics and must not read back as nil (every topic).
			v.Topics = []string{}
		}
		for i := range v.Topics {
			v.Topics[i] = r.String()
		}
	}
	v.AllowAutoCreate = r.Bool()
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *MetadataRequest) AppendTo(dst []byte) []byte {
	if v.Topics == nil {
		dst = AppendArrayLen(dst, -1)
	} else {
		dst = AppendArrayLen(dst, len(v.Topics))
		for _, t := range v.Topics {
			dst = AppendString(dst, t)
		}
	}
	return AppendBool(dst, v.AllowAutoCreate)
}

// MetadataResponse is a decoded Metadata response body.
type MetadataResponse struct {
	ClusterID    string
	ControllerID int32
	Brokers      []MetadataBroker
	Topics       []MetadataTopic
}

// MetadataBroker is one node of the cluster.
type MetadataBroker struct {
	NodeID int32
	Host   string
	Port   int32
}

// MetadataTopic describes one topic.
type MetadataTopic struct {
	ErrorCode    int16
	ErrorMessage string
	Name         string
	Internal     bool
	Partitions   []MetadataPartition
	Configs      []ConfigEntry
}

// MetadataPartition describes one partition.
type MetadataPartition struct {
	Partition   int32
	ErrorCode   int16
	Leader      int32
	LeaderEpoch int32
	Replicas    []int32
	ISR         []int32
}

// ConfigEntry is one topic configuration key and value.
type ConfigEntry struct {
	Key   string
	Value string
}

func appendInt32s(dst []byte, vs []int32) []byte {
	dst = AppendArrayLen(dst, len(vs))
	for _, v := range vs {
		dst = AppendInt32(dst, v)
	}
	return dst
}

func readInt32s(r *Reader, dst []int32) []int32 {
	dst = growSlice(dst, max(r.ArrayLen(4), 0))
	for i := range dst {
		dst[i] = r.Int32()
	}
	return dst
}

func appendConfigs(dst []byte, cs []ConfigEntry) []byte {
	dst = AppendArrayLen(dst, len(cs))
	for _, c := range cs {
		dst = AppendString(dst, c.Key)
		dst = AppendString(dst, c.Value)
	}
	return dst
}

func readConfigs(r *Reader, dst []ConfigEntry) []ConfigEntry {
	dst = growSlice(dst, max(r.ArrayLen(4), 0))
	for i := range dst {
		dst[i].Key = r.String()
		dst[i].Value = r.String()
	}
	return dst
}

// ReadFrom decodes the response body.
func (v *MetadataResponse) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.ClusterID = r.String()
	v.ControllerID = r.Int32()
	v.Brokers = growSlice(v.Brokers, max(r.ArrayLen(4+2+4), 0))
	for i := range v.Brokers {
		b := &v.Brokers[i]
		b.NodeID = r.Int32()
		b.Host = r.String()
		b.Port = r.Int32()
	}
	v.Topics = growSlice(v.Topics, max(r.ArrayLen(2+2+2+1+4+4), 0))
	for i := range v.Topics {
		t := &v.Topics[i]
		t.ErrorCode = r.Int16()
		t.ErrorMessage = r.String()
		t.Name = r.String()
		t.Internal = r.Bool()
		t.Partitions = growSlice(t.Partitions, max(r.ArrayLen(4+2+4+4+4+4), 0))
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.Partition = r.Int32()
			p.ErrorCode = r.Int16()
			p.Leader = r.Int32()
			p.LeaderEpoch = r.Int32()
			p.Replicas = readInt32s(&r, p.Replicas)
			p.ISR = readInt32s(&r, p.ISR)
		}
		t.Configs = readConfigs(&r, t.Configs)
	}
	return r.Complete()
}

// AppendTo encodes the response body.
func (v *MetadataResponse) AppendTo(dst []byte) []byte {
	dst = AppendString(dst, v.ClusterID)
	dst = AppendInt32(dst, v.ControllerID)
	dst = AppendArrayLen(dst, len(v.Brokers))
	for _, b := range v.Brokers {
		dst = AppendInt32(dst, b.NodeID)
		dst = AppendString(dst, b.Host)
		dst = AppendInt32(dst, b.Port)
	}
	dst = AppendArrayLen(dst, len(v.Topics))
	for _, t := range v.Topics {
		dst = AppendInt16(dst, t.ErrorCode)
		dst = AppendNullableString(dst, t.ErrorMessage, t.ErrorMessage != "")
		dst = AppendString(dst, t.Name)
		dst = AppendBool(dst, t.Internal)
		dst = AppendArrayLen(dst, len(t.Partitions))
		for _, p := range t.Partitions {
			dst = AppendInt32(dst, p.Partition)
			dst = AppendInt16(dst, p.ErrorCode)
			dst = AppendInt32(dst, p.Leader)
			dst = AppendInt32(dst, p.LeaderEpoch)
			dst = appendInt32s(dst, p.Replicas)
			dst = appendInt32s(dst, p.ISR)
		}
		dst = appendConfigs(dst, t.Configs)
	}
	return dst
}
