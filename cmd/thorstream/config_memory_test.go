package main

import (
	"errors"
	"io"
	"testing"
)

func TestLoadConfigMemoryBudget(t *testing.T) {
	load := func(env map[string]string, args ...string) (*Config, error) {
		return LoadConfig(args, func(k string) string { return env[k] }, io.Discard)
	}
	c, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxInflightBytes != 512<<20 || c.FrameReadTimeoutMs != 30000 || c.ConnectionsMaxIdleMs != 600000 {
		t.Errorf("defaults: budget %d, frame timeout %d ms, idle %d ms", c.MaxInflightBytes, c.FrameReadTimeoutMs, c.ConnectionsMaxIdleMs)
	}
	c, err = load(map[string]string{"THORSTREAM_MAX_INFLIGHT_BYTES": "128MiB", "THORSTREAM_FRAME_READ_TIMEOUT_MS": "2500",
		"THORSTREAM_CONNECTIONS_MAX_IDLE_MS": "-1"}, "--frame-read-timeout-ms", "4000")
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxInflightBytes != 128<<20 || c.FrameReadTimeoutMs != 4000 || c.ConnectionsMaxIdleMs != -1 {
		t.Errorf("set: budget %d, frame timeout %d ms, idle %d ms", c.MaxInflightBytes, c.FrameReadTimeoutMs, c.ConnectionsMaxIdleMs)
	}
	for _, tc := range []struct {
		env  map[string]string
		name string
	}{
		{map[string]string{"THORSTREAM_MAX_INFLIGHT_BYTES": "32MiB"}, "THORSTREAM_MAX_INFLIGHT_BYTES"}, // below the 64 MiB frame limit
		{map[string]string{"THORSTREAM_MAX_INFLIGHT_BYTES": "100"}, "THORSTREAM_MAX_INFLIGHT_BYTES"},
		{map[string]string{"THORSTREAM_FRAME_READ_TIMEOUT_MS": "0"}, "THORSTREAM_FRAME_READ_TIMEOUT_MS"},
		{map[string]string{"THORSTREAM_FRAME_READ_TIMEOUT_MS": "-1"}, "THORSTREAM_FRAME_READ_TIMEOUT_MS"},
		{map[string]string{"THORSTREAM_CONNECTIONS_MAX_IDLE_MS": "soon"}, "THORSTREAM_CONNECTIONS_MAX_IDLE_MS"},
	} {
		_, err := load(tc.env)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Env != tc.name {
			t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.name)
		}
	}
	// A smaller frame limit allows a smaller budget.
	if _, err := load(map[string]string{"THORSTREAM_MAX_INFLIGHT_BYTES": "16MiB", "THORSTREAM_MAX_FRAME_BYTES": "8MiB"}); err != nil {
		t.Errorf("16 MiB budget with 8 MiB frames: %v", err)
	}
}
