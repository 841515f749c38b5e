// Package etcd implements store.Store, store.Leaser, store.Checker and
// store.Identified on an etcd v3 cluster (go.etcd.io/etcd/client/v3).
// Any number of processes may share one prefix; every change of more than
// one key is one etcd transaction (Txn), and read-modify-writes are
// compare-and-swap transactions on the record's mod revision, retried on
// conflict.
//
// Keys, all under Options.Prefix (default "occopus/"); <id> is an id in
// url.PathEscape form, so it holds no "/" and no two ids share a key:
//
//	meta/id                 the identity marker (a UUID), made by the first Open
//	nodedef/<type>          a node definition (JSON list)
//	infra/<id>              an infrastructure (infraRec JSON)
//	pass/<id>               its last pass (store.PassStatus JSON)
//	notify/<id>             its notify properties (raw JSON)
//	inst/<id>/<node id>     an instance (instRec JSON)
//	scale/<id>/<seq>        a scaling request (scaleRec JSON)
//	seq/scale, seq/event    counters (decimal), advanced by CAS
//	ev/<seq>                an event, in the log of all events
//	evi/<id>/<seq>          the same event, in its infrastructure's log
//	evg/<id>                marks that evi/<id>/ has events (PruneEvents' groups)
//	gone/<id>               DeleteInfra's tombstone (see below)
//	lease/<key>             a lease: the owner, on an etcd lease (Leaser)
//
// <seq> is 20 decimal digits, so key order is sequence order.
//
// DeleteInfra must take an infrastructure's events out of the log of all
// events in the same transaction, but an etcd transaction holds a bounded
// number of operations (128 by default). So it deletes evi/<id>/ by range
// and puts gone/<id>; an entry of ev/ of that id whose create revision is
// below gone/<id>'s mod revision was deleted with it, so Events skips it
// and PruneEvents removes it later (without counting it).
package etcd

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/occopus-go/occopus/store"
)

// DefaultPrefix is the key prefix when Options.Prefix is empty.
const DefaultPrefix = "occopus/"

// maxTxnOps is what a transaction of this store holds at most: etcd's
// default --max-txn-ops is 128.
const maxTxnOps = 128

// Options say where the store lives.
type Options struct {
	// Endpoints are the cluster members' client URLs
	// (default http://127.0.0.1:2379).
	Endpoints []string
	// Prefix goes before every key (default DefaultPrefix), so several
	// stores can share one cluster.
	Prefix string
	// Username and Password, if set, authenticate.
	Username, Password string
	// CertFile and KeyFile are a client certificate; CAFile the CA that
	// signed the members' certificates. Any of them turns TLS on.
	CertFile, KeyFile, CAFile string
	// DialTimeout bounds connecting (default 5 s).
	DialTimeout time.Duration
}

// Store is a store.Store on an etcd cluster.
type Store struct {
	c      *clientv3.Client
	prefix string
	where  string
	id     string

	// tokens holds, per lease key this Store acquired, the owner and the
	// lease key's create revision: the fencing token its writes compare.
	mu     sync.Mutex
	tokens map[string]token
}

type token struct {
	owner string
	rev   int64
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.Leaser     = (*Store)(nil)
	_ store.Checker    = (*Store)(nil)
	_ store.Identified = (*Store)(nil)
)

// Open connects to the cluster, checks the connection by reading the
// identity marker and makes the marker when there is none.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if len(opts.Endpoints) == 0 {
		opts.Endpoints = []string{"http://127.0.0.1:2379"}
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	where := fmt.Sprintf("%s prefix %q", strings.Join(opts.Endpoints, ","), opts.Prefix)
	var tlsc *tls.Config
	if opts.CertFile != "" || opts.KeyFile != "" || opts.CAFile != "" {
		if (opts.CertFile == "") != (opts.KeyFile == "") {
			return nil, fmt.Errorf("etcd: open %s: give both a certificate file and a key file, or neither", where)
		}
		info := transport.TLSInfo{CertFile: opts.CertFile, KeyFile: opts.KeyFile, TrustedCAFile: opts.CAFile}
		var err error
		if tlsc, err = info.ClientConfig(); err != nil {
			return nil, fmt.Errorf("etcd: open %s: TLS: %w", where, err)
		}
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints: opts.Endpoints, DialTimeout: opts.DialTimeout, TLS: tlsc,
		Username: opts.Username, Password: opts.Password,
		Logger: zap.NewNop(),
		// Keep the connection to each member checked, so a dead member is
		// left for a live one within seconds.
		DialKeepAliveTime: 2 * time.Second, DialKeepAliveTimeout: 2 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: open %s: %w", where, err)
	}
	s := &Store{c: c, prefix: opts.Prefix, where: where, tokens: map[string]token{}}
	octx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	defer cancel()
	k := s.k("meta/id")
	resp, err := c.Txn(octx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, uuid.NewString())).Else(clientv3.OpGet(k)).Commit()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("etcd: open %s: identity marker: %w", where, err)
	}
	if resp.Succeeded {
		g, err := c.Get(octx, k)
		if err != nil || len(g.Kvs) == 0 {
			c.Close()
			return nil, fmt.Errorf("etcd: open %s: identity marker: read back: %v", where, err)
		}
		s.id = string(g.Kvs[0].Value)
	} else {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			c.Close()
			return nil, fmt.Errorf("etcd: open %s: identity marker vanished while opening", where)
		}
		s.id = string(kvs[0].Value)
	}
	return s, nil
}

// Client returns the underlying client (for tests and tools).
func (s *Store) Client() *clientv3.Client { return s.c }

// Close closes the connections.
func (s *Store) Close() error { return s.c.Close() }

