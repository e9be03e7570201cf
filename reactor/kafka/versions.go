package kafka

import "github.com/twmb/franz-go/pkg/kmsg"

// apiRange is one advertised API and the versions served.
type apiRange struct {
	key      int16
	min, max int16
}

// advertised is the ApiVersions table: every key here is implemented for every version in its
// range, and nothing else is advertised (clients skip what is absent).
//
// Produce is advertised from v0 although v0-v2 are refused: librdkafka up to 2.11 only enables
// gzip, snappy and lz4 when Produce's minimum is 0 (Apache Kafka 4 does the same, KAFKA-18659).
// FindCoordinator is advertised from v0 because librdkafka ties its LZ4 feature to it.
var advertised = []apiRange{
	{kmsg.Produce.Int16(), 0, 12},
	{kmsg.Fetch.Int16(), 4, 12},
	{kmsg.ListOffsets.Int16(), 1, 7},
	{kmsg.Metadata.Int16(), 0, 12},
	{kmsg.OffsetCommit.Int16(), 0, 9},
	{kmsg.OffsetFetch.Int16(), 0, 9},
	{kmsg.FindCoordinator.Int16(), 0, 4},
	{kmsg.JoinGroup.Int16(), 0, 9},
	{kmsg.Heartbeat.Int16(), 0, 4},
	{kmsg.LeaveGroup.Int16(), 0, 5},
	{kmsg.SyncGroup.Int16(), 0, 5},
	{kmsg.DescribeGroups.Int16(), 0, 5},
	{kmsg.ListGroups.Int16(), 0, 5},
	{kmsg.ApiVersions.Int16(), 0, 4},
	{kmsg.CreateTopics.Int16(), 0, 7},
	{kmsg.DeleteTopics.Int16(), 0, 5},
	{kmsg.DeleteRecords.Int16(), 0, 2},
	{kmsg.InitProducerID.Int16(), 0, 4},
	{kmsg.OffsetForLeaderEpoch.Int16(), 0, 4},
	{kmsg.DescribeConfigs.Int16(), 0, 4},
	{kmsg.AlterConfigs.Int16(), 0, 2},
	{kmsg.DescribeLogDirs.Int16(), 0, 4},
	{kmsg.CreatePartitions.Int16(), 0, 3},
	{kmsg.DeleteGroups.Int16(), 0, 2},
	{kmsg.IncrementalAlterConfigs.Int16(), 0, 1},
	{kmsg.OffsetDelete.Int16(), 0, 0},
	{kmsg.DescribeCluster.Int16(), 0, 1},
	{kmsg.DescribeProducers.Int16(), 0, 0},
}

func supportedAPI(key int16) (apiRange, bool) {
	for _, a := range advertised {
		if a.key == key {
			return a, true
		}
	}
	return apiRange{}, false
}

// firstFlexible is the first flexible (KIP-482) version of each served key.
var firstFlexible = map[int16]int16{
	kmsg.Produce.Int16():                 9,
	kmsg.Fetch.Int16():                   12,
	kmsg.ListOffsets.Int16():             6,
	kmsg.Metadata.Int16():                9,
	kmsg.OffsetCommit.Int16():            8,
	kmsg.OffsetFetch.Int16():             6,
	kmsg.FindCoordinator.Int16():         3,
	kmsg.JoinGroup.Int16():               6,
	kmsg.Heartbeat.Int16():               4,
	kmsg.LeaveGroup.Int16():              4,
	kmsg.SyncGroup.Int16():               4,
	kmsg.DescribeGroups.Int16():          5,
	kmsg.ListGroups.Int16():              3,
	kmsg.ApiVersions.Int16():             3,
	kmsg.CreateTopics.Int16():            5,
	kmsg.DeleteTopics.Int16():            4,
	kmsg.DeleteRecords.Int16():           2,
	kmsg.InitProducerID.Int16():          2,
	kmsg.OffsetForLeaderEpoch.Int16():    4,
	kmsg.DescribeConfigs.Int16():         4,
	kmsg.AlterConfigs.Int16():            2,
	kmsg.DescribeLogDirs.Int16():         2,
	kmsg.CreatePartitions.Int16():        2,
	kmsg.DeleteGroups.Int16():            2,
	kmsg.IncrementalAlterConfigs.Int16(): 1,
	kmsg.DescribeCluster.Int16():         0,
	kmsg.DescribeProducers.Int16():       0,
}

// isFlexible reports whether key at version uses flexible encoding. Unknown keys are treated as
// not flexible: they are refused anyway.
func isFlexible(key, version int16) bool {
	v, ok := firstFlexible[key]
	return ok && version >= v
}
