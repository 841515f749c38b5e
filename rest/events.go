package rest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/store"
)

// Defaults of the event stream's Config fields.
const (
	DefaultEventHeartbeat    = 15 * time.Second
	DefaultEventWriteTimeout = 10 * time.Second
	DefaultMaxEventStreams   = 64
	// eventRetry is the reconnection delay the stream asks browsers for.
	eventRetry = 3 * time.Second
)

// eventStreams counts the open streams, to bound them.
type eventStreams struct{ n atomic.Int64 }

func (e *eventStreams) acquire(limit int) bool {
	if e.n.Add(1) > int64(limit) {
		e.n.Add(-1)
		return false
	}
	return true
}

func (e *eventStreams) release() { e.n.Add(-1) }

// errSlowClient ends a stream whose client did not take an event in time.
var errSlowClient = errors.New("the client did not read the stream in time")

// events: GET /events[?infra=ID][&after=SEQ][&backlog=N], the event log as
// Server-Sent Events. Each event is one JSON store.Event with its Seq as
// the SSE id, so a client that reconnects with Last-Event-ID (browsers do)
// resumes where it was, also after a restart of the service. Without
// Last-Event-ID or after, the stream starts at the end of the log, with
// the newest backlog events first.
//
// A slow client never holds the engine up: the engine only wakes the
// stream, which reads the store at the client's pace. A client that takes
// no write for EventWriteTimeout is disconnected (and resumes with
// Last-Event-ID when it comes back): nothing is dropped silently.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opt := occopus.FollowOptions{InfraID: q.Get("infra"), After: -1, Heartbeat: s.cfg.EventHeartbeat}
	if v, src := r.Header.Get("Last-Event-ID"), "Last-Event-ID"; v != "" || q.Has("after") {
		if v == "" {
			v, src = q.Get("after"), "after"
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.fail(w, r, badRequest("%s %q: want an event id (a sequence number, 0 for the oldest event kept)", src, v))
			return
		}
		opt.After = n
	}
	if v := q.Get("backlog"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > occopus.MaxBacklog {
			s.fail(w, r, badRequest("backlog %q: want 0 to %d events", v, occopus.MaxBacklog))
			return
		}
		opt.Backlog = n
	}
	if opt.InfraID != "" {
		if _, err := s.m.Status(r.Context(), opt.InfraID); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if opt.After < 0 && opt.Backlog == 0 {
		// The end of the log is found before the answer starts, so that
		// a client sees every event recorded after its stream opened.
		tail, err := store.TailEvents(r.Context(), s.m.Store(), opt.InfraID, 1)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		opt.After = 0
		if len(tail) > 0 {
			opt.After = tail[0].Seq
		}
	}
	if !s.streams.acquire(s.cfg.MaxEventStreams) {
		w.Header().Set("Retry-After", strconv.Itoa(int(eventRetry.Seconds())))
		s.writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("%d event streams are open, the most this service serves; try again later", s.cfg.MaxEventStreams))
		return
	}
	defer s.streams.release()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // proxies must not hold events back
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) error {
		// Each write gets its own deadline, instead of the server's
		// WriteTimeout for the whole (endless) response.
		if err := rc.SetWriteDeadline(time.Now().Add(s.cfg.EventWriteTimeout)); err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("%w: %w", errSlowClient, err)
		}
		if err := rc.Flush(); err != nil {
			return fmt.Errorf("%w: %w", errSlowClient, err)
		}
		return nil
	}
	if err := write(fmt.Appendf(nil, "retry: %d\n: occopus events\n\n", eventRetry.Milliseconds())); err != nil {
		return
	}
	opt.Idle = func() error { return write([]byte(": heartbeat\n\n")) }
	err := s.m.Follow(r.Context(), opt, func(ev store.Event) error {
		ev.Message = s.redact(ev.Message)
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		return write(fmt.Appendf(nil, "id: %d\ndata: %s\n\n", ev.Seq, b))
	})
	if errors.Is(err, errSlowClient) {
		// Checked first: a failed write also ends the request's context.
		s.log.Warn("event stream: client disconnected for not reading", "remote", r.RemoteAddr, "err", err)
		return
	}
	if err != nil && r.Context().Err() == nil {
		s.log.Warn("event stream ended", "err", s.redact(err.Error()))
		// The status is sent: say why in the stream, as a comment.
		write([]byte(": error: " + oneLine(s.redact(err.Error())) + "\n\n"))
	}
}

// oneLine keeps a message on one line of the stream.
func oneLine(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '\n' || c == '\r' {
			b[i] = ' '
		}
	}
	return string(b)
}