// Check implements store.Checker: the identity marker must be the one
// Open read.
func (s *Store) Check(ctx context.Context) error {
	g, err := s.c.Get(ctx, s.k("meta/id"))
	if err != nil {
		return fmt.Errorf("etcd: check %s: %w", s.where, err)
	}
	if len(g.Kvs) == 0 {
		return fmt.Errorf("etcd: check %s: %w: the identity marker %s is gone, so the data of this store was lost "+
			"(deleted keys, a cluster restored from nothing?); the infrastructures recorded in it are unknown now and "+
			"may still be running. Restore the data from a snapshot; restarting starts with an empty store",
			s.where, store.ErrNoIdentity, s.k("meta/id"))
	}
	if id := string(g.Kvs[0].Value); id != s.id {
		return fmt.Errorf("etcd: check %s: %w: it is store %s, not store %s that this process opened",
			s.where, store.ErrNoIdentity, id, s.id)
	}
	return nil
}

// ID implements store.Identified.
func (s *Store) ID(context.Context) (string, error) { return s.id, nil }

// Key names.
func (s *Store) k(rel string) string          { return s.prefix + rel }
func esc(id string) string                    { return url.PathEscape(id) }
func unesc(e string) (string, error)          { return url.PathUnescape(e) }
func seqStr(n int64) string                   { return fmt.Sprintf("%020d", n) }
func (s *Store) kInfra(id string) string      { return s.k("infra/" + esc(id)) }
func (s *Store) kPass(id string) string       { return s.k("pass/" + esc(id)) }
func (s *Store) kNotify(id string) string     { return s.k("notify/" + esc(id)) }
func (s *Store) kInsts(id string) string      { return s.k("inst/" + esc(id) + "/") }
func (s *Store) kScales(id string) string     { return s.k("scale/" + esc(id) + "/") }
func (s *Store) kEvi(id string) string        { return s.k("evi/" + esc(id) + "/") }
func (s *Store) kGone(id string) string       { return s.k("gone/" + esc(id)) }
func (s *Store) kEvg(id string) string        { return s.k("evg/" + esc(id)) }
func (s *Store) kLease(key string) string     { return s.k("lease/" + esc(key)) }
func (s *Store) kEv(seq int64) string         { return s.k("ev/" + seqStr(seq)) }
func (s *Store) kInst(id, node string) string { return s.kInsts(id) + esc(node) }

// exists is the comparison "key k is there".
func exists(k string) clientv3.Cmp { return clientv3.Compare(clientv3.CreateRevision(k), ">", 0) }

// fence returns the comparisons that make a write conditional on the
// fence ctx carries: the lease key holds the owner, and (when this Store
// acquired it) still with the create revision it had then, so a lease
// lost and taken again in between does not pass either.
func (s *Store) fence(ctx context.Context) []clientv3.Cmp {
	f, ok := store.FenceFrom(ctx)
	if !ok {
		return nil
	}
	lk := s.kLease(f.Key)
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.Value(lk), "=", f.Owner)}
	s.mu.Lock()
	t, ok := s.tokens[f.Key]
	s.mu.Unlock()
	if ok && t.owner == f.Owner {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(lk), "=", t.rev))
	}
	return cmps
}

// fenced tells, after a transaction failed, whether the fence in ctx (if
// any) is what failed it.
func (s *Store) fenced(ctx context.Context) error {
	cmps := s.fence(ctx)
	if cmps == nil {
		return nil
	}
	resp, err := s.c.Txn(ctx).If(cmps...).Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		f, _ := store.FenceFrom(ctx)
		return fmt.Errorf("%w: lease %s of %s", store.ErrFenced, f.Key, f.Owner)
	}
	return nil
}

// commit runs If(conds, fence) Then(ops). It reports whether conds held;
// a failed fence is an error wrapping store.ErrFenced.
func (s *Store) commit(ctx context.Context, conds []clientv3.Cmp, ops ...clientv3.Op) (bool, *clientv3.TxnResponse, error) {
	if err := ctx.Err(); err != nil {
		return false, nil, err
	}
	if len(ops) > maxTxnOps {
		return false, nil, fmt.Errorf("one transaction of %d operations, more than %d", len(ops), maxTxnOps)
	}
	all := append(slices.Clip(conds), s.fence(ctx)...)
	resp, err := s.c.Txn(ctx).If(all...).Then(ops...).Commit()
	if err != nil {
		return false, nil, err
	}
	if !resp.Succeeded {
		if err := s.fenced(ctx); err != nil {
			return false, nil, err
		}
	}
	return resp.Succeeded, resp, nil
}

// PutNodeDefs implements store.Store: one transaction.
func (s *Store) PutNodeDefs(ctx context.Context, defs map[string]json.RawMessage) error {
	ops := make([]clientv3.Op, 0, len(defs))
	for _, typ := range slices.Sorted(mapKeys(defs)) {
		if !json.Valid(defs[typ]) {
			return fmt.Errorf("etcd: put node def %s: invalid JSON", typ)
		}
		ops = append(ops, clientv3.OpPut(s.k("nodedef/"+esc(typ)), string(defs[typ])))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("etcd: put node defs: %w", err)
	}
	if len(ops) == 0 {
		return nil
	}
	if _, _, err := s.commit(ctx, nil, ops...); err != nil {
		return fmt.Errorf("etcd: put node defs: %w", err)
	}
	return nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// NodeDef implements store.Store.
func (s *Store) NodeDef(ctx context.Context, typ string) (json.RawMessage, error) {
	g, err := s.c.Get(ctx, s.k("nodedef/"+esc(typ)))
	if err != nil {
		return nil, fmt.Errorf("etcd: node def %s: %w", typ, err)
	}
	if len(g.Kvs) == 0 {
		return nil, fmt.Errorf("etcd: node def %s: %w", typ, store.ErrNotFound)
	}
	return json.RawMessage(g.Kvs[0].Value), nil
}

// NodeDefTypes implements store.Store.
func (s *Store) NodeDefTypes(ctx context.Context) ([]string, error) {
	p := s.k("nodedef/")
	g, err := s.c.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("etcd: node def types: %w", err)
	}
	var out []string
	for _, kv := range g.Kvs {
		typ, err := url.PathUnescape(strings.TrimPrefix(string(kv.Key), p))
		if err != nil {
			return nil, fmt.Errorf("etcd: node def types: key %q: %w", kv.Key, err)
		}
		out = append(out, typ)
	}
	slices.Sort(out)
	return out, nil
}

