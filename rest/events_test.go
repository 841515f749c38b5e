package rest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/occopus-go/occopus/store"
)

// sseEvent is one event of a stream: its id and its JSON.
type sseEvent struct {
	id int64
	ev store.Event
}

// stream is an open GET /events.
type stream struct {
	t        testing.TB
	resp     *http.Response
	rd       *bufio.Reader
	comments []string
	cancel   context.CancelFunc
}

func openStream(t testing.TB, url string, hdr ...string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	s := &stream{t: t, resp: resp, rd: bufio.NewReader(resp.Body), cancel: cancel}
	t.Cleanup(s.close)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	return s
}

func (s *stream) close() { s.cancel(); s.resp.Body.Close() }

// next reads the next event, keeping the comments it passes.
func (s *stream) next() sseEvent {
	s.t.Helper()
	var e sseEvent
	var data string
	for {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			s.t.Fatalf("stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if data != "" {
				if err := json.Unmarshal([]byte(data), &e.ev); err != nil {
					s.t.Fatalf("event data %q: %v", data, err)
				}
				return e
			}
		case strings.HasPrefix(line, ":"):
			s.comments = append(s.comments, strings.TrimSpace(line[1:]))
		case strings.HasPrefix(line, "id: "):
			e.id, err = strconv.ParseInt(line[4:], 10, 64)
			if err != nil {
				s.t.Fatalf("id %q", line)
			}
		case strings.HasPrefix(line, "data: "):
			data += line[6:]
		case strings.HasPrefix(line, "retry: "):
		default:
			s.t.Fatalf("unexpected line %q", line)
		}
	}
}

// until reads events until cond holds for one, returning all read.
func (s *stream) until(cond func(store.Event) bool) []sseEvent {
	s.t.Helper()
	var out []sseEvent
	for {
		e := s.next()
		out = append(out, e)
		if cond(e.ev) {
			return out
		}
	}
}

func readyOf(node string) func(store.Event) bool {
	return func(ev store.Event) bool {
		return ev.Kind == "instance.state" && ev.NodeName == node && ev.To == store.StateReady
	}
}

// TestEventsFilterAndResume: a stream of one infrastructure carries its
// events only, with the store's Seq as id and in order; reconnecting
// with Last-Event-ID (or ?after) resumes right after that event; the
// whole stream carries both infrastructures; an unknown id is 404 and a
// bad Last-Event-ID 400.
func TestEventsFilterAndResume(t *testing.T) {
	f := newFixture(t)
	_, hs := f.server(t, nil)
	a := create(t, hs.URL, infraYAML)
	b := create(t, hs.URL, strings.Replace(infraYAML, "rest-test", "other", 1))
	all := openStream(t, hs.URL+"/events?after=0")
	sa := openStream(t, hs.URL+"/events?infra="+a+"&after=0")
	got := sa.until(readyOf("helper"))
	for i, e := range got {
		if e.ev.InfraID != a {
			t.Errorf("event %d of %s in the stream of %s", e.id, e.ev.InfraID, a)
		}
		if e.id != e.ev.Seq || e.id == 0 || i > 0 && e.id <= got[i-1].id {
			t.Errorf("event %d: id %d, seq %d", i, e.id, e.ev.Seq)
		}
	}
	if got[0].ev.Kind != "infra.created" {
		t.Errorf("first event %+v, want infra.created", got[0].ev)
	}
	seen := map[string]bool{}
	all.until(func(ev store.Event) bool { seen[ev.InfraID] = true; return seen[a] && seen[b] })
	sa.close()

	mid := got[len(got)/2]
	for _, hdr := range [][]string{{"Last-Event-ID", strconv.FormatInt(mid.id, 10)}, nil} {
		url := hs.URL + "/events?infra=" + a
		if hdr == nil {
			url += "&after=" + strconv.FormatInt(mid.id, 10)
		}
		re := openStream(t, url, hdr...)
		first := re.next()
		if want := got[len(got)/2+1]; first.id != want.id {
			t.Errorf("resumed (%v) with %d, want %d", hdr, first.id, want.id)
		}
		re.close()
	}
	// Without a place to resume from, the stream starts at the end, after
	// the newest backlog events.
	tail := openStream(t, hs.URL+"/events?infra="+a+"&backlog=2")
	one, two := tail.next(), tail.next()
	if one.id >= two.id || one.ev.InfraID != a {
		t.Errorf("backlog: %d then %d", one.id, two.id)
	}

	expect(t, call(t, "GET", hs.URL+"/events?infra=no-such-infra", ""), 404)
	expect(t, call(t, "GET", hs.URL+"/events", "", "Last-Event-ID", "yesterday"), 400)
	expect(t, call(t, "GET", hs.URL+"/events?backlog=100000", ""), 400)
}

