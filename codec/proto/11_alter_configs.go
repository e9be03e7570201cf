package proto

// AlterConfigs (key 11), version 1: change topics' configuration overrides while they serve.
//
// Request:
//
//	topics [ name string | configs [ op int8 | key string | value string ] ] | validateOnly int8
//
// op is what happens to key (the numbers of Kafka's IncrementalAlterConfigs): ConfigOpSet sets
// it to value; ConfigOpDelete drops the override, so the topic takes the broker's default again
// (value is ignored: send null); ConfigOpAppend and ConfigOpSubtract add the comma-separated
// items of value to, or remove them from, a list config such as cleanup.policy. The operations of
// one topic apply together, or not at all.
//
// Response body: the same as CreateTopics (TopicErrorsResponse):
//
//	topics [ name string | errorCode int16 | errorMessage string ]

// Operations of an AlterConfigs request.
const (
	ConfigOpSet      int8 = 0
	ConfigOpDelete   int8 = 1
	ConfigOpAppend   int8 = 2
	ConfigOpSubtract int8 = 3
)

// AlterConfigsRequest is a decoded AlterConfigs request.
type AlterConfigsRequest struct {
	Topics       []AlterConfigsTopic
	ValidateOnly bool
}

// AlterConfigsTopic is one topic's changes.
type AlterConfigsTopic struct {
	Name    string
	Configs []ConfigOp
}

// ConfigOp is one change of an AlterConfigs request.
type ConfigOp struct {
	Op    int8
	Key   string
	Value string
}

// ReadFrom decodes the request body.
func (v *AlterConfigsRequest) ReadFrom(body []byte) error {
	r := NewReader(body)
	v.Topics = growSlice(v.Topics, max(r.ArrayLen(2+4), 0))
	for i := range v.Topics {
		t := &v.Topics[i]
		t.Name = r.String()
		t.Configs = growSlice(t.Configs, max(r.ArrayLen(1+2+2), 0))
		for j := range t.Configs {
			c := &t.Configs[j]
			c.Op = r.Int8()
			c.Key = r.String()
			c.Value = r.String()
		}
	}
	v.ValidateOnly = r.Bool()
	return r.Complete()
}

// AppendTo encodes the request body.
func (v *AlterConfigsRequest) AppendTo(dst []byte) []byte {
	dst = AppendArrayLen(dst, len(v.Topics))
	for _, t := range v.Topics {
		dst = AppendString(dst, t.Name)
		dst = AppendArrayLen(dst, len(t.Configs))
		for _, c := range t.Configs {
			dst = AppendInt8(dst, c.Op)
			dst = AppendString(dst, c.Key)
			dst = AppendString(dst, c.Value)
		}
	}
	return AppendBool(dst, v.ValidateOnly)
}