// infraRec is the stored form of an infrastructure, without LastPass and
// Notify (keys of their own, so that a pass status never conflicts with
// an update of the description).
type infraRec struct {
	ID          string          `json:"id"`
	Name        string          `json:"name,omitempty"`
	Description json.RawMessage `json:"description,omitempty"`
	Targets     map[string]int  `json:"targets,omitempty"`
	Attached    bool            `json:"attached,omitempty"`
	Origin      string          `json:"origin,omitempty"`
	CreatedAt   time.Time       `json:"created_at,omitzero"`
	UpdatedAt   time.Time       `json:"updated_at,omitzero"`
}

func encodeInfra(in store.Infra) (string, error) {
	if len(in.Description) != 0 && !json.Valid(in.Description) {
		return "", errors.New("description: invalid JSON")
	}
	if err := store.CheckOrigin(in.Origin); err != nil {
		return "", err
	}
	r := infraRec{ID: in.ID, Name: in.Name, Description: in.Description, Targets: in.Targets,
		Attached: in.Attached, Origin: in.Origin, CreatedAt: in.CreatedAt.UTC(), UpdatedAt: in.UpdatedAt.UTC()}
	if len(r.Targets) == 0 {
		r.Targets = nil
	}
	if len(r.Description) == 0 {
		r.Description = nil
	}
	b, err := json.Marshal(r)
	return string(b), err
}

func decodeInfra(rec, pass, notify []byte) (store.Infra, error) {
	var r infraRec
	if err := json.Unmarshal(rec, &r); err != nil {
		return store.Infra{}, err
	}
	in := store.Infra{ID: r.ID, Name: r.Name, Description: r.Description, Targets: r.Targets,
		Attached: r.Attached, Origin: r.Origin, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if len(pass) != 0 {
		if err := json.Unmarshal(pass, &in.LastPass); err != nil {
			return in, fmt.Errorf("pass status: %w", err)
		}
	}
	if len(notify) != 0 {
		in.Notify = json.RawMessage(notify)
	}
	return in, nil
}

// CreateInfra implements store.Store.
func (s *Store) CreateInfra(ctx context.Context, in store.Infra) error {
	rec, err := encodeInfra(in)
	if err != nil {
		return fmt.Errorf("etcd: create infra %s: %w", in.ID, err)
	}
	k := s.kInfra(in.ID)
	ok, _, err := s.commit(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k), "=", 0)},
		clientv3.OpPut(k, rec), clientv3.OpDelete(s.kPass(in.ID)), clientv3.OpDelete(s.kNotify(in.ID)))
	if err != nil {
		return fmt.Errorf("etcd: create infra %s: %w", in.ID, err)
	}
	if !ok {
		return fmt.Errorf("etcd: create infra %s: %w", in.ID, store.ErrExists)
	}
	return nil
}

// modifyInfra reads the record of id, lets change edit it and writes it
// back with extra, if the record did not change in between (else again).
func (s *Store) modifyInfra(ctx context.Context, id string, change func(*infraRec), extra ...clientv3.Op) error {
	k := s.kInfra(id)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		g, err := s.c.Get(ctx, k)
		if err != nil {
			return err
		}
		if len(g.Kvs) == 0 {
			return store.ErrNotFound
		}
		var r infraRec
		if err := json.Unmarshal(g.Kvs[0].Value, &r); err != nil {
			return fmt.Errorf("stored record: %w", err)
		}
		change(&r)
		if len(r.Targets) == 0 {
			r.Targets = nil
		}
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		ops := append([]clientv3.Op{clientv3.OpPut(k, string(b))}, extra...)
		ok, _, err := s.commit(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(k), "=", g.Kvs[0].ModRevision)}, ops...)
		if err != nil || ok {
			return err
		}
	}
}

// UpdateInfra implements store.Store. UpdatedAt is set from in.UpdatedAt,
// or to the current time when that is zero; CreatedAt is kept.
func (s *Store) UpdateInfra(ctx context.Context, in store.Infra) error {
	if in.UpdatedAt.IsZero() {
		in.UpdatedAt = time.Now()
	}
	if _, err := encodeInfra(in); err != nil {
		return fmt.Errorf("etcd: update infra %s: %w", in.ID, err)
	}
	err := s.modifyInfra(ctx, in.ID, func(r *infraRec) {
		*r = infraRec{ID: in.ID, Name: in.Name, Description: in.Description, Targets: in.Targets,
			Attached: in.Attached, Origin: in.Origin, CreatedAt: r.CreatedAt, UpdatedAt: in.UpdatedAt.UTC()}
		if len(r.Description) == 0 {
			r.Description = nil
		}
	})
	if err != nil {
		return fmt.Errorf("etcd: update infra %s: %w", in.ID, err)
	}
	return nil
}

