package main

import (
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/thorstream/thorstream/groups"
)

func TestLoadConfigGroups(t *testing.T) {
	c, err := LoadConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	g := groupConfig(c)
	d := groups.DefaultConfig()
	if g.InitialRebalanceDelay != 3*time.Second || g.MinSessionTimeout != 6*time.Second || g.MaxSessionTimeout != 30*time.Minute ||
		g.MaxGroupSize != math.MaxInt32 || g.OffsetsRetention != 7*24*time.Hour || g.NewMemberJoinTimeout != d.NewMemberJoinTimeout {
		t.Errorf("defaults: %+v", g)
	}
	env := map[string]string{
		"THORSTREAM_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
		"THORSTREAM_GROUP_MIN_SESSION_TIMEOUT_MS":     "1000",
		"THORSTREAM_GROUP_MAX_SESSION_TIMEOUT_MS":     "60000",
		"THORSTREAM_GROUP_MAX_SIZE":                   "10",
		"THORSTREAM_OFFSETS_RETENTION_MINUTES":        "60",
	}
	c, err = LoadConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	g = groupConfig(c)
	if g.InitialRebalanceDelay != 0 || g.MinSessionTimeout != time.Second || g.MaxSessionTimeout != time.Minute ||
		g.MaxGroupSize != 10 || g.OffsetsRetention != time.Hour {
		t.Errorf("set: %+v", g)
	}
	bad := func(key, value, wantEnv string) {
		t.Helper()
		_, err := LoadConfig(nil, func(k string) string {
			if k == key {
				return value
			}
			return ""
		}, io.Discard)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Env != wantEnv {
			t.Errorf("%s=%s: %v, want a ConfigError for %s", key, value, err, wantEnv)
		}
	}
	bad("THORSTREAM_GROUP_INITIAL_REBALANCE_DELAY_MS", "-1", "THORSTREAM_GROUP_INITIAL_REBALANCE_DELAY_MS")
	bad("THORSTREAM_GROUP_MAX_SESSION_TIMEOUT_MS", "0", "THORSTREAM_GROUP_MAX_SESSION_TIMEOUT_MS")
	bad("THORSTREAM_GROUP_MAX_SESSION_TIMEOUT_MS", "99999999999999999", "THORSTREAM_GROUP_MAX_SESSION_TIMEOUT_MS")
	bad("THORSTREAM_GROUP_MIN_SESSION_TIMEOUT_MS", "2000000", "THORSTREAM_GROUP_MIN_SESSION_TIMEOUT_MS") // above the max
	bad("THORSTREAM_GROUP_MAX_SIZE", "0", "THORSTREAM_GROUP_MAX_SIZE")
	bad("THORSTREAM_GROUP_MAX_SIZE", "3000000000", "THORSTREAM_GROUP_MAX_SIZE")
	bad("THORSTREAM_OFFSETS_RETENTION_MINUTES", "0", "THORSTREAM_OFFSETS_RETENTION_MINUTES")
}

// TestReadyzWaitsForGroups: /readyz is not ready while the group coordinator loads.
func TestReadyzWaitsForGroups(t *testing.T) {
	a := &admin{logger: zap.NewNop()}
	a.setNotReady("")
	loaded := false
	a.waitForGroups(func() bool { return loaded })
	h := a.handler(prometheus.NewRegistry())
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, notReadyGroups) {
		t.Errorf("while loading: %d %q", code, body)
	}
	loaded = true
	if code, body := get(); code != http.StatusOK {
		t.Errorf("loaded: %d %q", code, body)
	}
	a.setNotReady(notReadyStopping)
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, notReadyStopping) {
		t.Errorf("stopping: %d %q", code, body)
	}
}
