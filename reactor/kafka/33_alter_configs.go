package kafka

// AlterConfigs (key 33), versions 0-2.
//
// Topic configs change while the topic serves (cluster.Broker.AlterTopicConfig). AlterConfigs
// states the whole set of a topic's overrides: a key left out goes back to the broker's default
// (IncrementalAlterConfigs, 44_incremental_alter_configs.go, changes keys one by one). The
// request's validate_only is honoured; the result is checked as CreateTopics checks configs
// (INVALID_CONFIG naming the key), written to meta.json and taken by every partition before the
// answer. A resource named twice, a key named twice or a missing value give INVALID_REQUEST.
//
// Broker configs (resource type 4, name "" or this node's id) are all set at start-up: every key
// is refused with INVALID_REQUEST saying which setting to change and restart.

import (
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
)

// brokerSettingEnv names the environment variable behind each broker config that has one.
var brokerSettingEnv = map[string]string{
	"broker.id":                 "THORSTREAM_NODE_ID",
	"node.id":                   "THORSTREAM_NODE_ID",
	"log.dirs":                  "THORSTREAM_DATA_DIR",
	"log.retention.ms":          "THORSTREAM_RETENTION_MS",
	"log.retention.bytes":       "THORSTREAM_RETENTION_BYTES",
	"log.segment.bytes":         "THORSTREAM_SEGMENT_BYTES",
	"log.roll.ms":               "THORSTREAM_SEGMENT_MS",
	"num.partitions":            "THORSTREAM_DEFAULT_PARTITIONS",
	"auto.create.topics.enable": "THORSTREAM_AUTO_CREATE_TOPICS",
	"producer.id.expiration.ms": "THORSTREAM_PRODUCER_ID_EXPIRATION_MS",
	"log.flush.policy":          "THORSTREAM_FSYNC",

	"log.cleanup.policy":                  "THORSTREAM_LOG_CLEANUP_POLICY",
	"log.cleaner.enable":                  "THORSTREAM_LOG_CLEANER_ENABLE",
	"log.cleaner.threads":                 "THORSTREAM_LOG_CLEANER_THREADS",
	"log.cleaner.dedupe.buffer.size":      "THORSTREAM_LOG_CLEANER_DEDUPE_BUFFER_BYTES",
	"log.cleaner.io.max.bytes.per.second": "THORSTREAM_LOG_CLEANER_IO_MAX_BYTES_PER_SECOND",
	"log.cleaner.backoff.ms":              "THORSTREAM_LOG_CLEANER_BACKOFF_MS",
	"log.cleaner.min.cleanable.ratio":     "THORSTREAM_LOG_CLEANER_MIN_CLEANABLE_RATIO",
	"log.cleaner.delete.retention.ms":     "THORSTREAM_LOG_CLEANER_DELETE_RETENTION_MS",
	"log.cleaner.min.compaction.lag.ms":   "THORSTREAM_LOG_CLEANER_MIN_COMPACTION_LAG_MS",
	"log.cleaner.max.compaction.lag.ms":   "THORSTREAM_LOG_CLEANER_MAX_COMPACTION_LAG_MS",
}

// resourceKey identifies a config resource in a request.
type resourceKey struct {
	typ  kmsg.ConfigResourceType
	name string
}

// duplicateResources marks the resources a request names more than once.
func duplicateResources(keys []resourceKey) map[resourceKey]bool {
	count := map[resourceKey]int{}
	for _, k := range keys {
		count[k]++
	}
	dup := map[resourceKey]bool{}
	for k, n := range count {
		if n > 1 {
			dup[k] = true
		}
	}
	return dup
}

// alterResource applies ops to one resource of an AlterConfigs or IncrementalAlterConfigs
// request (replace: AlterConfigs' whole-set semantics).
func (s *Server) alterResource(typ kmsg.ConfigResourceType, name string, ops []cluster.ConfigOp, replace, validateOnly bool) error {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		return s.Broker.AlterTopicConfig(name, ops, replace, validateOnly)
	case kmsg.ConfigResourceTypeBroker:
		if name != "" && name != strconv.Itoa(int(s.nodeID())) {
			return errcode.New(errcode.InvalidRequest, "no such broker: %s", name)
		}
		for _, op := range ops {
			if err := s.staticBrokerConfig(op.Key); err != nil {
				return err
			}
		}
		return nil
	default:
		return errcode.New(errcode.InvalidRequest, "only topic and broker configs can be altered, not resource type %d", typ)
	}
}

// staticBrokerConfig is the error for an attempt to change a broker config while the broker runs.
func (s *Server) staticBrokerConfig(key string) error {
	known := false
	topicKey := ""
	for _, c := range s.Broker.BrokerConfigs() {
		if c.Name == key {
			known, topicKey = true, c.TopicConfig
		}
	}
	if !known {
		return errcode.New(errcode.InvalidRequest, "unknown broker config %s", key)
	}
	how := "it is fixed"
	if env := brokerSettingEnv[key]; env != "" {
		how = fmt.Sprintf("set %s and restart", env)
	}
	if topicKey != "" {
		how += fmt.Sprintf("; a topic's own %s can be altered at any time", topicKey)
	}
	return errcode.New(errcode.InvalidRequest, "broker config %s cannot change while the broker runs: %s", key, how)
}

func (s *Server) alterConfigs(h header, body []byte) (kmsg.Response, error) {
	req := kmsg.NewPtrAlterConfigsRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return nil, err
	}
	keys := make([]resourceKey, len(req.Resources))
	for i, r := range req.Resources {
		keys[i] = resourceKey{r.ResourceType, r.ResourceName}
	}
	dup := duplicateResources(keys)
	resp := kmsg.NewPtrAlterConfigsResponse()
	for i, r := range req.Resources {
		var err error
		ops := make([]cluster.ConfigOp, 0, len(r.Configs))
		for _, c := range r.Configs {
			if c.Value == nil && err == nil {
				err = errcode.New(errcode.InvalidRequest, "config %s has no value", c.Name)
			}
			ops = append(ops, cluster.ConfigOp{Op: cluster.ConfigSet, Key: c.Name, Value: deref(c.Value)})
		}
		switch {
		case dup[keys[i]]:
			err = errcode.New(errcode.InvalidRequest, "resource %q appears more than once in the request", r.ResourceName)
		case err == nil:
			err = s.alterResource(r.ResourceType, r.ResourceName, ops, true, req.ValidateOnly)
		}
		rr := kmsg.NewAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		rr.ErrorCode, rr.ErrorMessage = codeOf(err)
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
