package main

import (
	"github.com/thorstream/thorstream/codec/proto"
	"github.com/thorstream/thorstream/reactor"
)

// brokerListeners are the listeners BrokerStatus reports: the binary protocol's, and the Kafka
// protocol's when it is enabled, each with its bound and advertised address.
func brokerListeners(cfg *Config, advertised string) []proto.BrokerListener {
	ls := []proto.BrokerListener{{Name: "binary", Address: cfg.Addr, Advertised: advertised}}
	if cfg.KafkaAddr != "" {
		kafkaAdvertised := cfg.KafkaAdvertised
		if kafkaAdvertised == "" {
			// The same derivation serve makes (it fails start-up when this fails).
			kafkaAdvertised, _ = reactor.AdvertisedAddr(cfg.KafkaAddr)
		}
		ls = append(ls, proto.BrokerListener{Name: "kafka", Address: cfg.KafkaAddr, Advertised: kafkaAdvertised})
	}
	return ls
}
