package kafka

// DescribeConfigs (key 32), versions 0-4.
//
// Topic configs: every honoured key with its value, from the topic's override
// (DYNAMIC_TOPIC_CONFIG) or else the broker's default, which is STATIC_BROKER_CONFIG when the
// broker was configured with a value of its own for it (log.retention.ms for retention.ms, …)
// and DEFAULT_CONFIG otherwise. Broker configs (resource name "" or this node's id): every
// setting with Kafka's broker config name, STATIC_BROKER_CONFIG when configured at start-up and
// DEFAULT_CONFIG when it is the built-in default, all read-only (none changes while the broker
// runs). With include_synonyms (v1+) each config lists where its value comes from and what it
// falls back to, most preferred first; v3+ gives each its type. Documentation is not sent.

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
)

// configTypes are the types of the configs described (Kafka's types for the same names).
var configTypes = map[string]kmsg.ConfigType{
	cluster.ConfigRetentionMs:         kmsg.ConfigTypeLong,
	cluster.ConfigRetentionBytes:      kmsg.ConfigTypeLong,
	cluster.ConfigSegmentBytes:        kmsg.ConfigTypeInt,
	cluster.ConfigSegmentMs:           kmsg.ConfigTypeLong,
	cluster.ConfigMaxMessageBytes:     kmsg.ConfigTypeInt,
	cluster.ConfigTimestampType:       kmsg.ConfigTypeString,
	cluster.ConfigTimestampDifference: kmsg.ConfigTypeLong,
	cluster.ConfigCleanupPolicy:       kmsg.ConfigTypeList,
	cluster.ConfigMinInsyncReplicas:   kmsg.ConfigTypeInt,
	cluster.ConfigMinCleanableRatio:   kmsg.ConfigTypeDouble,
	cluster.ConfigMinCompactionLagMs:  kmsg.ConfigTypeLong,
	cluster.ConfigMaxCompactionLagMs:  kmsg.ConfigTypeLong,
	cluster.ConfigDeleteRetentionMs:   kmsg.ConfigTypeLong,

	"broker.id":                           kmsg.ConfigTypeInt,
	"node.id":                             kmsg.ConfigTypeInt,
	"log.dirs":                            kmsg.ConfigTypeString,
	"log.retention.ms":                    kmsg.ConfigTypeLong,
	"log.retention.bytes":                 kmsg.ConfigTypeLong,
	"log.segment.bytes":                   kmsg.ConfigTypeInt,
	"log.roll.ms":                         kmsg.ConfigTypeLong,
	"message.max.bytes":                   kmsg.ConfigTypeInt,
	"log.message.timestamp.type":          kmsg.ConfigTypeString,
	"log.cleanup.policy":                  kmsg.ConfigTypeList,
	"num.partitions":                      kmsg.ConfigTypeInt,
	"default.replication.factor":          kmsg.ConfigTypeInt,
	"auto.create.topics.enable":           kmsg.ConfigTypeBoolean,
	"log.retention.check.interval.ms":     kmsg.ConfigTypeLong,
	"log.index.interval.bytes":            kmsg.ConfigTypeInt,
	"producer.id.expiration.ms":           kmsg.ConfigTypeInt,
	"log.flush.policy":                    kmsg.ConfigTypeString,
	"log.cleaner.min.cleanable.ratio":     kmsg.ConfigTypeDouble,
	"log.cleaner.min.compaction.lag.ms":   kmsg.ConfigTypeLong,
	"log.cleaner.max.compaction.lag.ms":   kmsg.ConfigTypeLong,
	"log.cleaner.delete.retention.ms":     kmsg.ConfigTypeLong,
	"log.cleaner.enable":                  kmsg.ConfigTypeBoolean,
	"log.cleaner.threads":                 kmsg.ConfigTypeInt,
	"log.cleaner.dedupe.buffer.size":      kmsg.ConfigTypeLong,
	"log.cleaner.io.max.bytes.per.second": kmsg.ConfigTypeDouble,
	"log.cleaner.backoff.ms":              kmsg.ConfigTypeLong,
}

