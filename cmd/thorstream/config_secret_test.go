package main

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestLoadConfigClusterSecret(t *testing.T) {
	load := func(args []string, env map[string]string) (*Config, error) {
		return LoadConfig(args, func(k string) string { return env[k] }, io.Discard)
	}
	c, err := load(nil, nil)
	if err != nil || c.ClusterSecret != "" {
		t.Fatalf("default: %q, %v; want none", c.ClusterSecret, err)
	}
	secret := "0123456789abcdef0123456789abcdef"
	if c, err = load(nil, map[string]string{"THORSTREAM_CLUSTER_SECRET": secret}); err != nil || c.ClusterSecret != secret {
		t.Fatalf("from the environment: %q, %v", c.ClusterSecret, err)
	}
	if c, err = load([]string{"--cluster-secret", "a flag secret of 24 bytes"}, map[string]string{"THORSTREAM_CLUSTER_SECRET": secret}); err != nil ||
		c.ClusterSecret != "a flag secret of 24 bytes" {
		t.Fatalf("the flag over the environment: %q, %v", c.ClusterSecret, err)
	}
	_, err = load(nil, map[string]string{"THORSTREAM_CLUSTER_SECRET": "hunter2"})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Env != "THORSTREAM_CLUSTER_SECRET" || !strings.Contains(err.Error(), "too short") {
		t.Fatalf("a 7-byte secret: %v", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the error repeats the secret: %v", err)
	}
}