// UpdateTargets implements store.Store: the record and the consumed
// requests in one transaction. The requests are deleted as ranges of
// consecutive stored ones, so that any number fits one transaction.
func (s *Store) UpdateTargets(ctx context.Context, infraID string, targets map[string]int, consumed []int64) error {
	var dels []clientv3.Op
	if len(consumed) > 0 {
		p := s.kScales(infraID)
		g, err := s.c.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			return fmt.Errorf("etcd: update targets %s: %w", infraID, err)
		}
		gone := map[string]bool{}
		for _, id := range consumed {
			gone[p+seqStr(id)] = true
		}
		// Stored keys in order; each run of consumed ones is one range.
		// Requests added later have larger ids, past every run's end.
		start := ""
		for i, kv := range g.Kvs {
			key := string(kv.Key)
			if gone[key] && start == "" {
				start = key
			}
			last := i == len(g.Kvs)-1
			if start != "" && (last || !gone[string(g.Kvs[i+1].Key)]) && gone[key] {
				dels = append(dels, clientv3.OpDelete(start, clientv3.WithRange(key+"\x00")))
				start = ""
			}
		}
	}
	err := s.modifyInfra(ctx, infraID, func(r *infraRec) {
		r.Targets, r.UpdatedAt = targets, time.Now().UTC()
	}, dels...)
	if err != nil {
		return fmt.Errorf("etcd: update targets %s: %w", infraID, err)
	}
	return nil
}

// Infra implements store.Store: record, pass and notify from one revision.
func (s *Store) Infra(ctx context.Context, id string) (store.Infra, error) {
	resp, err := s.c.Txn(ctx).Then(clientv3.OpGet(s.kInfra(id)), clientv3.OpGet(s.kPass(id)),
		clientv3.OpGet(s.kNotify(id))).Commit()
	if err != nil {
		return store.Infra{}, fmt.Errorf("etcd: infra %s: %w", id, err)
	}
	rec := resp.Responses[0].GetResponseRange().Kvs
	if len(rec) == 0 {
		return store.Infra{}, fmt.Errorf("etcd: infra %s: %w", id, store.ErrNotFound)
	}
	val := func(i int) []byte {
		if kvs := resp.Responses[i].GetResponseRange().Kvs; len(kvs) > 0 {
			return kvs[0].Value
		}
		return nil
	}
	in, err := decodeInfra(rec[0].Value, val(1), val(2))
	if err != nil {
		return store.Infra{}, fmt.Errorf("etcd: infra %s: %w", id, err)
	}
	return in, nil
}

// Infras implements store.Store: records, pass statuses and notify
// properties read from one revision; by creation time, ties in order of
// insertion (the create revision).
func (s *Store) Infras(ctx context.Context) ([]store.Infra, error) {
	resp, err := s.c.Txn(ctx).Then(
		clientv3.OpGet(s.k("infra/"), clientv3.WithPrefix()),
		clientv3.OpGet(s.k("pass/"), clientv3.WithPrefix()),
		clientv3.OpGet(s.k("notify/"), clientv3.WithPrefix())).Commit()
	if err != nil {
		return nil, fmt.Errorf("etcd: infras: %w", err)
	}
	byKey := func(i int, p string) map[string][]byte {
		m := map[string][]byte{}
		for _, kv := range resp.Responses[i].GetResponseRange().Kvs {
			m[strings.TrimPrefix(string(kv.Key), p)] = kv.Value
		}
		return m
	}
	pass, notify := byKey(1, s.k("pass/")), byKey(2, s.k("notify/"))
	type item struct {
		in  store.Infra
		rev int64
	}
	var items []item
	p := s.k("infra/")
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		e := strings.TrimPrefix(string(kv.Key), p)
		in, err := decodeInfra(kv.Value, pass[e], notify[e])
		if err != nil {
			return nil, fmt.Errorf("etcd: infras: %s: %w", e, err)
		}
		items = append(items, item{in, kv.CreateRevision})
	}
	slices.SortFunc(items, func(a, b item) int {
		if c := a.in.CreatedAt.Compare(b.in.CreatedAt); c != 0 {
			return c
		}
		return cmpInt(a.rev, b.rev)
	})
	out := make([]store.Infra, len(items))
	for i, it := range items {
		out[i] = it.in
	}
	return out, nil
}

