package meta

import "testing"

func TestRegisterNamesAnUnnamedClusterOnly(t *testing.T) {
	img, _ := Apply(Empty(), 1, Command{Register: &RegisterNode{ID: 0, ClusterID: "first"}})
	if img.ClusterID != "first" {
		t.Fatalf("cluster id %q after the first registration", img.ClusterID)
	}
	img, _ = Apply(img, 2, Command{Register: &RegisterNode{ID: 1, ClusterID: "second"}})
	img, _ = Apply(img, 3, Command{Init: &InitCluster{ClusterID: "third"}})
	if img.ClusterID != "first" {
		t.Fatalf("cluster id %q: a named cluster was renamed", img.ClusterID)
	}
	before := Empty()
	Apply(before, 1, Command{Register: &RegisterNode{ID: 0, ClusterID: "x"}})
	if before.ClusterID != "" {
		t.Fatal("Apply changed its input image")
	}
}
