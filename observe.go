package occopus

import (
	"sync"
	"time"

	"github.com/occopus-go/occopus/health"
	"github.com/occopus-go/occopus/store"
)

// Observer receives what a Manager does, as it happens. Any field may be
// nil. Calls must not block: hand the value to a goroutine or a buffered
// channel when there is work to do. Event calls are serialised, also when
// the Manager works concurrently, so Event may write to an unsynchronised
// writer.
type Observer struct {
	// Event is every event as it is recorded in the store.
	Event func(Event)
	// Pass is every maintenance pass (Maintain and the background loops),
	// with its duration, result and error.
	Pass func(infraID string, d time.Duration, res *PassResult, err error)
	// BackendCall is every call to a backend (op: create, destroy, state,
	// addresses, find, list) with its duration and error.
	BackendCall func(backend, op string, d time.Duration, err error)
	// Probe is every health-check result.
	Probe func(infraID, node string, r ProbeResult)
}

// Subscribe adds an observer; the returned function removes it.
func (m *Manager) Subscribe(o Observer) (unsubscribe func()) {
	return m.obs.add(&o)
}

// observers fans the engine's callbacks out to the subscribers.
type observers struct {
	mu   sync.RWMutex
	list []*Observer
}

func (s *observers) add(o *Observer) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Copy on write: emitters iterate without holding the lock.
	s.list = append(append([]*Observer(nil), s.list...), o)
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			var next []*Observer
			for _, x := range s.list {
				if x != o {
					next = append(next, x)
				}
			}
			s.list = next
		})
	}
}

func (s *observers) snapshot() []*Observer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.list
}

func (s *observers) event(ev store.Event) {
	for _, o := range s.snapshot() {
		if o.Event != nil {
			o.Event(ev)
		}
	}
}

func (s *observers) pass(id string, d time.Duration, res *PassResult, err error) {
	for _, o := range s.snapshot() {
		if o.Pass != nil {
			o.Pass(id, d, res, err)
		}
	}
}

func (s *observers) backendCall(backend, op string, d time.Duration, err error) {
	for _, o := range s.snapshot() {
		if o.BackendCall != nil {
			o.BackendCall(backend, op, d, err)
		}
	}
}

func (s *observers) probe(infraID, node string, r health.Result) {
	for _, o := range s.snapshot() {
		if o.Probe != nil {
			o.Probe(infraID, node, r)
		}
	}
}
