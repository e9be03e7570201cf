package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thorstream/thorstream/codec/batch"
)

// largeBatch is a one-record batch at base whose value has valueBytes bytes.
func largeBatch(base int64, valueBytes int) []byte {
	var b batch.Builder
	b.Reset()
	v := make([]byte, valueBytes)
	for i := range v {
		v[i] = byte(i % 251)
	}
	b.Append([]byte("k"), v, 1700000000000, nil)
	raw := append([]byte(nil), b.Finish()...)
	batch.SetBaseOffset(raw, base)
	return raw
}

// TestSegmentVerifyLargeBatches: segments holding batches over 64 KiB and over 1 MiB, as Kafka
// clients send them, are healthy for verify and dump; a file of bytes recovery cut off is dumped
// batch by batch around its damage.
func TestSegmentVerifyLargeBatches(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t-0")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var data []byte
	for i, size := range []int{100, 64<<10 + 1, 1 << 20, 70_000, 10} {
		data = append(data, largeBatch(int64(i), size)...)
	}
	path := filepath.Join(dir, "00000000000000000000.log")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := thorctl(t, "", nil, "segment", "verify", path)
	if r.code != 0 || r.stdout != fmt.Sprintf("%s: ok, 5 batches, %d bytes, next offset 5\n", path, len(data)) {
		t.Fatalf("verify: %+v", r)
	}
	r = thorctl(t, "", nil, "segment", "dump", path)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); r.code != 0 || len(lines) != 5 {
		t.Fatalf("dump: %+v", r)
	}

	// A torn head, then two whole batches: salvaged.
	dropped := filepath.Join(dir, "00000000000000000000.log.dropped-1700000000000")
	cut := append(append([]byte(nil), data[50:]...), 0, 0, 0)
	if err := os.WriteFile(dropped, cut, 0o644); err != nil {
		t.Fatal(err)
	}
	r = thorctl(t, "", nil, "segment", "dump", dropped)
	if r.code != 0 || strings.Count(r.stdout, "baseOffset=") != 4 || !strings.Contains(r.stdout, "BAD") ||
		!strings.Contains(r.stdout, "4 valid batches in bytes cut off by recovery") {
		t.Fatalf("dump of cut bytes: %+v", r)
	}
	// verify of the directory looks at segments only.
	r = thorctl(t, "", nil, "segment", "verify", dir)
	if r.code != 0 || strings.Contains(r.stdout, "dropped") {
		t.Fatalf("verify dir: %+v", r)
	}
}
