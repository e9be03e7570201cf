package tests

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDataDirLockOneBrokerPerDirectory: a second broker on a data directory in use exits with
// status 2 and a message naming the directory and the pid holding it, without touching the
// first, which keeps serving; once the first stops, a new broker starts on the directory.
func TestDataDirLockOneBrokerPerDirectory(t *testing.T) {
	dir := t.TempDir()
	first := startBroker(t, dir)
	c := newClient(t, first.addr)
	if err := c.CreateTopic(ctx(t, 30*time.Second), "kept", 1, 1, nil); err != nil {
		t.Fatal(err)
	}

	runCtx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	second := exec.CommandContext(runCtx, filepath.Join(binDir, "thorstream"))
	second.Env = append(cleanEnv(), "THORSTREAM_ADDR="+freeAddr(t), "THORSTREAM_DATA_DIR="+dir, "THORSTREAM_EVENT_LOOPS=2")
	var out bytes.Buffer
	second.Stdout, second.Stderr = &out, &out
	err := second.Run()
	exitErr, ok := err.(*exec.ExitError)
	if !ok || exitErr.ExitCode() != 2 {
		t.Fatalf("second broker: %v, want exit status 2; output:\n%s", err, out.String())
	}
	msg := out.String()
	if !strings.Contains(msg, dir) || !strings.Contains(msg, fmt.Sprintf("pid %d", first.cmd.Process.Pid)) {
		t.Fatalf("message names neither the directory %s nor the pid %d:\n%s", dir, first.cmd.Process.Pid, msg)
	}

	// The first broker is untouched and serves.
	if err := c.CreateTopic(ctx(t, 30*time.Second), "after", 1, 1, nil); err != nil {
		t.Fatalf("first broker after the refused start: %v", err)
	}
	first.stop()

	third := startBroker(t, dir)
	c3 := newClient(t, third.addr)
	topics, err := c3.ListTopics(ctx(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tp := range topics {
		names[tp.Name] = true
	}
	if !names["kept"] || !names["after"] {
		t.Fatalf("topics after the restart: %v", topics)
	}
}
