// Package rest is the HTTP API of the orchestrator: Occopus's REST service
// (the same paths, methods and JSON bodies) over an occopus.Manager, plus
// /openapi.yaml, /healthz and Prometheus /metrics.
//
// Routes (Occopus's, plus attach, detach, scaleto and notify of later
// versions):
//
//	POST   /infrastructures/                                   {"infraid": ID}
//	GET    /infrastructures/                                   {"infrastructures": [ID...]}
//	GET    /infrastructures/{id}                               the report
//	DELETE /infrastructures/{id}                               {"infraid": ID}
//	POST   /infrastructures/{id}/scaleup/{node}[/{count}]      {"method": "scaleup", ...}
//	POST   /infrastructures/{id}/scaledown/{node}[/{nodeid}]   {"method": "scaledown", ...}
//	POST   /infrastructures/{id}/scaleto/{node}/{count}        {"method": "scaleto", ...}
//	POST   /infrastructures/{id}/attach|detach|notify          {"infraid": ID}
//	GET    /infrastructures/{id}/status                        the last pass's outcome
//	GET    /infrastructures/{id}/cost                          costs where backends tell them
//
// and for the dashboard and other live clients:
//
//	GET    /events[?infra=ID][&after=SEQ][&backlog=N]          Server-Sent Events of the event log
//	GET    /overview                                           {"infrastructures": [status...]}
//	GET    /infrastructures/{id}/detail                        graph, instances, resources, health
//
// A DELETE with ?force=true removes the record even when resources remain,
// and lists them.
//
// Errors are JSON {"status_code": N, "reason": "Not Found", "message": "..."}
// with the same HTTP status. Every response and log line is scrubbed of the
// credentials of auth_data (Config.Secrets).
package rest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/occopus-go/occopus"
)

// Defaults of Config.
const (
	DefaultMaxBodyBytes = 1 << 20
	// maxNotifyBytes bounds notify's properties: they are kept in the
	// event log.
	maxNotifyBytes        = 64 << 10
	DefaultWebhookTimeout = 5 * time.Second
	// teardownTimeout bounds DELETE: the response waits for the tear-down
	// as Occopus's does, and the write deadline is extended to match.
	teardownTimeout = 30 * time.Minute
)

// Timeouts of the http.Server.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 2 * time.Minute
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 30 * time.Second
)

//go:embed openapi.yaml
var openAPI []byte

// dashboardPage is the browser view of the service: one self-contained
// page (no external assets) that reads the REST API.
//
//go:embed dashboard.html
var dashboardPage []byte

// OpenAPI returns the OpenAPI 3.1 description of the service.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

// Config configures a Server.
type Config struct {
	// Host and Port are where ListenAndServe binds (127.0.0.1:5000 when
	// empty/zero; port 0 picks a free one).
	Host string
	Port int
	// Token, when set, must come as "Authorization: Bearer TOKEN" on every
	// request but /healthz.
	Token string
	// Insecure allows binding a non-loopback address without a token.
	Insecure bool
	// CertFile and KeyFile turn on TLS (both or neither).
	CertFile, KeyFile string
	// AllowFileImports lets submitted descriptions use !yaml_import and
	// !text_import of this host's files.
	AllowFileImports bool
	// MaxDescriptionBytes bounds a submitted description with every alias
	// expanded (default descr.DefaultMaxBytes); more is refused with 400.
	MaxDescriptionBytes int
	// Secrets are scrubbed from every response (auth.Data.Secrets()).
	Secrets []string
	// MaxBodyBytes limits request bodies (default 1 MiB).
	MaxBodyBytes int64
	// WebhookTimeout bounds one webhook delivery (default 5 s).
	WebhookTimeout time.Duration
	// WebhookAllow, when set, lists where webhooks may go (CIDRs,
	// addresses, host names, ".domain" suffixes): occopus_config.yaml's
	// webhook_allow. Link-local and metadata addresses and URLs with
	// credentials are refused whatever it says.
	WebhookAllow []string
	// EventHeartbeat is how often GET /events sends a comment while no
	// event comes (default 15 s), so that proxies keep the stream open.
	EventHeartbeat time.Duration
	// EventWriteTimeout is how long a client of GET /events may take to
	// accept one write before it is disconnected (default 10 s).
	EventWriteTimeout time.Duration
	// MaxEventStreams bounds the open GET /events streams (default 64);
	// more are answered 503.
	MaxEventStreams int
	Log             *slog.Logger
}