// TestEventsScaleAndPass: a scale request beyond max is in the stream
// with the clamp, and so is the pass result of the infrastructure.
func TestEventsScaleAndPass(t *testing.T) {
	f := newFixture(t)
	_, hs := f.server(t, nil)
	id := create(t, hs.URL, infraYAML)
	s := openStream(t, hs.URL+"/events?infra="+id+"&after=0")
	s.until(func(ev store.Event) bool { return ev.Kind == "pass.result" })
	expect(t, call(t, "POST", hs.URL+"/infrastructures/"+id+"/scaleto/worker/99", ""), 200)
	ev := s.until(func(ev store.Event) bool { return ev.Kind == "scale.requested" })
	last := ev[len(ev)-1].ev
	if last.NodeName != "worker" || !strings.Contains(last.Message, "scale to 99: target 4 (min 1, max 4)") || !strings.Contains(last.Message, "max") {
		t.Errorf("scale event %+v", last)
	}
}

// TestEventsToken: with a token, the stream needs it like the API; and
// without one, a web page of another site may not open it.
func TestEventsToken(t *testing.T) {
	f := newFixture(t)
	_, hs := f.server(t, func(c *serverConfig) { c.Token = "tok-events-1" })
	expect(t, call(t, "GET", hs.URL+"/events", ""), 401)
	expect(t, call(t, "GET", hs.URL+"/events", "", "Authorization", "Bearer wrong"), 401)
	s := openStream(t, hs.URL+"/events", "Authorization", "Bearer tok-events-1")
	v := expect(t, call(t, "POST", hs.URL+"/infrastructures/", infraYAML, "Authorization", "Bearer tok-events-1"), 200)
	ev := s.until(func(ev store.Event) bool { return ev.Kind == "infra.created" })
	if got := ev[len(ev)-1].ev.InfraID; got != v["infraid"] {
		t.Errorf("infra.created of %s, want %s", got, v["infraid"])
	}

	_, open := f.server(t, nil)
	expect(t, call(t, "GET", open.URL+"/events", "", "Origin", "https://evil.example"), 403)
	expect(t, call(t, "GET", open.URL+"/events", "", "Host", "evil.example"), 403)
}

// TestEventsHeartbeat: an idle stream carries heartbeat comments.
func TestEventsHeartbeat(t *testing.T) {
	f := newFixture(t)
	_, hs := f.server(t, func(c *serverConfig) { c.EventHeartbeat = 20 * time.Millisecond })
	s := openStream(t, hs.URL+"/events")
	for len(s.comments) < 2 {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, ":") {
			s.comments = append(s.comments, strings.TrimSpace(line[1:]))
		}
	}
	if s.comments[0] != "occopus events" || s.comments[1] != "heartbeat" {
		t.Errorf("comments %q", s.comments)
	}
}

// TestEventsSlowClient: a client that never reads its stream does not
// hold up the engine (passes and requests complete while it is stuck),
// and is disconnected once a write waits longer than EventWriteTimeout;
// the other streams go on.
func TestEventsSlowClient(t *testing.T) {
	f := newFixture(t)
	srv, hs := f.server(t, func(c *serverConfig) { c.EventWriteTimeout = 200 * time.Millisecond })
	id := create(t, hs.URL, infraYAML)
	waitFor(t, hs.URL, id, "both nodes ready", func(r report) bool { return r.ready("worker") == 1 && r.ready("helper") == 1 })

	conn, err := net.Dial("tcp", strings.TrimPrefix(hs.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /events?after=0 HTTP/1.1\r\nHost: %s\r\n\r\n", strings.TrimPrefix(hs.URL, "http://"))
	// It never reads. Fill the log with more than any socket buffers
	// hold, then keep the engine busy: every call returns.
	good := openStream(t, hs.URL+"/events?infra="+id)
	big := strings.Repeat("x", 60<<10)
	ctx := context.Background()
	for i := range 400 {
		if err := srv.m.Store().AppendEvent(ctx, store.Event{InfraID: "filler", Kind: "test.filler", Message: fmt.Sprint(i, big)}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		expect(t, call(t, "POST", hs.URL+"/infrastructures/"+id+"/scaleup/worker", ""), 200)
		expect(t, call(t, "POST", hs.URL+"/infrastructures/"+id+"/scaledown/worker", ""), 200)
	}
	good.until(func(ev store.Event) bool { return ev.Kind == "scale.requested" })
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(f.logs.String(), "event stream: client disconnected for not reading") {
		if time.Now().After(deadline) {
			t.Fatalf("the stuck client was not disconnected; log:\n%s", f.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
