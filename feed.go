package occopus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/occopus-go/occopus/engine"
	"github.com/occopus-go/occopus/store"
)

// Kinds of the events the Manager records beside the engine's
// (instance.state, infra.created, scale.clamped, ...).
const (
	// KindPass: a maintenance pass ended with another outcome or error
	// than the one before (To: the result; Message: the error). Passes
	// that repeat the last outcome are not logged: the log would fill
	// with them.
	KindPass = "pass.result"
	// KindScale: a scaling request was stored (Message says what it asks
	// for and the target it comes to).
	KindScale = "scale.requested"
)

// passEvent records a pass whose outcome or error differs from prev.
func (m *Manager) passEvent(ctx context.Context, id string, prev, now store.PassStatus) {
	if prev.Result == now.Result && prev.Error == now.Error {
		return
	}
	m.eng.Record(context.WithoutCancel(ctx), store.Event{InfraID: id, Kind: KindPass, From: prev.Result, To: now.Result,
		Message: store.CutString(now.Error, store.MaxPassError), Time: now.At})
}

// scaleEvent records a stored scaling request.
func (m *Manager) scaleEvent(ctx context.Context, r ScaleRequest, after engine.Scaling) {
	var what string
	switch {
	case r.Set != nil:
		what = fmt.Sprintf("scale to %d", *r.Set)
	case r.Victim != "":
		what = "remove instance " + r.Victim
	case r.Change > 0:
		what = fmt.Sprintf("scale up by %d", r.Change)
	default:
		what = fmt.Sprintf("scale down by %d", -r.Change)
	}
	msg := fmt.Sprintf("%s: target %d (min %d, max %d)", what, after.Target, after.Min, after.Max)
	if after.Clamped != "" {
		msg += "; " + after.Clamped
	}
	m.eng.Record(context.WithoutCancel(ctx), store.Event{InfraID: r.InfraID, NodeName: r.Node, NodeID: r.Victim, Kind: KindScale, Message: msg})
}

// Defaults of FollowOptions.
const (
	DefaultFollowPoll  = time.Second
	DefaultFollowBatch = 256
	// MaxBacklog bounds FollowOptions.Backlog.
	MaxBacklog = 1000
)

// FollowOptions say where Follow starts and how it waits.
type FollowOptions struct {
	// InfraID keeps the events of one infrastructure ("": all). An
	// unknown id is ErrUnknownInfra.
	InfraID string
	// After resumes after this sequence number (an event's Seq, the SSE
	// id); 0 starts at the oldest event kept; < 0 at the end of the log,
	// with the newest Backlog events first.
	After   int64
	Backlog int
	// Poll is how often the log is read for events that other processes
	// sharing the store wrote (this Manager's own wake Follow at once);
	// default DefaultFollowPoll.
	Poll time.Duration
	// Batch bounds the events read at once, and so what a follower holds
	// in memory; default DefaultFollowBatch.
	Batch int
	// Idle, when set, is called every Heartbeat while Follow waits (the
	// SSE keep-alive); its error ends Follow.
	Idle      func() error
	Heartbeat time.Duration
	// NoWait returns once the log is read to its end instead of waiting
	// for more (occopus events without --follow).
	NoWait bool
}

// Follow calls fn with the events of the log, oldest first, from where
// opt says, then with each new one as it is recorded, until ctx ends (nil)
// or fn or Idle fail (their error). The log is the store's, so a follower
// resumes across reconnects and restarts by its last Seq, and sees the
// events of every process sharing the store.
//
// A follower never slows the engine: the engine only wakes it (a send
// that never blocks); the follower reads the store at its own pace, at
// most Batch events at a time. One that falls behind the log's pruning
// misses what was pruned.
func (m *Manager) Follow(ctx context.Context, opt FollowOptions, fn func(store.Event) error) error {
	if m.opt.Store == nil {
		return ErrNoStore
	}
	if opt.InfraID != "" {
		if _, err := m.opt.Store.Infra(ctx, opt.InfraID); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: %s", ErrUnknownInfra, opt.InfraID)
		} else if err != nil {
			return err
		}
	}
	if opt.Poll <= 0 {
		opt.Poll = DefaultFollowPoll
	}
	if opt.Batch <= 0 {
		opt.Batch = DefaultFollowBatch
	}
	if opt.Backlog < 0 || opt.Backlog > MaxBacklog {
		return fmt.Errorf("%w: backlog %d: want 0 to %d", ErrInvalid, opt.Backlog, MaxBacklog)
	}
	wake := make(chan struct{}, 1)
	unsub := m.Subscribe(Observer{Event: func(ev Event) {
		if opt.InfraID == "" || ev.InfraID == opt.InfraID {
			select {
			case wake <- struct{}{}:
			default: // a wake-up is pending already
			}
		}
	}})
	defer unsub()
	after := opt.After
	if after < 0 {
		tail, err := store.TailEvents(ctx, m.opt.Store, opt.InfraID, max(opt.Backlog, 1))
		if err != nil {
			return err
		}
		after = 0
		if len(tail) > 0 {
			after = tail[len(tail)-1].Seq
		}
		if opt.Backlog > 0 {
			for _, ev := range tail {
				if err := fn(ev); err != nil {
					return err
				}
			}
		}
	}
	poll := time.NewTicker(opt.Poll)
	defer poll.Stop()
	var beat <-chan time.Time
	if opt.Idle != nil && opt.Heartbeat > 0 {
		t := time.NewTicker(opt.Heartbeat)
		defer t.Stop()
		beat = t.C
	}
	for {
		for {
			evs, err := m.opt.Store.Events(ctx, opt.InfraID, after, opt.Batch)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			for _, ev := range evs {
				if err := fn(ev); err != nil {
					return err
				}
				after = ev.Seq
			}
			if len(evs) < opt.Batch {
				break
			}
		}
		if opt.NoWait {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-poll.C:
		case <-beat:
			if err := opt.Idle(); err != nil {
				return err
			}
		}
	}
}