// Server is the REST service over a Manager, which stays the caller's:
// the Server subscribes to it (metrics, webhooks) and never closes it.
type Server struct {
	cfg       Config
	m         *occopus.Manager
	log       *slog.Logger
	mux       *http.ServeMux
	handler   http.Handler
	metrics   *metrics
	hooks     *webhooks
	tokenHash [32]byte
	unsub     func()
	egress    *egressPolicy
	view      *view // kept answers of the reads (view.go); nil without a Revisioned store
	streams   eventStreams
	dash      *dashState
}

// New builds a Server over m. Every description it receives is submitted
// with occopus.FromNetwork, so the Manager's AllowCmd and AllowNetworkCmd
// (allow_cmd, allow_network_cmd) both decide whether its cmd() runs.
func New(m *occopus.Manager, cfg Config) (*Server, error) {
	if m == nil {
		return nil, errors.New("rest: New needs a Manager")
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("rest: TLS needs both a certificate (--tls-cert) and a key (--tls-key)")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.WebhookTimeout <= 0 {
		cfg.WebhookTimeout = DefaultWebhookTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.EventHeartbeat <= 0 {
		cfg.EventHeartbeat = DefaultEventHeartbeat
	}
	if cfg.EventWriteTimeout <= 0 {
		cfg.EventWriteTimeout = DefaultEventWriteTimeout
	}
	if cfg.MaxEventStreams <= 0 {
		cfg.MaxEventStreams = DefaultMaxEventStreams
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	s := &Server{cfg: cfg, m: m, log: cfg.Log.With("component", "rest")}
	if cfg.Token != "" {
		s.tokenHash = sha256.Sum256([]byte(cfg.Token))
	}
	egress, err := newEgressPolicy(cfg.WebhookAllow)
	if err != nil {
		return nil, fmt.Errorf("rest: %w", err)
	}
	s.egress = egress
	s.metrics = newMetrics()
	s.hooks = newWebhooks(s.log, egress.client(cfg.WebhookTimeout), s.redact, s.metrics)
	s.hooks.store = m.Store()
	s.unsub = m.Subscribe(occopus.Observer{
		Event: func(ev occopus.Event) {
			s.metrics.observeEvent(ev)
			s.hooks.enqueue(ev)
		},
		Pass: func(_ string, d time.Duration, res *occopus.PassResult, err error) {
			s.metrics.observePass(d, occopus.Outcome(res, err))
		},
		BackendCall: s.metrics.observeBackendCall,
		Probe: func(_, _ string, r occopus.ProbeResult) {
			s.metrics.observeProbe(r)
		},
	})
	s.metrics.register(m)
	s.view = newView(m.Store())
	s.dash = newDashState(m)
	s.mux = http.NewServeMux()
	for _, rt := range s.routes() {
		s.mux.Handle(rt.pattern, rt.h)
	}
	s.handler = http.HandlerFunc(s.serveHTTP)
	return s, nil
}

// Manager returns the Server's Manager.
func (s *Server) Manager() *occopus.Manager { return s.m }

// Handler returns the HTTP handler of the whole API.
func (s *Server) Handler() http.Handler { return s.handler }

type route struct {
	pattern string
	h       http.HandlerFunc
}

// Routes lists the patterns the service registers, for documentation and
// the OpenAPI test.
func Routes() []string {
	s := &Server{}
	var out []string
	for _, rt := range s.routes() {
		out = append(out, rt.pattern)
	}
	return out
}

func (s *Server) routes() []route {
	return []route{
		{"POST /infrastructures/{$}", s.createInfra},
		{"POST /infrastructures", s.createInfra},
		{"GET /infrastructures/{$}", s.listInfras},
		{"GET /infrastructures", s.listInfras},
		{"GET /infrastructures/{id}", s.getInfra},
		{"GET /infrastructures/{id}/status", s.status},
		{"GET /infrastructures/{id}/cost", s.getCost},
		{"DELETE /infrastructures/{id}", s.deleteInfra},
		{"POST /infrastructures/{id}/scaleup/{node}", s.scaleUp},
		{"POST /infrastructures/{id}/scaleup/{node}/{count}", s.scaleUp},
		{"POST /infrastructures/{id}/scaledown/{node}", s.scaleDown},
		{"POST /infrastructures/{id}/scaledown/{node}/{nodeid}", s.scaleDown},
		{"POST /infrastructures/{id}/scaleto/{node}/{count}", s.scaleTo},
		{"POST /infrastructures/{id}/attach", s.attach},
		{"POST /infrastructures/{id}/detach", s.detach},
		{"POST /infrastructures/{id}/notify", s.notify},
		{"GET /events", s.events},
		{"GET /overview", s.overview},
		{"GET /infrastructures/{id}/detail", s.detail},
		{"GET /{$}", s.dashboard},
		{"GET /openapi.yaml", s.openapi},
		{"GET /healthz", s.healthz},
		{"GET /metrics", s.serveMetrics},
	}
}

// serveHTTP is the outermost handler: metrics, authentication, body
// limit, then the mux; the mux's own 404 and 405 become JSON errors.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		// The label is the documented path: "{$}" (the mux's exact-match
		// marker) is not part of it.
		route := strings.ReplaceAll(r.Pattern, "{$}", "")
		if route == "" {
			route = "unmatched"
		}
		s.metrics.observeRequest(route, sw.code(), time.Since(start))
	}()
	// No page of another site may frame or drive this service.
	sw.Header().Set("Content-Security-Policy", "frame-ancestors 'none'")
	sw.Header().Set("X-Frame-Options", "DENY")
	if code, why := s.crossSite(r); code != 0 {
		s.writeError(sw, code, why)
		return
	}
	// The liveness check and the dashboard page (static; it asks for the
	// token and sends it with its API calls) need no token.
	if r.URL.Path != "/healthz" && r.URL.Path != "/" && !s.authorized(r) {
		sw.Header().Set("WWW-Authenticate", `Bearer realm="occopus"`)
		s.writeError(sw, http.StatusUnauthorized, "a valid bearer token is required (Authorization: Bearer TOKEN)")
		return
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(sw, r.Body, s.cfg.MaxBodyBytes)
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		// Not found or method not allowed: let the mux decide which, but
		// answer in JSON.
		rec := &discardWriter{header: http.Header{}}
		s.mux.ServeHTTP(rec, r)
		if allow := rec.header.Get("Allow"); allow != "" {
			sw.Header().Set("Allow", allow)
		}
		code := rec.status
		if code == 0 {
			code = http.StatusNotFound
		}
		if code >= 300 && code < 400 {
			sw.Header().Set("Location", rec.header.Get("Location"))
			sw.WriteHeader(code)
			return
		}
		msg := fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)
		if code == http.StatusMethodNotAllowed {
			msg = fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, rec.header.Get("Allow"))
		}
		s.writeError(sw, code, msg)
		return
	}
	s.mux.ServeHTTP(sw, r)
}

