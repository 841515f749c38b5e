package rest

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/occopus-go/occopus/store"
)

// TestWebhookOrder: the state changes of one infrastructure reach its
// webhook in the order they happened, even when the receiver is slow to
// answer the first.
func TestWebhookOrder(t *testing.T) {
	const n = 20
	release := make(chan struct{})
	var mu sync.Mutex
	var got []string
	all := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var sc StateChange
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &sc); err != nil {
			t.Errorf("body %q: %v", b, err)
		}
		mu.Lock()
		got = append(got, sc.Message)
		first, done := len(got) == 1, len(got) == n
		mu.Unlock()
		if first {
			<-release // the first answer waits until every change is queued
		}
		if done {
			close(all)
		}
	}))
	defer srv.Close()
	h := newWebhooks(slog.New(slog.DiscardHandler), srv.Client(), func(s string) string { return s }, newMetrics())
	defer h.close()
	const id = "11111111-1111-4111-8111-111111111111"
	h.props[id] = map[string]any{"webhook": srv.URL}
	for i := range n {
		h.enqueue(store.Event{InfraID: id, Kind: "instance.state", NodeName: "web", Message: strconv.Itoa(i)})
	}
	// Every change is in the dispatcher's hands before the first answer.
	for {
		h.mu.Lock()
		queued := len(h.lanes[id])
		h.mu.Unlock()
		if queued == n-1 {
			break
		}
		select {
		case <-all:
			t.Fatal("all delivered before the first was answered")
		default:
		}
		runtime.Gosched()
	}
	close(release)
	<-all
	for i, m := range got {
		if m != strconv.Itoa(i) {
			t.Fatalf("delivered in the order %v", got)
		}
	}
}