// configValue is one described value and where it comes from.
type configValue struct {
	name   string
	value  string
	source kmsg.ConfigSource
}

func brokerSource(c cluster.BrokerConfig) kmsg.ConfigSource {
	if c.Default {
		return kmsg.ConfigSourceDefaultConfig
	}
	return kmsg.ConfigSourceStaticBrokerConfig
}

// topicConfigChain is where a topic's value of key comes from, most preferred first: its
// override, then the broker setting it defaults to (or the built-in default when the broker has
// none for it).
func (s *Server) topicConfigChain(c *cluster.TopicConfig, key string) []configValue {
	var chain []configValue
	if v, ok := c.Overrides[key]; ok {
		chain = append(chain, configValue{key, v, kmsg.ConfigSourceDynamicTopicConfig})
	}
	for _, bc := range s.Broker.BrokerConfigs() {
		if bc.TopicConfig == key {
			return append(chain, configValue{bc.Name, bc.Value, brokerSource(bc)})
		}
	}
	for _, kv := range s.Broker.DefaultTopicConfig().Effective() {
		if kv[0] == key {
			return append(chain, configValue{key, kv[1], kmsg.ConfigSourceDefaultConfig})
		}
	}
	return chain
}

// topicConfigSource is the source of a topic's value of key.
func (s *Server) topicConfigSource(c *cluster.TopicConfig, key string) kmsg.ConfigSource {
	if chain := s.topicConfigChain(c, key); len(chain) > 0 {
		return chain[0].source
	}
	return kmsg.ConfigSourceDefaultConfig
}

func (s *Server) describeConfigs(h header, body []byte) (kmsg.Response, error) {
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return nil, err
	}
	resp := kmsg.NewPtrDescribeConfigsResponse()
	for _, res := range req.Resources {
		rr := kmsg.NewDescribeConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
		want := func(name string) bool {
			if res.ConfigNames == nil {
				return true
			}
			for _, n := range res.ConfigNames {
				if n == name {
					return true
				}
			}
			return false
		}
		// add describes one config: its value, and where it comes from (chain[0]) and falls
		// back to.
		add := func(name, value string, chain []configValue, readOnly bool) {
			if !want(name) || len(chain) == 0 {
				return
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name = name
			v := value
			c.Value = &v
			c.ReadOnly = readOnly
			c.IsDefault = chain[0].source == kmsg.ConfigSourceDefaultConfig
			c.Source = chain[0].source
			if h.version < 1 {
				c.Source = kmsg.ConfigSourceUnknown
			}
			if h.version >= 1 && req.IncludeSynonyms {
				for _, link := range chain {
					syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
					sv := link.value
					syn.Name, syn.Value, syn.Source = link.name, &sv, link.source
					c.ConfigSynonyms = append(c.ConfigSynonyms, syn)
				}
			}
			c.ConfigType = configTypes[name]
			rr.Configs = append(rr.Configs, c)
		}
		switch res.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t := s.Broker.Snapshot().Topics[res.ResourceName]
			if t == nil {
				rr.ErrorCode = int16(errcode.UnknownTopicOrPartition)
				msg := "topic does not exist"
				rr.ErrorMessage = &msg
				break
			}
			for _, kv := range t.Config.Effective() {
				chain := s.topicConfigChain(t.Config, kv[0])
				if len(chain) == 0 {
					chain = []configValue{{kv[0], kv[1], kmsg.ConfigSourceDefaultConfig}}
				}
				add(kv[0], kv[1], chain, false)
			}
		case kmsg.ConfigResourceTypeBroker:
			if res.ResourceName != "" && res.ResourceName != strconv.Itoa(int(s.nodeID())) {
				rr.ErrorCode = int16(errcode.InvalidRequest)
				msg := "no such broker: " + res.ResourceName
				rr.ErrorMessage = &msg
				break
			}
			for _, bc := range s.Broker.BrokerConfigs() {
				add(bc.Name, bc.Value, []configValue{{bc.Name, bc.Value, brokerSource(bc)}}, true)
			}
		default:
			rr.ErrorCode = int16(errcode.InvalidRequest)
			msg := "only topic and broker configs can be described"
			rr.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, nil
}
