// Package reactors is the role that answers the tasks Twilio ends without
// serving their customer (DESIGN §7): the engine (reactors/engine) fed by
// the event store, the decisions (reactors/decide) under a policy
// (reactors/policy), the Twilio calls (reactors/act), and a small HTTP
// server for /metrics, /healthz and /readyz.
package reactors

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/flexstream/flexstream/internal/config"
	"github.com/flexstream/flexstream/reactors/engine"
)

// DefaultAddr is where /metrics, /healthz and /readyz are served.
const DefaultAddr = "127.0.0.1:8082"

// Config configures the role.
type Config struct {
	Engine engine.Config // its Registry is set here
	Addr   string        // "" serves no HTTP
	Logger *zap.Logger
}

// Reactors is the running role.
type Reactors struct {
	eng    *engine.Engine
	srv    *http.Server
	ln     net.Listener
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
	closed sync.Once
}

// Start starts the engine and the HTTP server; Close stops them.
func Start(ctx context.Context, cfg Config) (*Reactors, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Engine.Registry = reg
	if cfg.Engine.Logger == nil {
		cfg.Engine.Logger = cfg.Logger.Named("reactors")
	}
	eng, err := engine.New(cfg.Engine)
	if err != nil {
		return nil, err
	}
	r := &Reactors{eng: eng}
	if cfg.Addr != "" {
		if err := config.CheckListenAddr(cfg.Addr); err != nil {
			return nil, config.Errorf("reactors-addr", "%v", err)
		}
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("reactors: listen %s: %w", cfg.Addr, err)
		}
		r.ln = ln
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
			if err := r.Ready(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ready\n"))
		})
		r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		r.wg.Go(func() {
			if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				r.setErr(fmt.Errorf("reactors http: %w", err))
			}
		})
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	r.wg.Go(func() {
		if err := eng.Run(runCtx); err != nil {
			r.setErr(err)
			cfg.Logger.Error("reactors stopped", zap.Error(err))
		}
	})
	return r, nil
}

func (r *Reactors) setErr(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
}

// Err is the failure that stopped the role, if any.
func (r *Reactors) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Ready is nil once the engine has caught up and nothing failed.
func (r *Reactors) Ready() error {
	if err := r.Err(); err != nil {
		return err
	}
	select {
	case <-r.eng.Ready():
		return nil
	default:
		return errors.New("reactors catching up")
	}
}

// URL is the HTTP server's base URL ("" when none).
func (r *Reactors) URL() string {
	if r.ln == nil {
		return ""
	}
	return "http://" + r.ln.Addr().String()
}

// Close stops the engine (storing its checkpoint) and the HTTP server.
func (r *Reactors) Close() error {
	var err error
	r.closed.Do(func() {
		r.cancel()
		if r.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = r.srv.Shutdown(ctx)
			cancel()
		}
		r.wg.Wait()
	})
	return err
}
