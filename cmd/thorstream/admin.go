package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/thorstream/thorstream/cluster"
	"github.com/thorstream/thorstream/groups"
	"github.com/thorstream/thorstream/reactor/core"
)

// defaultHTTPAddr is THORSTREAM_HTTP_ADDR's default. When something else already listens there
// (a second broker on the host), the broker starts without it and says so; an address set to
// anything else must be free.
const defaultHTTPAddr = "127.0.0.1:9644"

// admin is the HTTP admin listener: Prometheus metrics, liveness, readiness and Go's profiles,
// served by net/http on its own goroutines, never on the event loops. It listens before the
// partitions are recovered, so /healthz answers and /readyz says why not yet while they are.
// Without an address it serves nothing and its metrics are nil, which counts nothing.
type admin struct {
	logger  *zap.Logger
	servers []*http.Server
	storage *cluster.Metrics
	network *core.Metrics
	// groupLag is thorstream_group_lag, read from the group coordinator at scrape time.
	groupLag *core.GroupLag
	// notReady is why /readyz answers 503; "" once the broker serves.
	notReady atomic.Pointer[string]
	// groupsReady reports whether the group coordinator has loaded every group (nil: not asked).
	groupsReady atomic.Pointer[func() bool]
}

// Readiness reasons.
const (
	notReadyRecovering = "recovering partitions"
	notReadyListeners  = "starting the listeners"
	notReadyStopping   = "shutting down"
	notReadyGroups     = "loading consumer groups"
)

// startAdmin binds THORSTREAM_HTTP_ADDR and THORSTREAM_PPROF_ADDR (the same endpoints on each)
// and serves them. A bind that fails is an error, except at the default address when it is in
// use.
func startAdmin(cfg *Config, logger *zap.Logger) (*admin, error) {
	a := &admin{logger: logger}
	a.setNotReady(notReadyRecovering)
	type bind struct{ env, addr string }
	var binds []bind
	if cfg.HTTPAddr != "" {
		binds = append(binds, bind{"THORSTREAM_HTTP_ADDR", cfg.HTTPAddr})
	}
	if cfg.PprofAddr != "" && cfg.PprofAddr != cfg.HTTPAddr {
		binds = append(binds, bind{"THORSTREAM_PPROF_ADDR", cfg.PprofAddr})
	}
	var lns []net.Listener
	for _, b := range binds {
		ln, err := net.Listen("tcp", b.addr)
		if err != nil {
			if b.addr == defaultHTTPAddr && errors.Is(err, syscall.EADDRINUSE) {
				logger.Warn("the HTTP admin listener's default address is in use: no metrics, health or readiness endpoints; set THORSTREAM_HTTP_ADDR to a free host:port, or to off",
					zap.String("addr", b.addr))
				continue
			}
			for _, l := range lns {
				_ = l.Close()
			}
			return nil, fmt.Errorf("%s: %w", b.env, err)
		}
		lns = append(lns, ln)
	}
	if len(lns) == 0 {
		return a, nil
	}
	a.storage, a.network, a.groupLag = cluster.NewMetrics(), core.NewMetrics(), core.NewGroupLag()
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		a.storage, a.network, a.groupLag)
	handler := a.handler(registry)
	for _, ln := range lns {
		srv := &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          zap.NewStdLog(logger.With(zap.String("listener", "http"))),
		}
		a.servers = append(a.servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Warn("the HTTP admin listener stopped", zap.Stringer("addr", ln.Addr()), zap.Error(err))
			}
		}()
		logger.Info("HTTP admin listener: /metrics, /healthz, /readyz, /debug/pprof/", zap.Stringer("addr", ln.Addr()))
	}
	return a, nil
}

// handler routes the admin endpoints.
func (a *admin) handler(registry *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{
		ErrorLog:      zap.NewStdLog(a.logger.With(zap.String("listener", "http"))),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// readyz answers 200 once the partitions are recovered, every listener accepts and the group
// coordinator has loaded its groups, 503 with the reason before that and while the broker stops.
func (a *admin) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	reason := *a.notReady.Load()
	if ready := a.groupsReady.Load(); reason == "" && ready != nil && !(*ready)() {
		reason = notReadyGroups
	}
	if reason != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: " + reason + "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// waitForGroups makes /readyz wait for ready (the group coordinator's Ready) as well.
func (a *admin) waitForGroups(ready func() bool) { a.groupsReady.Store(&ready) }

// collectGroups reports coord's groups' lag on b's partitions in /metrics.
func (a *admin) collectGroups(coord *groups.Coordinator, b *cluster.Broker) {
	if a.groupLag != nil {
		a.groupLag.Attach(coord, b)
	}
}

// setNotReady makes /readyz answer 503 with reason ("" : ready).
func (a *admin) setNotReady(reason string) { a.notReady.Store(&reason) }

// attach collects the partitions of b, opened and recovered: the listeners start next.
func (a *admin) attach(b *cluster.Broker) {
	if a.storage != nil {
		a.storage.Attach(b)
	}
	a.setNotReady(notReadyListeners)
}

// close stops serving the admin endpoints.
func (a *admin) close() {
	for _, s := range a.servers {
		_ = s.Close()
	}
}
