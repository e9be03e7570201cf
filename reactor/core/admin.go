package core

// AlterConfigs (key 11) and CreatePartitions (key 12) of the binary protocol, on the control
// goroutine: both may write meta.json and open partitions.

import (
	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
	"github.com/thorstream/thorstream/codec/proto"
)

// alterConfigs changes each topic's overrides (cluster.Broker.AlterTopicConfig): the operations
// of one topic apply together or not at all, and the partitions take the result before the
// answer.
func (s *Server) alterConfigs(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte) {
	var req proto.AlterConfigsRequest
	if err := req.ReadFrom(body); err != nil {
		decodeError(sess, seq, hdr, err)
		return
	}
	var resp proto.TopicErrorsResponse
	seen := map[string]bool{}
	for _, t := range req.Topics {
		var err error
		if seen[t.Name] {
			err = errcode.New(errcode.InvalidRequest, "topic %q appears twice in the request", t.Name)
		} else {
			ops := make([]cluster.ConfigOp, len(t.Configs))
			for i, c := range t.Configs {
				ops[i] = cluster.ConfigOp{Op: cluster.ConfigOpType(c.Op), Key: c.Key, Value: c.Value}
			}
			err = s.Broker.AlterTopicConfig(t.Name, ops, false, req.ValidateOnly)
		}
		seen[t.Name] = true
		code, msg := codeAndMessage(err)
		resp.Topics = append(resp.Topics, proto.TopicError{Name: t.Name, ErrorCode: code, ErrorMessage: msg})
	}
	sess.Complete(seq, bodyResponse(hdr.CorrelationID, &resp))
}

// createPartitions grows topics to the counts asked for, all under the creation limits
// (cluster.Broker.CreatePartitions).
func (s *Server) createPartitions(sess *Session, seq uint64, hdr proto.RequestHeader, body []byte) {
	var req proto.CreatePartitionsRequest
	if err := req.ReadFrom(body); err != nil {
		decodeError(sess, seq, hdr, err)
		return
	}
	specs := make([]cluster.PartitionsSpec, len(req.Topics))
	for i, t := range req.Topics {
		specs[i] = cluster.PartitionsSpec{Topic: t.Name, Count: t.Count}
	}
	var errs []error
	if len(specs) > 0 {
		errs = s.Broker.CreatePartitions(specs, req.ValidateOnly)
	}
	var resp proto.TopicErrorsResponse
	for i, t := range req.Topics {
		code, msg := codeAndMessage(errs[i])
		resp.Topics = append(resp.Topics, proto.TopicError{Name: t.Name, ErrorCode: code, ErrorMessage: msg})
	}
	sess.Complete(seq, bodyResponse(hdr.CorrelationID, &resp))
}
