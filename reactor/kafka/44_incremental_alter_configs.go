package kafka

// IncrementalAlterConfigs (key 44), versions 0-1.
//
// Sets, deletes (back to the broker's default), appends to or subtracts from list configs
// (cleanup.policy) of topics while they serve, as AlterConfigs does (33_alter_configs.go) but key
// by key; validate_only is honoured. APPEND adds the items not in the list yet, SUBTRACT removes
// those in it, both starting from the topic's current value (its override, else the default).
// APPEND and SUBTRACT on a config that is not a list, a key named twice, or a missing value for
// SET, APPEND or SUBTRACT give INVALID_REQUEST. Broker configs are refused as AlterConfigs
// refuses them.

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/codec/errcode"
)

func (s *Server) incrementalAlterConfigs(h header, body []byte) (kmsg.Response, error) {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return nil, err
	}
	keys := make([]resourceKey, len(req.Resources))
	for i, r := range req.Resources {
		keys[i] = resourceKey{r.ResourceType, r.ResourceName}
	}
	dup := duplicateResources(keys)
	resp := kmsg.NewPtrIncrementalAlterConfigsResponse()
	for i, r := range req.Resources {
		var err error
		ops := make([]cluster.ConfigOp, 0, len(r.Configs))
		for _, c := range r.Configs {
			op := cluster.ConfigOpType(c.Op)
			if c.Value == nil && op != cluster.ConfigDelete && err == nil {
				err = errcode.New(errcode.InvalidRequest, "config %s: %s needs a value", c.Name, opName(op))
			}
			ops = append(ops, cluster.ConfigOp{Op: op, Key: c.Name, Value: deref(c.Value)})
		}
		switch {
		case dup[keys[i]]:
			err = errcode.New(errcode.InvalidRequest, "resource %q appears more than once in the request", r.ResourceName)
		case err == nil:
			err = s.alterResource(r.ResourceType, r.ResourceName, ops, false, req.ValidateOnly)
		}
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		rr.ErrorCode, rr.ErrorMessage = codeOf(err)
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, nil
}

func opName(op cluster.ConfigOpType) string {
	switch op {
	case cluster.ConfigSet:
		return "SET"
	case cluster.ConfigDelete:
		return "DELETE"
	case cluster.ConfigAppend:
		return "APPEND"
	case cluster.ConfigSubtract:
		return "SUBTRACT"
	}
	return "operation " + strconv.Itoa(int(op))
}
