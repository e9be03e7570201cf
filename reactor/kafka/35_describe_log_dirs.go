package kafka

// DescribeLogDirs (key 35), versions 0-4.
//
// One log directory, the data directory, holding every partition: for each partition asked for
// (a null topic list: every partition), its size on disk, offset lag 0 (there is no future
// replica catching up) and is-future false. A partition that does not exist, or that another node
// of the cluster hosts, is left out, as Kafka leaves out what a directory does not hold. v4 adds the filesystem's total and usable bytes
// (statfs), -1 when they are unknown.

import (
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/cluster"
)

func (s *Server) describeLogDirs(h header, body []byte) (kmsg.Response, error) {
	req := kmsg.NewPtrDescribeLogDirsRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return nil, err
	}
	snap := s.Broker.Snapshot()
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = s.Broker.DataDir()
	if abs, err := filepath.Abs(dir.Dir); err == nil {
		dir.Dir = abs // as Kafka names its log directories
	}
	dir.TotalBytes, dir.UsableBytes = s.Broker.DiskSpace()
	addTopic := func(t *cluster.Topic, partitions []int32) {
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic = t.Name
		add := func(p int32) {
			if p < 0 || int(p) >= len(t.Replicas) || t.Replicas[p] == nil {
				return // not in this directory: not a partition, or one another node hosts
			}
			dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			dp.Partition = p
			dp.Size = t.Replicas[p].Size()
			dt.Partitions = append(dt.Partitions, dp)
		}
		if partitions == nil {
			for p := range t.Replicas {
				add(int32(p))
			}
		} else {
			for _, p := range partitions {
				add(p)
			}
		}
		if len(dt.Partitions) > 0 {
			dir.Topics = append(dir.Topics, dt)
		}
	}
	if req.Topics == nil {
		for _, name := range snap.Names {
			addTopic(snap.Topics[name], nil)
		}
	} else {
		for _, rt := range req.Topics {
			if t := snap.Topics[rt.Topic]; t != nil {
				addTopic(t, rt.Partitions)
			}
		}
	}
	resp := kmsg.NewPtrDescribeLogDirsResponse()
	resp.Dirs = []kmsg.DescribeLogDirsResponseDir{dir}
	return resp, nil
}
