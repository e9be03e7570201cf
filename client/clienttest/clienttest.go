// Package clienttest exposes the client's fake broker (client/internal/fakebroker) to tests
// outside the client tree, such as cmd/thorctl's. It is for tests only.
package clienttest

import "github.com/thorstream/thorstream/client/internal/fakebroker"

// Aliases of the fake broker's types; see package fakebroker.
type (
	Cluster      = fakebroker.Cluster
	Options      = fakebroker.Options
	Request      = fakebroker.Request
	Action       = fakebroker.Action
	ControlFunc  = fakebroker.ControlFunc
	ProduceLog   = fakebroker.ProduceLog
	StoredRecord = fakebroker.StoredRecord
)

// NewCluster starts a fake cluster on loopback.
func NewCluster(opts Options) (*Cluster, error) { return fakebroker.New(opts) }
