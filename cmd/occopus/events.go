package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/store"
)

// lockedWriter serialises writes of several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// maxEventLine bounds one line of a service's event stream.
const maxEventLine = 1 << 20

func newEvents(e *env) *cobra.Command {
	var (
		infraID, format, serviceURL, token string
		follow                             bool
		after                              int64
		last                               int
	)
	cmd := &cobra.Command{
		Use:   "events [-i ID] [-f] [--after SEQ | -n N] [--format json] [--url URL [--token T]]",
		Short: "Print the event log (state changes, scale requests, pass results, errors); -f follows it",
		Example: "  occopus events -i 1fcb2f27-2abd-46ec-8c5f-5e8f2e116757 -n 20\n" +
			"  occopus events -f --format json\n" +
			"  occopus events -f --url http://127.0.0.1:5000 --token $OCCOPUS_TOKEN",
		Long: `Print the event log of the store, or of one infrastructure with -i: every
instance state change, scale request (and its clamp), pass result that changed
and error, oldest first, one line each (--format json: one JSON object per line,
the shape of GET /events). -f waits for new events until interrupted, also those
that other processes sharing the store record. --after SEQ starts after that
event (the first column), -n N with the newest N.

With --url, the events come from a REST service's GET /events instead of the
local store (this always follows, resuming after the last event seen when the
connection drops); --token or $OCCOPUS_TOKEN is sent as its bearer token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if format != "text" && format != "json" {
				return fmt.Errorf("--format %q: want text or json", format)
			}
			if last < 0 || last > occopus.MaxBacklog {
				return fmt.Errorf("-n %d: want 0 to %d", last, occopus.MaxBacklog)
			}
			if cmd.Flags().Changed("after") && last > 0 {
				return errors.New("--after and -n: give one of them")
			}
			print := func(ev store.Event) error { return writeEvent(e.stdout, format, ev) }
			start := after
			if last > 0 || !cmd.Flags().Changed("after") && follow {
				start = -1 // the end, after the newest `last`
			}
			if serviceURL != "" {
				if token == "" {
					token = os.Getenv("OCCOPUS_TOKEN")
				}
				return followService(ctx, serviceURL, token, infraID, start, last, print)
			}
			s, err := e.session(ctx, false, nil)
			if err != nil {
				return err
			}
			defer s.Close()
			err = s.m.Follow(ctx, occopus.FollowOptions{InfraID: infraID, After: start, Backlog: last, NoWait: !follow}, print)
			return unknownInfra(err)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&infraID, "infra_id", "i", "", "only this infrastructure's events")
	f.BoolVarP(&follow, "follow", "f", false, "wait for new events until interrupted")
	f.Int64Var(&after, "after", 0, "start after this event (its sequence number)")
	f.IntVarP(&last, "last", "n", 0, "start with the newest N events")
	f.StringVar(&format, "format", "text", "text or json (one object per line)")
	f.StringVar(&serviceURL, "url", "", "read GET /events of this REST service instead of the local store")
	f.StringVar(&token, "token", "", "bearer token of --url (default $OCCOPUS_TOKEN)")
	return cmd
}

// writeEvent prints one event as a line of text or JSON.
func writeEvent(w io.Writer, format string, ev store.Event) error {
	if format == "json" {
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	_, err := io.WriteString(w, eventLine(ev))
	return err
}

// eventLine is one event as a line: sequence number, time, infrastructure
// (short), kind, node and instance, change and message.
func eventLine(ev store.Event) string {
	short := func(s string) string {
		if len(s) > 8 {
			return s[:8]
		}
		return s
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-6d %s  %s  %-16s", ev.Seq, ev.Time.Local().Format("2006-01-02 15:04:05"), cleanLine(short(ev.InfraID)), cleanLine(ev.Kind))
	if ev.NodeName != "" {
		fmt.Fprintf(&b, "  %s", cleanLine(ev.NodeName))
		if ev.NodeID != "" {
			fmt.Fprintf(&b, " %s", cleanLine(short(ev.NodeID)))
		}
	}
	if ev.From != "" || ev.To != "" {
		fmt.Fprintf(&b, "  %s -> %s", cleanLine(orDash(ev.From)), cleanLine(orDash(ev.To)))
	}
	if ev.Message != "" {
		fmt.Fprintf(&b, "  %s", cleanLine(ev.Message))
	}
	b.WriteByte('\n')
	return b.String()
}

// followService reads a service's GET /events until ctx ends, reconnecting
// after the last event seen when the stream breaks. A refusal (401, 404,
// 400) ends it with the service's message.
func followService(ctx context.Context, base, token, infra string, after int64, backlog int, fn func(store.Event) error) error {
	u, err := url.Parse(strings.TrimRight(base, "/") + "/events")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q: want the service's http:// or https:// URL", base)
	}
	q := url.Values{}
	if infra != "" {
		q.Set("infra", infra)
	}
	if after >= 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	} else if backlog > 0 {
		q.Set("backlog", strconv.Itoa(backlog))
	}
	u.RawQuery = q.Encode()
	last := int64(-1)
	for {
		err := readStream(ctx, u.String(), token, last, func(ev store.Event) error { last = ev.Seq; return fn(ev) })
		if ctx.Err() != nil {
			return nil
		}
		var fatal *streamRefused
		if errors.As(err, &fatal) {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second): // then resume after `last`
		}
	}
}

type streamRefused struct{ msg string }

func (e *streamRefused) Error() string { return e.msg }

func readStream(ctx context.Context, u, token string, lastID int64, fn func(store.Event) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if lastID >= 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(lastID, 10))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var body struct{ Message string }
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
		msg := fmt.Sprintf("GET %s: %s: %s", req.URL.Redacted(), resp.Status, cleanLine(body.Message))
		if resp.StatusCode >= 500 {
			return errors.New(msg)
		}
		return &streamRefused{msg}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventLine)
	var data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != "" {
				var ev store.Event
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					return fmt.Errorf("event stream: %w", err)
				}
				if err := fn(ev); err != nil {
					return &streamRefused{err.Error()}
				}
				data = ""
			}
		case strings.HasPrefix(line, "data: "):
			data += line[len("data: "):]
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}
