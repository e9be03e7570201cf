package cluster

import (
	"context"

	"github.com/thorstream/thorstream/cluster/meta"
)

// MetadataStore is a cluster's metadata: the controller's replicated state machine. The Broker
// proposes every change of topics and producer-id blocks to it and opens, closes and configures
// the replicas this node hosts as the applied images say.
type MetadataStore interface {
	// Image is the latest applied metadata.
	Image() *meta.Image
	// Changed is signalled (capacity one, never closed) after every applied image.
	Changed() <-chan struct{}
	// Propose has cmd applied by the cluster and returns its result and log index once this
	// node has applied it. Retriable failures (no controller known, a timeout) are errcode
	// errors with a retriable code.
	Propose(ctx context.Context, cmd meta.Command) (meta.Result, uint64, error)
	// ControllerID is the active controller's node id; -1 while none is known.
	ControllerID() int32
	// Close stops the store (the Broker calls it after closing its replicas).
	Close() error
}
