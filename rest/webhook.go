package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/occopus-go/occopus/store"
)

// Bounds of webhook delivery: the engine never waits for it.
const (
	webhookQueue       = 1024
	webhookConcurrency = 8
)

// StateChange is the JSON POSTed to an infrastructure's webhook for every
// node state change.
type StateChange struct {
	InfraID  string    `json:"infraid"`
	NodeName string    `json:"nodename"`
	NodeID   string    `json:"nodeid"`
	From     string    `json:"from"`
	State    string    `json:"state"`
	Message  string    `json:"message,omitempty"`
	Time     time.Time `json:"time"`
}

// webhooks keeps notify properties per infrastructure and delivers state
// changes to their webhooks, off the engine's goroutines.
type webhooks struct {
	log     *slog.Logger
	client  *http.Client
	redact  func(string) string
	metrics *metrics
	store   store.Store

	mu    sync.Mutex
	props map[string]map[string]any // nil value: loaded, none set
	// lanes holds each infrastructure's deliveries not yet made; a key
	// present means one goroutine is making them, in order.
	lanes map[string][]delivery

	queue chan store.Event
	sem   chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
	done  chan struct{}
}

func newWebhooks(log *slog.Logger, client *http.Client, redact func(string) string, m *metrics) *webhooks {
	h := &webhooks{
		log: log, redact: redact, metrics: m, client: client,
		props: map[string]map[string]any{},
		lanes: map[string][]delivery{},
		queue: make(chan store.Event, webhookQueue),
		sem:   make(chan struct{}, webhookConcurrency),
		done:  make(chan struct{}),
	}
	h.wg.Add(1)
	go h.run()
	return h
}

// enqueue hands an event to the dispatcher; it never blocks (a full queue
// drops the event and counts it).
func (h *webhooks) enqueue(ev store.Event) {
	if ev.Kind != "instance.state" && ev.Kind != "infra.destroyed" {
		return
	}
	select {
	case <-h.done:
		return
	default:
	}
	select {
	case h.queue <- ev:
	default:
		h.metrics.webhook.WithLabelValues("dropped").Inc()
	}
}

func (h *webhooks) run() {
	defer h.wg.Done()
	for {
		select {
		case <-h.done:
			return
		case ev := <-h.queue:
			h.dispatch(ev)
		}
	}
}

func (h *webhooks) dispatch(ev store.Event) {
	if ev.Kind == "infra.destroyed" {
		h.mu.Lock()
		delete(h.props, ev.InfraID)
		h.mu.Unlock()
		return
	}
	props := h.get(ev.InfraID)
	target, _ := props["webhook"].(string)
	if target == "" {
		return
	}
	body, err := json.Marshal(StateChange{InfraID: ev.InfraID, NodeName: ev.NodeName, NodeID: ev.NodeID,
		From: ev.From, State: ev.To, Message: h.redact(ev.Message), Time: ev.Time})
	if err != nil {
		return
	}
	// One infrastructure's changes are posted one after the other, in the
	// order they happened (a receiver must not see ready before pending);
	// different infrastructures' go in parallel.
	h.mu.Lock()
	q, running := h.lanes[ev.InfraID]
	if len(q) >= webhookQueue {
		h.mu.Unlock()
		h.metrics.webhook.WithLabelValues("dropped").Inc()
		return
	}
	h.lanes[ev.InfraID] = append(q, delivery{target: target, body: body})
	h.mu.Unlock()
	if running {
		return
	}
	select {
	case h.sem <- struct{}{}:
	case <-h.done:
		return
	}
	h.wg.Add(1)
	go func() {
		defer func() { <-h.sem; h.wg.Done() }()
		h.drain(ev.InfraID)
	}()
}

// delivery is one webhook post to make.
type delivery struct {
	target string
	body   []byte
}

// drain posts an infrastructure's deliveries in order until none is left.
func (h *webhooks) drain(id string) {
	for {
		h.mu.Lock()
		q := h.lanes[id]
		if len(q) == 0 {
			delete(h.lanes, id)
			h.mu.Unlock()
			return
		}
		d := q[0]
		h.lanes[id] = q[1:]
		h.mu.Unlock()
		select {
		case <-h.done:
			return
		default:
		}
		h.post(id, d.target, d.body)
	}
}

func (h *webhooks) post(infraID, target string, body []byte) {
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		h.metrics.webhook.WithLabelValues("error").Inc()
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "occopus-rest")
	resp, err := h.client.Do(req)
	if err != nil {
		h.metrics.webhook.WithLabelValues("error").Inc()
		// The URL may carry user info: log the infrastructure, not it.
		h.log.Warn("webhook delivery failed", "infra", infraID, "err", h.redact(scrubURL(err, target)))
		return
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		h.metrics.webhook.WithLabelValues("error").Inc()
		h.log.Warn("webhook answered with an error", "infra", infraID, "status", resp.StatusCode)
		return
	}
	h.metrics.webhook.WithLabelValues("ok").Inc()
}

// scrubURL removes the webhook URL from a client error.
func scrubURL(err error, target string) string {
	return string(bytes.ReplaceAll([]byte(err.Error()), []byte(target), []byte("<webhook>")))
}

// get returns the properties of an infrastructure, reading them from the
// event log the first time (after a restart).
func (h *webhooks) get(id string) map[string]any {
	h.mu.Lock()
	p, ok := h.props[id]
	h.mu.Unlock()
	if ok || h.store == nil {
		return p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	inf, err := h.store.Infra(ctx, id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			h.log.Warn("reading notify properties", "infra", id, "err", h.redact(err.Error()))
		}
		return nil
	}
	if len(inf.Notify) > 0 {
		var v map[string]any
		if json.Unmarshal(inf.Notify, &v) == nil {
			p = v
		}
	}
	h.mu.Lock()
	if cur, ok := h.props[id]; ok { // set meanwhile by a request
		p = cur
	} else {
		h.props[id] = p
	}
	h.mu.Unlock()
	return p
}

// set stores the properties in memory and in the event log.
func (h *webhooks) set(ctx context.Context, id string, props map[string]any) error {
	raw, err := json.Marshal(props)
	if err != nil {
		return err
	}
	if err := h.store.SetNotify(ctx, id, raw); err != nil {
		return fmt.Errorf("store notify properties: %w", err)
	}
	// The event says it happened (not what: a webhook URL may be secret).
	h.store.AppendEvent(ctx, store.Event{InfraID: id, Kind: "notify.set", Message: "notify properties set"})
	h.mu.Lock()
	h.props[id] = props
	h.mu.Unlock()
	return nil
}

// close stops the dispatcher and waits for deliveries in flight (each is
// bounded by the client's timeout).
func (h *webhooks) close() {
	h.once.Do(func() { close(h.done) })
	h.wg.Wait()
}
