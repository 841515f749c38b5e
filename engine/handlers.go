package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/store"
)

// DefaultHandlerIdle is how long a backend handler nobody uses stays
// cached before it is dropped (and closed, if it is a resource.Closer).
const DefaultHandlerIdle = 10 * time.Minute

// handlerCache keeps one handler per (rendered resource section,
// credentials), so that the calls of a pass share clients and
// connections. A handler is closed when it has been idle for the idle
// time and nobody holds it, or when the cache is closed; one in use then
// is closed when its last holder releases it.
type handlerCache struct {
	idle time.Duration
	now  func() time.Time

	mu        sync.Mutex
	m         map[string]*cachedHandler
	lastSweep time.Time
	closed    bool
	closeErrs []error
}

type cachedHandler struct {
	h     resource.Handler // what callers get (maybe metered)
	inner resource.Handler // what Close is called on
	refs  int
	used  time.Time
	gone  bool // dropped from the map; close at the last release
}

func newHandlerCache(idle time.Duration, now func() time.Time) *handlerCache {
	return &handlerCache{idle: idle, now: now, m: map[string]*cachedHandler{}}
}

// get returns the handler cached under key, building it when missing,
// and a release function the caller must call when done with it.
func (c *handlerCache) get(key string, build func() (h, inner resource.Handler, err error)) (resource.Handler, func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, nil, errors.New("engine: closed")
	}
	now := c.now()
	if now.Sub(c.lastSweep) >= c.idle/4 {
		c.sweepLocked(now)
	}
	ch, ok := c.m[key]
	if !ok {
		// Building holds the lock: constructors do not contact their
		// backend (resource.Plugin.New), so this is quick.
		h, inner, err := build()
		if err != nil {
			return nil, nil, err
		}
		ch = &cachedHandler{h: h, inner: inner}
		c.m[key] = ch
	}
	ch.refs++
	ch.used = now
	var once sync.Once
	return ch.h, func() { once.Do(func() { c.release(ch) }) }, nil
}

func (c *handlerCache) release(ch *cachedHandler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch.refs--
	ch.used = c.now()
	if ch.refs == 0 && ch.gone {
		c.closeLocked(ch)
	}
}

// sweepLocked drops the handlers idle for longer than the idle time.
func (c *handlerCache) sweepLocked(now time.Time) {
	c.lastSweep = now
	for k, ch := range c.m {
		if ch.refs == 0 && now.Sub(ch.used) >= c.idle {
			delete(c.m, k)
			c.closeLocked(ch)
		}
	}
}

func (c *handlerCache) closeLocked(ch *cachedHandler) {
	ch.gone = true
	if cl, ok := ch.inner.(resource.Closer); ok {
		if err := cl.Close(); err != nil {
			c.closeErrs = append(c.closeErrs, err)
		}
	}
}

// close drops every handler; those in use are closed when released.
func (c *handlerCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for k, ch := range c.m {
		delete(c.m, k)
		if ch.refs == 0 {
			c.closeLocked(ch)
		} else {
			ch.gone = true
		}
	}
	err := errors.Join(c.closeErrs...)
	c.closeErrs = nil
	return err
}

// len is the number of cached handlers (tests).
func (c *handlerCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// handler returns the cached backend handler for a resource section and
// its credentials, and the function that releases it.
func (e *Engine) handler(res map[string]any, authData map[string]any) (resource.Handler, func(), error) {
	key, err := json.Marshal([]any{res, authData})
	if err != nil {
		return nil, nil, err
	}
	return e.handlers.get(string(key), func() (resource.Handler, resource.Handler, error) {
		h, err := resource.New(resource.Config{Resource: res, Auth: authData, Home: e.opt.Home, Logger: e.opt.Log, Limiter: e.limiter})
		if err != nil {
			return nil, nil, err
		}
		inner := h
		if e.opt.OnBackendCall != nil {
			typ, _ := res["type"].(string)
			h = &metered{h: h, typ: typ, obs: e.opt.OnBackendCall}
		}
		return h, inner, nil
	})
}

// credentials selects auth_data for a resource. Whether a backend needs
// any is the backend's business: without a match it gets nil, and the
// selection's explanation is returned to be shown if the backend refuses.
func (e *Engine) credentials(res map[string]any) (map[string]any, error) {
	if e.opt.Auth == nil {
		typ, _ := res["type"].(string)
		return nil, fmt.Errorf("no credentials for resource type %q: no auth_data file is configured (--auth_data_path or $OCCOPUS_HOME/auth_data.yaml)", typ)
	}
	return e.opt.Auth.Select("resource", res)
}

// handlerWithAuth builds the handler of a resource section with the
// credentials that match it.
func (e *Engine) handlerWithAuth(res map[string]any) (resource.Handler, map[string]any, func(), error) {
	authData, authErr := e.credentials(res)
	h, release, err := e.handler(res, authData)
	if err != nil {
		if authErr != nil {
			err = fmt.Errorf("%w (%w)", err, authErr)
		}
		// A constructor does not contact its backend: what it refuses is
		// the section or the credentials, which no retry changes.
		return nil, nil, nil, Terminal(err)
	}
	return h, authData, release, nil
}

// handlerFor rebuilds the handler of a recorded instance.
func (e *Engine) handlerFor(in store.Instance) (resource.Handler, func(), error) {
	var res map[string]any
	if err := json.Unmarshal(in.Resource, &res); err != nil || res == nil {
		return nil, nil, fmt.Errorf("instance %s has no usable resource record", in.NodeID)
	}
	h, _, release, err := e.handlerWithAuth(res)
	return h, release, err
}

// Close drops every cached backend handler, closing those that hold
// resources of their own. The engine must not be used afterwards.
func (e *Engine) Close() error { return e.handlers.close() }