// DeleteInfra implements store.Store: one transaction deletes the record,
// its pass, notify, instances, requests and events, and puts the
// tombstone that hides its entries in the log of all events.
func (s *Store) DeleteInfra(ctx context.Context, id string) error {
	k := s.kInfra(id)
	ok, _, err := s.commit(ctx, []clientv3.Cmp{exists(k)},
		clientv3.OpDelete(k), clientv3.OpDelete(s.kPass(id)), clientv3.OpDelete(s.kNotify(id)),
		clientv3.OpDelete(s.kInsts(id), clientv3.WithPrefix()),
		clientv3.OpDelete(s.kScales(id), clientv3.WithPrefix()),
		clientv3.OpDelete(s.kEvi(id), clientv3.WithPrefix()),
		clientv3.OpDelete(s.kEvg(id)),
		clientv3.OpPut(s.kGone(id), id))
	if err != nil {
		return fmt.Errorf("etcd: delete infra %s: %w", id, err)
	}
	if !ok {
		return fmt.Errorf("etcd: delete infra %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// SetPassStatus implements store.Store: one put of pass/<id>, if the
// infrastructure is there.
func (s *Store) SetPassStatus(ctx context.Context, id string, ps store.PassStatus) error {
	if err := ps.Check(); err != nil {
		return fmt.Errorf("etcd: set pass status %s: %w", id, err)
	}
	if ps.At.IsZero() {
		ps.At = time.Now()
	}
	ps.At = ps.At.UTC()
	ps.Error = store.CutString(ps.Error, store.MaxPassError)
	b, err := json.Marshal(ps)
	if err != nil {
		return fmt.Errorf("etcd: set pass status %s: %w", id, err)
	}
	ok, _, err := s.commit(ctx, []clientv3.Cmp{exists(s.kInfra(id))}, clientv3.OpPut(s.kPass(id), string(b)))
	if err != nil {
		return fmt.Errorf("etcd: set pass status %s: %w", id, err)
	}
	if !ok {
		return fmt.Errorf("etcd: set pass status %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// SetNotify implements store.Store.
func (s *Store) SetNotify(ctx context.Context, id string, props json.RawMessage) error {
	props, err := store.CheckNotify(props)
	if err != nil {
		return fmt.Errorf("etcd: set notify %s: %w", id, err)
	}
	op := clientv3.OpDelete(s.kNotify(id))
	if props != nil {
		op = clientv3.OpPut(s.kNotify(id), string(props))
	}
	ok, _, err := s.commit(ctx, []clientv3.Cmp{exists(s.kInfra(id))}, op)
	if err != nil {
		return fmt.Errorf("etcd: set notify %s: %w", id, err)
	}
	if !ok {
		return fmt.Errorf("etcd: set notify %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// instRec is the stored form of an instance (infra and node ids are in
// the key).
type instRec struct {
	NodeName     string          `json:"node_name,omitempty"`
	State        string          `json:"state,omitempty"`
	Backend      string          `json:"backend,omitempty"`
	Impl         int             `json:"impl,omitempty"`
	Resource     json.RawMessage `json:"resource,omitempty"`
	Handle       json.RawMessage `json:"handle,omitempty"`
	Address      string          `json:"address,omitempty"`
	PrivAddress  string          `json:"priv_address,omitempty"`
	FailingSince time.Time       `json:"failing_since,omitzero"`
	Error        string          `json:"error,omitempty"`
	Owner        string          `json:"owner,omitempty"`
	CreatedAt    time.Time       `json:"created_at,omitzero"`
	UpdatedAt    time.Time       `json:"updated_at,omitzero"`
}

func decodeInstance(infraID, nodeID string, data []byte) (store.Instance, error) {
	var r instRec
	if err := json.Unmarshal(data, &r); err != nil {
		return store.Instance{}, err
	}
	return store.Instance{InfraID: infraID, NodeID: nodeID, NodeName: r.NodeName, State: r.State,
		Backend: r.Backend, Impl: r.Impl, Resource: r.Resource, Handle: r.Handle, Address: r.Address,
		PrivAddress: r.PrivAddress, FailingSince: r.FailingSince, Error: r.Error, Owner: r.Owner,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}, nil
}

// PutInstance implements store.Store: a put conditional on the
// infrastructure. A replaced instance keeps its create revision, so its
// place among instances of the same creation time.
func (s *Store) PutInstance(ctx context.Context, in store.Instance) error {
	b, err := encodeInstance(in)
	if err != nil {
		return fmt.Errorf("etcd: put instance: %w", err)
	}
	ok, _, err := s.commit(ctx, []clientv3.Cmp{exists(s.kInfra(in.InfraID))},
		clientv3.OpPut(s.kInst(in.InfraID, in.NodeID), string(b)))
	if err != nil {
		return fmt.Errorf("etcd: put instance %s/%s: %w", in.InfraID, in.NodeID, err)
	}
	if !ok {
		return fmt.Errorf("etcd: put instance %s/%s: infra: %w", in.InfraID, in.NodeID, store.ErrNotFound)
	}
	return nil
}

// PutInstances implements store.Store. etcd bounds a transaction to
// maxTxnOps operations, so a batch is written as consecutive transactions
// of at most that many records (each conditional on its infrastructures
// existing), then its events in order: every record is written before
// PutInstances returns, which is what the engine needs (a record before
// its backend call), but a reader may see part of a large batch. The
// infrastructures are checked first, so a batch naming a missing one
// writes nothing.
func (s *Store) PutInstances(ctx context.Context, ins []store.Instance, evs []store.Event) error {
	if len(ins) == 0 && len(evs) == 0 {
		return nil
	}
	for _, e := range evs {
		if len(e.Data) != 0 && !json.Valid(e.Data) {
			return fmt.Errorf("etcd: put instances: event %s: data: invalid JSON", e.Kind)
		}
	}
	type put struct {
		infra string
		op    clientv3.Op
	}
	puts := make([]put, 0, len(ins))
	infras := map[string]bool{}
	for _, in := range ins {
		b, err := encodeInstance(in)
		if err != nil {
			return fmt.Errorf("etcd: put instances: %w", err)
		}
		puts = append(puts, put{in.InfraID, clientv3.OpPut(s.kInst(in.InfraID, in.NodeID), string(b))})
		infras[in.InfraID] = true
	}
	for id := range infras {
		g, err := s.c.Get(ctx, s.kInfra(id), clientv3.WithCountOnly())
		if err != nil {
			return fmt.Errorf("etcd: put instances: %w", err)
		}
		if g.Count == 0 {
			return fmt.Errorf("etcd: put instances: infra %s: %w", id, store.ErrNotFound)
		}
	}
	for len(puts) > 0 {
		n := min(len(puts), maxTxnOps/2)
		seen := map[string]bool{}
		var conds []clientv3.Cmp
		var ops []clientv3.Op
		for _, p := range puts[:n] {
			if !seen[p.infra] {
				seen[p.infra] = true
				conds = append(conds, exists(s.kInfra(p.infra)))
			}
			ops = append(ops, p.op)
		}
		ok, _, err := s.commit(ctx, conds, ops...)
		if err != nil {
			return fmt.Errorf("etcd: put instances: %w", err)
		}
		if !ok {
			return fmt.Errorf("etcd: put instances: an infrastructure went away: %w", store.ErrNotFound)
		}
		puts = puts[n:]
	}
	for _, e := range evs {
		if err := s.AppendEvent(ctx, e); err != nil {
			return fmt.Errorf("etcd: put instances: %w", err)
		}
	}
	return nil
}

func encodeInstance(in store.Instance) ([]byte, error) {
	for field, m := range map[string]json.RawMessage{"resource": in.Resource, "handle": in.Handle} {
		if len(m) != 0 && !json.Valid(m) {
			return nil, fmt.Errorf("instance %s/%s: %s: invalid JSON", in.InfraID, in.NodeID, field)
		}
	}
	r := instRec{NodeName: in.NodeName, State: in.State, Backend: in.Backend, Impl: in.Impl,
		Resource: in.Resource, Handle: in.Handle, Address: in.Address, PrivAddress: in.PrivAddress,
		FailingSince: in.FailingSince.UTC(), Error: in.Error, Owner: in.Owner,
		CreatedAt: in.CreatedAt.UTC(), UpdatedAt: in.UpdatedAt.UTC()}
	if len(r.Resource) == 0 {
		r.Resource = nil
	}
	if len(r.Handle) == 0 {
		r.Handle = nil
	}
	return json.Marshal(r)
}

// Instance implements store.Store.
func (s *Store) Instance(ctx context.Context, infraID, nodeID string) (store.Instance, error) {
	g, err := s.c.Get(ctx, s.kInst(infraID, nodeID))
	if err != nil {
		return store.Instance{}, fmt.Errorf("etcd: instance %s/%s: %w", infraID, nodeID, err)
	}
	if len(g.Kvs) == 0 {
		return store.Instance{}, fmt.Errorf("etcd: instance %s/%s: %w", infraID, nodeID, store.ErrNotFound)
	}
	in, err := decodeInstance(infraID, nodeID, g.Kvs[0].Value)
	if err != nil {
		return store.Instance{}, fmt.Errorf("etcd: instance %s/%s: %w", infraID, nodeID, err)
	}
	return in, nil
}

// Instances implements store.Store: by creation time, ties in order of
// first insertion.
func (s *Store) Instances(ctx context.Context, infraID string) ([]store.Instance, error) {
	p := s.kInsts(infraID)
	g, err := s.c.Get(ctx, p, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd: instances %s: %w", infraID, err)
	}
	type item struct {
		in  store.Instance
		rev int64
	}
	items := make([]item, 0, len(g.Kvs))
	for _, kv := range g.Kvs {
		node, err := url.PathUnescape(strings.TrimPrefix(string(kv.Key), p))
		if err != nil {
			return nil, fmt.Errorf("etcd: instances %s: key %q: %w", infraID, kv.Key, err)
		}
		in, err := decodeInstance(infraID, node, kv.Value)
		if err != nil {
			return nil, fmt.Errorf("etcd: instances %s: %s: %w", infraID, node, err)
		}
		items = append(items, item{in, kv.CreateRevision})
	}
	slices.SortFunc(items, func(a, b item) int {
		if c := a.in.CreatedAt.Compare(b.in.CreatedAt); c != 0 {
			return c
		}
		if c := cmpInt(a.rev, b.rev); c != 0 {
			return c
		}
		return strings.Compare(a.in.NodeID, b.in.NodeID)
	})
	out := make([]store.Instance, len(items))
	for i, it := range items {
		out[i] = it.in
	}
	return out, nil
}

// DeleteInstance implements store.Store.
func (s *Store) DeleteInstance(ctx context.Context, infraID, nodeID string) error {
	if _, _, err := s.commit(ctx, nil, clientv3.OpDelete(s.kInst(infraID, nodeID))); err != nil {
		return fmt.Errorf("etcd: delete instance %s/%s: %w", infraID, nodeID, err)
	}
	return nil
}

// next runs a transaction that advances counter seq/<what> to n+1 and
// does ops(n+1), if conds hold; on a concurrent advance it tries again.
// It returns n+1 and whether conds held.
func (s *Store) next(ctx context.Context, what string, conds []clientv3.Cmp, ops func(n int64) []clientv3.Op) (int64, bool, error) {
	k := s.k("seq/" + what)
	for {
		if err := ctx.Err(); err != nil {
			return 0, false, err
		}
		g, err := s.c.Get(ctx, k)
		if err != nil {
			return 0, false, err
		}
		var cur, mod int64
		if len(g.Kvs) > 0 {
			if cur, err = strconv.ParseInt(string(g.Kvs[0].Value), 10, 64); err != nil {
				return 0, false, fmt.Errorf("counter %s: %w", k, err)
			}
			mod = g.Kvs[0].ModRevision
		}
		n := cur + 1
		all := append([]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(k), "=", mod)}, conds...)
		ok, _, err := s.commit(ctx, all, append([]clientv3.Op{clientv3.OpPut(k, strconv.FormatInt(n, 10))}, ops(n)...)...)
		if err != nil {
			return 0, false, err
		}
		if ok {
			return n, true, nil
		}
		// Did the counter move, or did conds fail?
		g2, err := s.c.Get(ctx, k)
		if err != nil {
			return 0, false, err
		}
		var mod2 int64
		if len(g2.Kvs) > 0 {
			mod2 = g2.Kvs[0].ModRevision
		}
		if mod2 == mod {
			return 0, false, nil
		}
	}
}

// scaleRec is the stored form of a scaling request.
type scaleRec struct {
	NodeName  string    `json:"node_name,omitempty"`
	Delta     int       `json:"delta,omitempty"`
	Set       *int      `json:"set,omitempty"`
	Victim    string    `json:"victim,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// AddScaleRequest implements store.Store. The infrastructure must exist
// (ErrNotFound otherwise).
func (s *Store) AddScaleRequest(ctx context.Context, r store.ScaleRequest) (store.ScaleRequest, error) {
	b, err := json.Marshal(scaleRec{NodeName: r.NodeName, Delta: r.Delta, Set: r.Set, Victim: r.Victim, CreatedAt: r.CreatedAt.UTC()})
	if err != nil {
		return store.ScaleRequest{}, fmt.Errorf("etcd: add scale request %s: %w", r.InfraID, err)
	}
	id, ok, err := s.next(ctx, "scale", []clientv3.Cmp{exists(s.kInfra(r.InfraID))}, func(n int64) []clientv3.Op {
		return []clientv3.Op{clientv3.OpPut(s.kScales(r.InfraID)+seqStr(n), string(b))}
	})
	if err != nil {
		return store.ScaleRequest{}, fmt.Errorf("etcd: add scale request %s: %w", r.InfraID, err)
	}
	if !ok {
		return store.ScaleRequest{}, fmt.Errorf("etcd: add scale request %s: infra: %w", r.InfraID, store.ErrNotFound)
	}
	r.ID = id
	return r, nil
}

// ScaleRequests implements store.Store.
func (s *Store) ScaleRequests(ctx context.Context, infraID string) ([]store.ScaleRequest, error) {
	p := s.kScales(infraID)
	g, err := s.c.Get(ctx, p, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd: scale requests %s: %w", infraID, err)
	}
	out := make([]store.ScaleRequest, 0, len(g.Kvs))
	for _, kv := range g.Kvs {
		id, err := strconv.ParseInt(strings.TrimPrefix(string(kv.Key), p), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("etcd: scale requests %s: bad key %q", infraID, kv.Key)
		}
		var rec scaleRec
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return nil, fmt.Errorf("etcd: scale requests %s: %d: %w", infraID, id, err)
		}
		out = append(out, store.ScaleRequest{ID: id, InfraID: infraID, NodeName: rec.NodeName, Delta: rec.Delta,
			Set: rec.Set, Victim: rec.Victim, CreatedAt: rec.CreatedAt})
	}
	return out, nil // key order is id order
}

// DeleteScaleRequests implements store.Store. Unknown ids are ignored;
// more ids than one transaction holds go in several.
func (s *Store) DeleteScaleRequests(ctx context.Context, infraID string, ids []int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("etcd: delete scale requests %s: %w", infraID, err)
	}
	for chunk := range slices.Chunk(ids, maxTxnOps) {
		ops := make([]clientv3.Op, len(chunk))
		for i, id := range chunk {
			ops[i] = clientv3.OpDelete(s.kScales(infraID) + seqStr(id))
		}
		if _, _, err := s.commit(ctx, nil, ops...); err != nil {
			return fmt.Errorf("etcd: delete scale requests %s: %w", infraID, err)
		}
	}
	return nil
}

// eventRec is the stored form of an event (Seq is in the key).
type eventRec struct {
	Time     time.Time       `json:"time"`
	InfraID  string          `json:"infra_id,omitempty"`
	NodeName string          `json:"node_name,omitempty"`
	NodeID   string          `json:"node_id,omitempty"`
	Kind     string          `json:"kind,omitempty"`
	From     string          `json:"from,omitempty"`
	To       string          `json:"to,omitempty"`
	Message  string          `json:"message,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
}

// AppendEvent implements store.Store: the counter, both logs and the
// group marker in one transaction.
func (s *Store) AppendEvent(ctx context.Context, e store.Event) error {
	if len(e.Data) != 0 && !json.Valid(e.Data) {
		return fmt.Errorf("etcd: append event %s: data: invalid JSON", e.Kind)
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	r := eventRec{Time: e.Time.UTC(), InfraID: e.InfraID, NodeName: e.NodeName, NodeID: e.NodeID, Kind: e.Kind,
		From: e.From, To: e.To, Message: e.Message, Data: e.Data}
	if len(r.Data) == 0 {
		r.Data = nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("etcd: append event %s: %w", e.Kind, err)
	}
	_, _, err = s.next(ctx, "event", nil, func(n int64) []clientv3.Op {
		return []clientv3.Op{clientv3.OpPut(s.kEv(n), string(b)), clientv3.OpPut(s.kEvi(e.InfraID)+seqStr(n), string(b)),
			clientv3.OpPut(s.kEvg(e.InfraID), e.InfraID)}
	})
	if err != nil {
		return fmt.Errorf("etcd: append event %s: %w", e.Kind, err)
	}
	return nil
}

func decodeEvent(seq int64, data []byte) (store.Event, error) {
	var r eventRec
	if err := json.Unmarshal(data, &r); err != nil {
		return store.Event{}, err
	}
	return store.Event{Seq: seq, Time: r.Time, InfraID: r.InfraID, NodeName: r.NodeName, NodeID: r.NodeID,
		Kind: r.Kind, From: r.From, To: r.To, Message: r.Message, Data: r.Data}, nil
}

// eventsPage is how many events one read of Events takes.
const eventsPage = 500

// Events implements store.Store. The log of all events skips the entries
// of deleted infrastructures (see the package comment).
func (s *Store) Events(ctx context.Context, infraID string, after int64, limit int) ([]store.Event, error) {
	p := s.k("ev/")
	if infraID != "" {
		p = s.kEvi(infraID)
	}
	var gone map[string]int64
	if infraID == "" {
		var err error
		if gone, err = s.tombstones(ctx); err != nil {
			return nil, fmt.Errorf("etcd: events: %w", err)
		}
	}
	end := clientv3.GetPrefixRangeEnd(p)
	var out []store.Event
	from := p + seqStr(max(after, 0)+1)
	for {
		g, err := s.c.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(eventsPage))
		if err != nil {
			return nil, fmt.Errorf("etcd: events %s: %w", infraID, err)
		}
		for _, kv := range g.Kvs {
			seq, err := strconv.ParseInt(strings.TrimPrefix(string(kv.Key), p), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("etcd: events %s: bad key %q", infraID, kv.Key)
			}
			e, err := decodeEvent(seq, kv.Value)
			if err != nil {
				return nil, fmt.Errorf("etcd: events %s: %d: %w", infraID, seq, err)
			}
			if rev, ok := gone[e.InfraID]; ok && kv.CreateRevision < rev {
				continue
			}
			out = append(out, e)
			if limit > 0 && len(out) == limit {
				return out, nil
			}
		}
		if !g.More {
			return out, nil
		}
		from = string(g.Kvs[len(g.Kvs)-1].Key) + "\x00"
	}
}

// tombstones maps each deleted infrastructure to the revision of its
// deletion.
func (s *Store) tombstones(ctx context.Context) (map[string]int64, error) {
	g, err := s.c.Get(ctx, s.k("gone/"), clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	m := make(map[string]int64, len(g.Kvs))
	for _, kv := range g.Kvs {
		m[string(kv.Value)] = kv.ModRevision
	}
	return m, nil
}

// pruneBatch bounds the events one transaction of PruneEvents removes
// (two deletes each). A variable for tests.
var pruneBatch = 50

// PruneEvents implements store.Store. Per group (evg/), first the count
// bound, then the age bound, in transactions of at most pruneBatch events
// that remove each from both logs; then the hidden entries of deleted
// infrastructures go from the log of all events, uncounted, and
// tombstones with none left.
func (s *Store) PruneEvents(ctx context.Context, olderThan time.Time, keepPerInfra int) (int, error) {
	if keepPerInfra < 0 {
		return 0, fmt.Errorf("etcd: prune events: keepPerInfra %d < 0", keepPerInfra)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("etcd: prune events: %w", err)
	}
	removed := 0
	if !olderThan.IsZero() || keepPerInfra > 0 {
		g, err := s.c.Get(ctx, s.k("evg/"), clientv3.WithPrefix())
		if err != nil {
			return 0, fmt.Errorf("etcd: prune events: %w", err)
		}
		for _, kv := range g.Kvs {
			id := string(kv.Value)
			n, err := s.pruneGroup(ctx, id, olderThan, keepPerInfra)
			removed += n
			if err != nil {
				return removed, fmt.Errorf("etcd: prune events %s: %w", id, err)
			}
		}
	}
	if err := s.pruneHidden(ctx); err != nil {
		return removed, fmt.Errorf("etcd: prune events: %w", err)
	}
	return removed, nil
}

// pruneGroup prunes the events of one infrastructure id.
func (s *Store) pruneGroup(ctx context.Context, id string, olderThan time.Time, keep int) (int, error) {
	p := s.kEvi(id)
	g, err := s.c.Get(ctx, p, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	var doomed []string // seq keys, oldest first
	excess := len(g.Kvs) - keep
	for i, kv := range g.Kvs {
		if keep > 0 && i < excess {
			doomed = append(doomed, strings.TrimPrefix(string(kv.Key), p))
			continue
		}
		if olderThan.IsZero() {
			continue
		}
		var r struct {
			Time time.Time `json:"time"`
		}
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return 0, fmt.Errorf("%s: %w", kv.Key, err)
		}
		if r.Time.Before(olderThan) {
			doomed = append(doomed, strings.TrimPrefix(string(kv.Key), p))
		}
	}
	removed := 0
	for chunk := range slices.Chunk(doomed, pruneBatch) {
		ops := make([]clientv3.Op, 0, 2*len(chunk))
		for _, seq := range chunk {
			ops = append(ops, clientv3.OpDelete(p+seq), clientv3.OpDelete(s.k("ev/"+seq)))
		}
		// Count what was there: another pruner may have gone first.
		var cmps []clientv3.Cmp
		for _, seq := range chunk {
			cmps = append(cmps, exists(p+seq))
		}
		ok, _, err := s.commit(ctx, cmps, ops...)
		if err != nil {
			return removed, err
		}
		if ok {
			removed += len(chunk)
			continue
		}
		for _, seq := range chunk { // one by one, counting each
			ok, _, err := s.commit(ctx, []clientv3.Cmp{exists(p + seq)}, clientv3.OpDelete(p+seq), clientv3.OpDelete(s.k("ev/"+seq)))
			if err != nil {
				return removed, err
			}
			if ok {
				removed++
			}
		}
	}
	if len(doomed) == len(g.Kvs) && len(doomed) > 0 {
		// The group is empty now, unless an event came meanwhile (it
		// puts evi/<id>/<seq> and evg/<id> together).
		cmp := clientv3.Compare(clientv3.CreateRevision(p), "=", 0).WithPrefix()
		if _, _, err := s.commit(ctx, []clientv3.Cmp{cmp}, clientv3.OpDelete(s.kEvg(id))); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// pruneHidden removes the entries of ev/ that DeleteInfra hid, and the
// tombstones that hide nothing any more.
func (s *Store) pruneHidden(ctx context.Context) error {
	gone, err := s.tombstones(ctx)
	if err != nil || len(gone) == 0 {
		return err
	}
	hiding := map[string]bool{}
	p := s.k("ev/")
	end := clientv3.GetPrefixRangeEnd(p)
	g0, err := s.c.Get(ctx, s.k("gone/"), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	scanRev := g0.Header.Revision
	for from := p; ; {
		g, err := s.c.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(eventsPage), clientv3.WithRev(scanRev))
		if err != nil {
			return err
		}
		var ops []clientv3.Op
		for _, kv := range g.Kvs {
			var r struct {
				InfraID string `json:"infra_id"`
			}
			if err := json.Unmarshal(kv.Value, &r); err != nil {
				return fmt.Errorf("%s: %w", kv.Key, err)
			}
			if rev, ok := gone[r.InfraID]; ok && kv.CreateRevision < rev {
				hiding[r.InfraID] = true
				ops = append(ops, clientv3.OpDelete(string(kv.Key)))
			}
		}
		for chunk := range slices.Chunk(ops, maxTxnOps) {
			if _, _, err := s.commit(ctx, nil, chunk...); err != nil {
				return err
			}
		}
		if !g.More {
			break
		}
		from = string(g.Kvs[len(g.Kvs)-1].Key) + "\x00"
	}
	// Every hidden entry is gone now (none are made after a deletion), so
	// a tombstone that was not re-put since the scan began hides nothing.
	for id, rev := range gone {
		k := s.kGone(id)
		if _, _, err := s.commit(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(k), "=", rev)}, clientv3.OpDelete(k)); err != nil {
			return err
		}
	}
	return nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
