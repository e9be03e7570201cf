package meta

// Placement spreads replicas Kafka's way, round robin over the live nodes sorted by id, with a
// start that depends only on the image: the number of partitions it already holds. Every
// partition created moves the start one node on, so the leaders (first replicas) of many small
// topics spread as evenly as those of one large topic, and every node computes the same
// assignment.

// placementStart is where the next partitions' round robin begins over n live nodes.
func placementStart(img *Image, n int) int {
	return img.PartitionCount() % n
}

// place assigns count partitions of replication factor rf (1 <= rf <= len(nodes)) over nodes,
// the live node ids sorted: partition p's replicas are nodes[(start+p)%n] and the rf-1 nodes
// after it, wrapping. Each partition is led by its first replica, with every replica in sync.
func place(nodes []int32, start, count, rf int) []Partition {
	n := len(nodes)
	parts := make([]Partition, count)
	for p := range parts {
		replicas := make([]int32, rf)
		for r := range replicas {
			replicas[r] = nodes[(start+p+r)%n]
		}
		isr := make([]int32, rf)
		copy(isr, replicas)
		parts[p] = Partition{Replicas: replicas, ISR: isr, Leader: replicas[0]}
	}
	return parts
}