func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.Token == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	// Hashes have one length, so the comparison leaks nothing about the
	// token's length either.
	h := sha256.Sum256([]byte(strings.TrimSpace(got)))
	return subtle.ConstantTimeCompare(h[:], s.tokenHash[:]) == 1
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// discardWriter captures the status and headers of the mux's internal
// handlers.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *discardWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(b), nil
}

// Close ends the Server's subscription to its Manager and the webhook
// deliveries. The Manager keeps running: it belongs to the caller.
func (s *Server) Close() error {
	s.unsub()
	s.dash.close()
	s.hooks.close()
	return nil
}

// housekeepInterval is how often the service prunes the event log.
const housekeepInterval = 10 * time.Minute

// housekeep runs the Manager's housekeeping, and its sweep for orphans
// (unless the configuration turns it off), now and then every interval
// until ctx ends.
func (s *Server) housekeep(ctx context.Context) {
	t := time.NewTicker(housekeepInterval)
	defer t.Stop()
	o := s.m.OrphanOptions()
	var sweep <-chan time.Time
	if o.Sweep != occopus.SweepOff {
		st := time.NewTicker(o.Interval)
		defer st.Stop()
		sweep = st.C
		s.sweepOrphans(ctx, o)
	}
	for {
		if _, err := s.m.Housekeep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("housekeeping", "err", s.redact(err.Error()))
		}
		for again := true; again; {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				again = false
			case <-sweep:
				s.sweepOrphans(ctx, o)
			}
		}
	}
}

