package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSegmentVerifyCompacted: a segment the log cleaner rewrote skips offsets; verify and dump
// accept that when the partition's cleaner checkpoint says the segment was cleaned, and still
// report it for a segment above the first dirty offset.
func TestSegmentVerifyCompacted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t-0")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var data []byte
	for _, base := range []int64{0, 3, 4, 9} { // gaps, as cleaning leaves them
		data = append(data, largeBatch(base, 10)...)
	}
	path := filepath.Join(dir, "00000000000000000000.log")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := thorctl(t, "", nil, "segment", "verify", path)
	if r.code == 0 {
		t.Fatalf("verify of a gapped segment without a cleaner checkpoint passed: %+v", r)
	}
	if err := os.WriteFile(filepath.Join(dir, "cleaner-offset-checkpoint"), []byte("0\n1\n0 10 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = thorctl(t, "", nil, "segment", "verify", path)
	if r.code != 0 || !strings.Contains(r.stdout, "ok, 4 batches") || !strings.Contains(r.stdout, "next offset 10") {
		t.Fatalf("verify: %+v", r)
	}
	r = thorctl(t, "", nil, "segment", "dump", "--records", path)
	if r.code != 0 || strings.Count(r.stdout, "baseOffset=") != 4 {
		t.Fatalf("dump: %+v", r)
	}
}
