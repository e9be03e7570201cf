package kafka

// DescribeCluster (key 60), versions 0-1.
//
// The cluster id, the active controller and every live node at its Kafka listener (this node at
// its own advertised address; a node without a Kafka listener is left out). The
// cluster's authorized operations are Kafka's "not asked" value (-2147483648) unless the request
// asks for them; then, since the broker authorizes nothing, every operation the cluster resource
// has. v1 asks for broker endpoints (1) or controller endpoints (2): this node has no separate
// controller listener, so the latter gets UNSUPPORTED_ENDPOINT_TYPE, as a Kafka broker answers.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka values DescribeCluster uses.
const (
	endpointTypeBrokers          = 1
	unsupportedEndpointType      = 115 // UNSUPPORTED_ENDPOINT_TYPE
	authorizedOperationsNotAsked = -2147483648
	// clusterOperations is the bit field of the ACL operations on the cluster resource (Kafka's
	// codes: ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11,
	// IDEMPOTENT_WRITE 12, CREATE 5), all allowed without an authorizer.
	clusterOperations = 1<<5 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12
)

func (s *Server) describeCluster(h header, body []byte) (kmsg.Response, error) {
	req := kmsg.NewPtrDescribeClusterRequest()
	req.Version = h.version
	if err := req.ReadFrom(body); err != nil {
		return nil, err
	}
	resp := kmsg.NewPtrDescribeClusterResponse()
	resp.EndpointType = req.EndpointType
	if h.version >= 1 && req.EndpointType != endpointTypeBrokers {
		resp.ErrorCode = unsupportedEndpointType
		msg := "this node serves broker endpoints only (endpoint type 1)"
		resp.ErrorMessage = &msg
		resp.ControllerID = -1
		return resp, nil
	}
	resp.ClusterID = s.Broker.ClusterID()
	resp.ControllerID = s.Broker.ControllerID()
	for _, n := range s.Brokers(s.Broker.Snapshot()) {
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID, b.Host, b.Port = n.ID, n.Host, n.Port
		resp.Brokers = append(resp.Brokers, b)
	}
	resp.ClusterAuthorizedOperations = authorizedOperationsNotAsked
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterOperations
	}
	return resp, nil
}
