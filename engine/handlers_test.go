package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
)

// closingHandler counts its Close calls.
type closingHandler struct {
	resource.Handler
	mu     sync.Mutex
	closes int
	err    error
}

func (h *closingHandler) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closes++
	return h.err
}

func (h *closingHandler) closed() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closes
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestHandlerCache(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := newHandlerCache(time.Minute, clk.now)
	builds := map[string]int{}
	made := map[string]*closingHandler{}
	get := func(key string) (resource.Handler, func()) {
		t.Helper()
		h, release, err := c.get(key, func() (resource.Handler, resource.Handler, error) {
			builds[key]++
			ch := &closingHandler{}
			made[key] = ch
			return ch, ch, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return h, release
	}

	a1, ra1 := get("a")
	a2, ra2 := get("a")
	if a1 != a2 || builds["a"] != 1 {
		t.Fatalf("the same section built %d handlers", builds["a"])
	}
	ra1()
	ra1() // releasing twice counts once
	clk.t = clk.t.Add(2 * time.Minute)
	_, rb := get("b") // sweeps: a is still held by its second user
	if made["a"].closed() != 0 || c.len() != 2 {
		t.Fatalf("a handler in use was closed (%d) or dropped (%d cached)", made["a"].closed(), c.len())
	}
	ra2()
	clk.t = clk.t.Add(2 * time.Minute)
	rb()
	_, rc := get("c") // sweeps: a idle for 2 min, b released just now
	if made["a"].closed() != 1 || made["b"].closed() != 0 || c.len() != 2 {
		t.Fatalf("after the idle time: a closed %d times, b %d, %d cached; want 1, 0, 2", made["a"].closed(), made["b"].closed(), c.len())
	}
	if _, r := get("a"); builds["a"] != 2 {
		t.Fatal("a dropped handler was not rebuilt")
	} else {
		r()
	}

	// Close: idle handlers at once, one in use when it is released.
	made["b"].err = errors.New("b would not close")
	err := c.close()
	if made["b"].closed() != 1 || made["c"].closed() != 0 {
		t.Fatalf("close: b closed %d, c (in use) closed %d", made["b"].closed(), made["c"].closed())
	}
	if err == nil || err.Error() != "b would not close" {
		t.Fatalf("close error %v", err)
	}
	rc()
	if made["c"].closed() != 1 {
		t.Fatal("a handler released after close was not closed")
	}
	if _, _, err := c.get("d", nil); err == nil {
		t.Fatal("a closed cache hands out handlers")
	}
}

// closers are the handlers of the "closer" test backend, by zone.
var (
	closersMu sync.Mutex
	closers   = map[string]*closingHandler{}
)

func init() {
	resource.Register(resource.Plugin{Type: "closer", Schema: descr.SchemaOf[fakeSettings](), New: func(cfg resource.Config) (resource.Handler, error) {
		var s fakeSettings
		if err := descr.Decode("resource", cfg.Resource, &s); err != nil {
			return nil, err
		}
		closersMu.Lock()
		defer closersMu.Unlock()
		h := &closingHandler{Handler: &fakeHandler{zone: s.Zone}}
		closers[s.Zone] = h
		return h, nil
	}})
}

// TestEngineClosesHandlers: the handlers an engine built are closed when
// the engine is, also through the metering wrapper.
func TestEngineClosesHandlers(t *testing.T) {
	for _, metered := range []bool{false, true} {
		opt := Options{}
		if metered {
			opt.OnBackendCall = func(string, string, time.Duration, error) {}
		}
		e := newWorld(t, opt).eng
		zone := fmt.Sprintf("z-%v", metered)
		h, release, err := e.handler(map[string]any{"type": "closer", "zone": zone}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.State(context.Background(), resource.Handle{ID: "none"}); !errors.Is(err, resource.ErrNotFound) {
			t.Fatalf("State: %v", err)
		}
		release()
		closersMu.Lock()
		ch := closers[zone]
		closersMu.Unlock()
		if ch.closed() != 0 {
			t.Fatal("closed while cached")
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		if ch.closed() != 1 || e.handlers.len() != 0 {
			t.Fatalf("metered=%v: Close closed the handler %d times, %d left cached", metered, ch.closed(), e.handlers.len())
		}
	}
}
