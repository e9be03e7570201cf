package cluster

// Watchers of the metadata: code beside the replicas (the group coordinator) that follows what
// this node leads as the cluster's metadata changes.

// OnMetadata registers fn to run with every snapshot a node of a cluster publishes: once at
// once, with the current snapshot, then after each applied image, in order, on the reconciling
// goroutine. fn runs under the admin lock: it must not block long and must not call back into the
// Broker's admin methods (it may read the snapshot and Route). On a single node, whose
// partitions never move, fn runs once, with the current snapshot.
func (b *Broker) OnMetadata(fn func(*Snapshot)) {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if b.cs != nil {
		b.watchers = append(b.watchers, fn)
	}
	fn(b.snapshot.Load())
}

// publishedMetadata runs the watchers with the snapshot just published. Called with adminMu
// held.
func (b *Broker) publishedMetadata(s *Snapshot) {
	for _, fn := range b.watchers {
		fn(s)
	}
}
