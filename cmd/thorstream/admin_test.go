package main

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

func TestLoadConfigHTTPAddr(t *testing.T) {
	load := func(env map[string]string, args ...string) (*Config, error) {
		return LoadConfig(args, func(k string) string { return env[k] }, io.Discard)
	}
	f := func(env map[string]string, args []string, wantHTTP, wantPprof string) {
		t.Helper()
		c, err := load(env, args...)
		if err != nil {
			t.Fatalf("%v %v: %v", env, args, err)
		}
		if c.HTTPAddr != wantHTTP || c.PprofAddr != wantPprof {
			t.Errorf("%v %v: http %q pprof %q, want %q %q", env, args, c.HTTPAddr, c.PprofAddr, wantHTTP, wantPprof)
		}
	}
	f(nil, nil, "127.0.0.1:9644", "")
	f(map[string]string{"THORSTREAM_HTTP_ADDR": "0.0.0.0:9700"}, nil, "0.0.0.0:9700", "")
	f(map[string]string{"THORSTREAM_HTTP_ADDR": "off"}, nil, "", "")
	f(map[string]string{"THORSTREAM_HTTP_ADDR": "0.0.0.0:9700"}, []string{"--http-addr="}, "", "")
	f(map[string]string{"THORSTREAM_PPROF_ADDR": "127.0.0.1:6060"}, nil, "127.0.0.1:9644", "127.0.0.1:6060")
	_, err := load(map[string]string{"THORSTREAM_HTTP_ADDR": "localhost"})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Env != "THORSTREAM_HTTP_ADDR" {
		t.Errorf("a bad address: %v, want a ConfigError for THORSTREAM_HTTP_ADDR", err)
	}
}

func TestAdminEndpoints(t *testing.T) {
	a := &admin{logger: zap.NewNop()}
	a.setNotReady(notReadyRecovering)
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "thorstream_test_total", Help: "A test counter."}))
	h := a.handler(reg)
	get := func(method, path string) (int, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec.Code, rec.Body.String()
	}
	f := func(method, path string, wantCode int, wantBody string) {
		t.Helper()
		if code, body := get(method, path); code != wantCode || !strings.Contains(body, wantBody) {
			t.Errorf("%s %s: %d %q, want %d and %q", method, path, code, body, wantCode, wantBody)
		}
	}
	f("GET", "/readyz", http.StatusServiceUnavailable, "not ready: recovering partitions")
	f("GET", "/healthz", http.StatusOK, "ok")
	f("GET", "/metrics", http.StatusOK, "thorstream_test_total 0")
	f("GET", "/debug/pprof/", http.StatusOK, "goroutine")
	f("GET", "/debug/pprof/cmdline", http.StatusOK, "")
	f("POST", "/healthz", http.StatusMethodNotAllowed, "")
	a.setNotReady(notReadyListeners)
	f("GET", "/readyz", http.StatusServiceUnavailable, "not ready: starting the listeners")
	a.setNotReady("")
	f("GET", "/readyz", http.StatusOK, "ready")
	a.setNotReady(notReadyStopping)
	f("GET", "/readyz", http.StatusServiceUnavailable, "not ready: shutting down")
}

func TestStartAdminBinds(t *testing.T) {
	// An address taken by someone else: the broker must not start without what was asked for.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if _, err := startAdmin(&Config{HTTPAddr: taken.Addr().String()}, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "THORSTREAM_HTTP_ADDR") {
		t.Errorf("an address in use: %v, want an error naming THORSTREAM_HTTP_ADDR", err)
	}
	if _, err := startAdmin(&Config{PprofAddr: taken.Addr().String()}, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "THORSTREAM_PPROF_ADDR") {
		t.Errorf("an address in use: %v, want an error naming THORSTREAM_PPROF_ADDR", err)
	}

	// The default address in use (held here, or by another broker on this machine): a warning.
	if l, err := net.Listen("tcp", defaultHTTPAddr); err == nil {
		defer l.Close()
	}
	a, err := startAdmin(&Config{HTTPAddr: defaultHTTPAddr}, zap.NewNop())
	if err != nil {
		t.Fatalf("the default address in use: %v, want a warning only", err)
	}
	a.close()
	if a.storage != nil || a.network != nil {
		t.Error("metrics are on with no admin listener")
	}

	// Off: nothing listens, nothing is counted.
	a, err = startAdmin(&Config{}, zap.NewNop())
	if err != nil || a.storage != nil || a.network != nil || len(a.servers) != 0 {
		t.Errorf("off: %v %+v", err, a)
	}

	// Both addresses the same: served once.
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	a, err = startAdmin(&Config{HTTPAddr: addr, PprofAddr: addr}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if len(a.servers) != 1 || a.storage == nil || a.network == nil {
		t.Fatalf("one address twice: %d servers, metrics %v %v", len(a.servers), a.storage, a.network)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %d", resp.StatusCode)
	}
}