// sweepTimeout bounds one sweep for orphans (a backend that hangs must
// not stop the housekeeping for good); longer intervals allow longer.
const sweepTimeout = 5 * time.Minute

// sweepOrphans runs one sweep for orphans and updates the metrics; the
// Manager logs what it found and removed.
func (s *Server) sweepOrphans(ctx context.Context, o occopus.OrphanOptions) {
	sctx, cancel := context.WithTimeout(ctx, max(sweepTimeout, o.Interval))
	defer cancel()
	rep, err := s.m.Orphans(sctx, o.Sweep == occopus.SweepRemove)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.log.Warn("sweep for orphans", "err", s.redact(err.Error()))
	}
	if rep == nil {
		return
	}
	for _, f := range rep.Failed {
		s.log.Warn("sweep for orphans: a backend could not be asked", "backend", f.Backend, "err", s.redact(f.Error))
	}
	s.metrics.observeOrphans(rep)
}

// isLoopback reports whether host names only this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// checkBind refuses to expose the API beyond this host without a token.
func (s *Server) checkBind() error {
	if isLoopback(s.cfg.Host) || s.cfg.Token != "" || s.cfg.Insecure {
		return nil
	}
	return fmt.Errorf("rest: refusing to listen on %s without a token: set --token or OCCOPUS_TOKEN, or pass --insecure to expose the API unauthenticated", s.cfg.Host)
}

// ListenAndServe binds Config.Host:Port, resumes the maintenance of every
// attached infrastructure, calls ready with the service's URL and serves
// until ctx ends; then it shuts the HTTP server down gracefully and closes
// the Server (Manager loops included).
func (s *Server) ListenAndServe(ctx context.Context, ready func(url string)) error {
	if err := s.checkBind(); err != nil {
		s.Close()
		return err
	}
	port := s.cfg.Port
	if port < 0 || port > 65535 {
		s.Close()
		return fmt.Errorf("rest: port %d out of range", port)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(strings.Trim(s.cfg.Host, "[]"), strconv.Itoa(port)))
	if err != nil {
		s.Close()
		return fmt.Errorf("rest: %w", err)
	}
	return s.Serve(ctx, ln, ready)
}

// Serve is ListenAndServe on a listener the caller made.
func (s *Server) Serve(ctx context.Context, ln net.Listener, ready func(url string)) error {
	defer s.Close()
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if s.cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.CertFile, s.cfg.KeyFile)
		if err != nil {
			ln.Close()
			return fmt.Errorf("rest: TLS: %w", err)
		}
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	// A store that lost its schema or identity must not be maintained
	// from: what it recorded may still be running.
	if err := s.m.Check(ctx); err != nil {
		ln.Close()
		return fmt.Errorf("rest: the store fails its check: %s", s.redact(err.Error()))
	}
	ids, err := s.m.ResumeAttached(ctx)
	if err != nil {
		ln.Close()
		return fmt.Errorf("rest: resume attached infrastructures: %s", s.redact(err.Error()))
	}
	go s.housekeep(ctx)
	scheme := "http"
	if s.cfg.CertFile != "" {
		scheme = "https"
	}
	url := fmt.Sprintf("%s://%s", scheme, ln.Addr().String())
	s.log.Info("REST service listening", "url", url, "resumed", len(ids), "auth", s.cfg.Token != "")
	for _, id := range ids {
		s.log.Info("maintaining attached infrastructure", "infra", id)
	}
	errc := make(chan error, 1)
	go func() {
		if s.cfg.CertFile != "" {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	if ready != nil {
		ready(url)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("rest: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
		return fmt.Errorf("rest: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("rest: %w", err)
	}
	return nil
}
