// Package redis implements store.Store and store.Leaser on Redis (go-redis
// v9). Any number of processes may share one Redis database; each change
// that touches more than one key runs as one Lua script or MULTI/EXEC
// transaction, so other clients see all of it or none.
//
// Keys, all under Options.Prefix (default "occopus:"):
//
//	meta              hash   the identity marker: id (a UUID), created_at;
//	                         made by the first Open, checked by Check; and
//	                         version, the layout (absent: before eventinfras;
//	                         2: with notify, see upgrade)
//	nodedefs          hash   node type -> definition (JSON list)
//	infra:<id>        hash   one infrastructure (fields below; origin
//	                         absent in records older than it: ""); the last
//	                         pass in pass_result, pass_error, pass_at,
//	                         pass_failures (absent before the first) and
//	                         the notify properties in notify (absent: none)
//	infras            zset   all infra ids, score 0, members ordered by
//	                         creation time then insertion (see orderMember)
//	instances:<id>    hash   node id -> instance JSON (instRec)
//	instorder:<id>    zset   node id, score = first-insert sequence
//	scale:<id>        hash   request id -> request JSON (scaleRec)
//	events            stream all events, entry id <seq>-0, field e = JSON
//	events:<id>       stream the events of one infra (same ids, the same
//	                         entries as in events); removed with the infra,
//	                         its entries in events too (DeleteInfra), and
//	                         removed by PruneEvents once empty
//	eventinfras       set    the ids <id> that have an events:<id> stream
//	                         (built by Open from events for older stores)
//	seq:infra, seq:instance, seq:scale, seq:event   INCR counters
//	lease:<key>       string lease owner, with PX expiry
//
// The type comes before the id in every key, so no id (whatever characters
// it holds) can make two keys collide.
//
// Times are stored as RFC 3339 UTC text with nanoseconds; they come back as
// the same instants in UTC. A zero time is stored as absent.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/occopus-go/occopus/store"
)

// DefaultPrefix is the key prefix when Options.Prefix is empty.
const DefaultPrefix = "occopus:"

// Options say where the store lives.
type Options struct {
	// Addr is host:port of the Redis server (default 127.0.0.1:6379).
	Addr string
	// DB is the database number.
	DB int
	// Password, if set, authenticates (AUTH password).
	Password string
	// Prefix goes before every key (default DefaultPrefix), so several
	// stores can share one database.
	Prefix string
}

// Store is a store.Store, store.Leaser and store.Checker on one Redis
// database.
type Store struct {
	c      *goredis.Client
	prefix string
	// where names the database in messages: address, number, prefix.
	where string
	// id is the identity marker read (or made) by Open.
	id string
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.Leaser     = (*Store)(nil)
	_ store.Checker    = (*Store)(nil)
	_ store.Identified = (*Store)(nil)
)

// markerScript: KEYS meta; ARGV a new id, the time now. Makes the marker
// unless there is one and returns the id in it.
var markerScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
	redis.call('HSET', KEYS[1], 'id', ARGV[1], 'created_at', ARGV[2])
end
return redis.call('HGET', KEYS[1], 'id')
`)

// Open connects to Redis, checks the connection with PING and reads the
// store's identity marker, making it when there is none: on first use, and
// for a store written before markers existed. Redis has no schema that can
// be lost in part; a store whose keys are all gone (FLUSHDB, a restart
// without persistence) looks new to Open, so the marker is what Check
// compares, while a process that opened the store runs.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:6379"
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	c := goredis.NewClient(&goredis.Options{
		Addr:     opts.Addr,
		DB:       opts.DB,
		Password: opts.Password,
		// Deadlines of the caller's ctx bound each network round trip.
		ContextTimeoutEnabled: true,
		// Skip CLIENT SETINFO: older servers reject it, and it is noise.
		DisableIdentity: true,
	})
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis: open %s db %d: %w", opts.Addr, opts.DB, err)
	}
	s := &Store{c: c, prefix: opts.Prefix, where: fmt.Sprintf("%s db %d prefix %q", opts.Addr, opts.DB, opts.Prefix)}
	id, err := markerScript.Run(ctx, c, []string{s.kMeta()}, uuid.NewString(), formatTime(time.Now())).Text()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("redis: open %s: identity marker: %w", s.where, err)
	}
	s.id = id
	if err := s.upgrade(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis: open %s: %w", s.where, err)
	}
	return s, nil
}

// Layout versions, meta's version field (absent: 0), so that each
// upgrade of a store written by older code is done once.
const (
	// layoutEventInfras: eventinfras is kept.
	layoutEventInfras = 1
	// layoutNotify: notify properties are the notify field of the infra
	// hash, and those kept in events of kind store.LegacyNotifyKind were
	// imported.
	layoutNotify = 2
)

// raiseVersionScript: KEYS meta; ARGV version. Sets the version unless
// it is at least that already (a newer process got there first).
var raiseVersionScript = goredis.NewScript(`
local v = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if v < tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'version', ARGV[1]) end
return 0
`)

// upgrade brings a store written by older code to the last layout
// version, one step after the other, each followed by its version, so that a step cut
// short (a crash) is done again by the next Open. Steps are safe to run
// again and by several processes at once.
func (s *Store) upgrade(ctx context.Context) error {
	v, err := s.c.HGet(ctx, s.kMeta(), "version").Int()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("layout version: %w", err)
	}
	steps := []struct {
		version int
		fn      func(context.Context) error
	}{
		{layoutEventInfras, s.indexEvents},
		{layoutNotify, s.importNotify},
	}
	for _, st := range steps {
		if v >= st.version {
			continue
		}
		if err := st.fn(ctx); err != nil {
			return err
		}
		if err := raiseVersionScript.Run(ctx, s.c, []string{s.kMeta()}, st.version).Err(); err != nil {
			return fmt.Errorf("layout version: %w", err)
		}
	}
	return nil
}

// indexEvents builds eventinfras for a store written before it was kept:
// the infra id of every entry of events, read in pages of 100. Stores
// written since keep it up to date with each AppendEvent; running this
// again (after a crash, or by two processes at once) only adds ids
// already there.
func (s *Store) indexEvents(ctx context.Context) error {
	for start := "-"; ; {
		msgs, err := s.c.XRangeN(ctx, s.kEvents(), start, "+", 100).Result()
		if err != nil {
			return fmt.Errorf("index events: %w", err)
		}
		ids := map[string]bool{}
		for _, m := range msgs {
			data, _ := m.Values["e"].(string)
			var r eventRec
			if err := json.Unmarshal([]byte(data), &r); err != nil {
				return fmt.Errorf("index events: %s: %w", m.ID, err)
			}
			ids[r.InfraID] = true
		}
		if len(ids) > 0 {
			members := make([]any, 0, len(ids))
			for id := range ids {
				members = append(members, id)
			}
			if err := s.c.SAdd(ctx, s.kEventInfras(), members...).Err(); err != nil {
				return fmt.Errorf("index events: %w", err)
			}
		}
		if len(msgs) < 100 {
			return nil
		}
		if start, err = nextID(msgs[len(msgs)-1].ID); err != nil {
			return fmt.Errorf("index events: %w", err)
		}
	}
}

// importNotifyScript: KEYS infra hash; ARGV notify properties. Sets the
// notify field unless the infra is gone or has one (set by SetNotify of
// a process that upgraded first).
var importNotifyScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HEXISTS', KEYS[1], 'notify') == 0 then
	redis.call('HSET', KEYS[1], 'notify', ARGV[1])
end
return 0
`)

// importNotify gives every infrastructure (read from infras in pages of
// 100, by member) the notify properties the REST service kept in events
// of kind store.LegacyNotifyKind before there was a notify field.
func (s *Store) importNotify(ctx context.Context) error {
	for start := "-"; ; {
		members, err := s.c.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: s.kInfras(), Start: start, Stop: "+",
			ByLex: true, Count: 100}).Result()
		if err != nil {
			return fmt.Errorf("import notify properties: %w", err)
		}
		for _, m := range members {
			if len(m) <= orderLen {
				continue // not a member createInfraScript made
			}
			if err := s.importNotifyOf(ctx, m[orderLen:]); err != nil {
				return fmt.Errorf("import notify properties: %s: %w", m[orderLen:], err)
			}
		}
		if len(members) < 100 {
			return nil
		}
		start = "(" + members[len(members)-1]
	}
}

// importNotifyOf imports the data of the newest event of kind
// store.LegacyNotifyKind of infrastructure id, reading its stream from
// the end in pages of 100. The newest is what was in force, so when it is
// JSON null or over store.MaxNotify nothing is imported.
func (s *Store) importNotifyOf(ctx context.Context, id string) error {
	for end := "+"; ; {
		msgs, err := s.c.XRevRangeN(ctx, s.kInfraEvents(id), end, "-", 100).Result()
		if err != nil {
			return err
		}
		for _, m := range msgs {
			data, _ := m.Values["e"].(string)
			var r eventRec
			if err := json.Unmarshal([]byte(data), &r); err != nil {
				return fmt.Errorf("%s: %w", m.ID, err)
			}
			if r.Kind != store.LegacyNotifyKind {
				continue
			}
			props, err := store.CheckNotify(json.RawMessage(r.Data))
			if err != nil || props == nil {
				return nil
			}
			return importNotifyScript.Run(ctx, s.c, []string{s.kInfra(id)}, string(props)).Err()
		}
		if len(msgs) < 100 {
			return nil
		}
		var ok bool
		if end, ok = prevID(msgs[len(msgs)-1].ID); !ok {
			return nil
		}
	}
}

// prevID is the stream entry id right before id (ms-seq); false for the
// first possible one, 0-0, or an id that is not ms-seq.
func prevID(id string) (string, bool) {
	ms, sq, ok := strings.Cut(id, "-")
	m, err1 := strconv.ParseUint(ms, 10, 64)
	n, err2 := strconv.ParseUint(sq, 10, 64)
	switch {
	case !ok || err1 != nil || err2 != nil:
		return "", false
	case n > 0:
		return ms + "-" + strconv.FormatUint(n-1, 10), true
	case m > 0:
		return strconv.FormatUint(m-1, 10) + "-" + strconv.FormatUint(math.MaxUint64, 10), true
	}
	return "", false
}

// nextID is the stream entry id right after id (ms-seq).
func nextID(id string) (string, error) {
	ms, sq, ok := strings.Cut(id, "-")
	n, err := strconv.ParseUint(sq, 10, 64)
	if !ok || err != nil {
		return "", fmt.Errorf("bad entry id %q", id)
	}
	return ms + "-" + strconv.FormatUint(n+1, 10), nil
}

// Check implements store.Checker: the identity marker must be there and be
// the one Open read; otherwise the data of the store was lost (FLUSHDB,
// FLUSHALL, a restart without persistence, eviction) and perhaps begun
// anew by another process.
func (s *Store) Check(ctx context.Context) error {
	id, err := s.c.HGet(ctx, s.kMeta(), "id").Result()
	if errors.Is(err, goredis.Nil) {
		return fmt.Errorf("redis: check %s: %w: the identity marker %s is gone, so the data of this store was lost "+
			"(FLUSHDB, a restart without persistence, eviction?); the infrastructures recorded in it are unknown now and may "+
			"still be running. Restore the data from a backup; restarting starts with an empty store",
			s.where, store.ErrNoIdentity, s.kMeta())
	}
	if err != nil {
		return fmt.Errorf("redis: check %s: %w", s.where, err)
	}
	if id != s.id {
		return fmt.Errorf("redis: check %s: %w: it is store %s, not store %s that this process opened: its data was "+
			"replaced while in use; restore the data from a backup, or restart to use the new store",
			s.where, store.ErrNoIdentity, id, s.id)
	}
	return nil
}

// ID implements store.Identified: the identity marker read (or made) by
// Open (Check tells whether Redis still holds it).
func (s *Store) ID(context.Context) (string, error) { return s.id, nil }

// Close closes the connections.
func (s *Store) Close() error { return s.c.Close() }

// Client returns the underlying client (for tests and tools).
func (s *Store) Client() *goredis.Client { return s.c }

// Key names.
func (s *Store) kMeta() string                 { return s.prefix + "meta" }
func (s *Store) kNodeDefs() string             { return s.prefix + "nodedefs" }
func (s *Store) kInfra(id string) string       { return s.prefix + "infra:" + id }
func (s *Store) kInfras() string               { return s.prefix + "infras" }
func (s *Store) kInstances(id string) string   { return s.prefix + "instances:" + id }
func (s *Store) kInstOrder(id string) string   { return s.prefix + "instorder:" + id }
func (s *Store) kScale(id string) string       { return s.prefix + "scale:" + id }
func (s *Store) kEvents() string               { return s.prefix + "events" }
func (s *Store) kInfraEvents(id string) string { return s.prefix + "events:" + id }
func (s *Store) kEventInfras() string          { return s.prefix + "eventinfras" }
func (s *Store) kSeq(what string) string       { return s.prefix + "seq:" + what }
func (s *Store) kLease(key string) string      { return s.prefix + "lease:" + key }

// PutNodeDefs implements store.Store. One HSET sets all fields atomically.
func (s *Store) PutNodeDefs(ctx context.Context, defs map[string]json.RawMessage) error {
	args := make([]any, 0, 2*len(defs))
	for typ, def := range defs {
		if !json.Valid(def) {
			return fmt.Errorf("redis: put node def %s: invalid JSON", typ)
		}
		args = append(args, typ, string(def))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis: put node defs: %w", err)
	}
	if len(args) == 0 {
		return nil
	}
	if err := s.c.HSet(ctx, s.kNodeDefs(), args...).Err(); err != nil {
		return fmt.Errorf("redis: put node defs: %w", err)
	}
	return nil
}

// NodeDef implements store.Store.
func (s *Store) NodeDef(ctx context.Context, typ string) (json.RawMessage, error) {
	def, err := s.c.HGet(ctx, s.kNodeDefs(), typ).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis: node def %s: %w", typ, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("redis: node def %s: %w", typ, err)
	}
	return json.RawMessage(def), nil
}

// NodeDefTypes implements store.Store.
func (s *Store) NodeDefTypes(ctx context.Context) ([]string, error) {
	types, err := s.c.HKeys(ctx, s.kNodeDefs()).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: node def types: %w", err)
	}
	slices.Sort(types)
	if len(types) == 0 {
		return nil, nil
	}
	return types, nil
}

// Infra hash fields.
const (
	fID       = "id"
	fName     = "name"
	fDesc     = "description"
	fTargets  = "targets"
	fAttached = "attached"
	fCreated  = "created_at"
	fUpdated  = "updated_at"
	fOrigin   = "origin"
	fOrder    = "order" // the member in the infras zset
	// LastPass (SetPassStatus), all four set together; absent before the
	// first pass. pass_error is "" when there is none.
	fPassResult   = "pass_result"
	fPassError    = "pass_error"
	fPassAt       = "pass_at"
	fPassFailures = "pass_failures"
	// Notify (SetNotify); absent when none.
	fNotify = "notify"
)

// createInfraScript: KEYS infra hash, infras zset, seq:infra; ARGV order
// prefix (creation time key), id, then field/value pairs. Returns 0 when the
// id is taken, else 1.
var createInfraScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local seq = redis.call('INCR', KEYS[3])
local member = ARGV[1] .. string.format('%016x', seq) .. ARGV[2]
redis.call('HSET', KEYS[1], 'order', member, unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], 0, member)
return 1
`)

// updateInfraScript: KEYS infra hash, scale hash; ARGV n, then n
// field/value pairs to set, then m, then m fields to delete, then scale
// request ids to delete. Returns 0 when the infra is missing, else 1.
var updateInfraScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = tonumber(ARGV[1])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 2, 1 + 2 * n)) end
local i = 2 + 2 * n
local m = tonumber(ARGV[i])
if m > 0 then redis.call('HDEL', KEYS[1], unpack(ARGV, i + 1, i + m)) end
-- in chunks: unpack is limited by the Lua C stack
for j = i + m + 1, #ARGV, 1000 do
	redis.call('HDEL', KEYS[2], unpack(ARGV, j, math.min(j + 999, #ARGV)))
end
return 1
`)

// luaNextID is a Lua function: the stream entry id right after id, the
// start of the next page of an XRANGE (exclusive ranges need Redis 6.2).
const luaNextID = `
local function nextID(id)
	local ms, sq = string.match(id, '^(%d+)%-(%d+)$')
	return ms .. '-' .. string.format('%d', tonumber(sq) + 1)
end
`

// deleteInfraScript: KEYS infra hash, infras zset, infra events stream,
// events stream, eventinfras, then the other keys to delete with it; ARGV
// the infra id. Returns 0 when the infra is missing, else 1. The infra's entries in the events stream have
// the ids of its own stream, read in pages of 100 (XRANGE returns whole
// entries, so a page's memory is bounded too); the script runs
// (atomically, blocking the server) for a time proportional to the
// infra's number of events, which PruneEvents bounds.
var deleteInfraScript = goredis.NewScript(luaNextID + `
local member = redis.call('HGET', KEYS[1], 'order')
if not member then return 0 end
redis.call('ZREM', KEYS[2], member)
local start = '-'
while true do
	local page = redis.call('XRANGE', KEYS[3], start, '+', 'COUNT', 100)
	local ids = {}
	for i, e in ipairs(page) do ids[i] = e[1] end
	if #ids > 0 then redis.call('XDEL', KEYS[4], unpack(ids)) end
	if #page < 100 then break end
	start = nextID(ids[#ids])
end
redis.call('SREM', KEYS[5], ARGV[1])
redis.call('DEL', KEYS[1], KEYS[3], unpack(KEYS, 6))
return 1
`)

// infrasScript: KEYS infras zset; ARGV infra key prefix, length of the
// order prefix of members. Returns the HGETALL of every infra in creation
// order, as one consistent snapshot. (It builds the infra keys itself, so
// it is for a single server, not Redis Cluster.)
var infrasScript = goredis.NewScript(`
local out = {}
for i, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
	out[i] = redis.call('HGETALL', ARGV[1] .. string.sub(m, tonumber(ARGV[2]) + 1))
end
return out
`)

// orderKey is the creation-time part of an infras member: fixed-width hex
// that sorts like the instant (zero time first), followed in the member by
// 16 hex digits of insertion sequence (ties keep insertion order) and the id.
func orderKey(t time.Time) string {
	return fmt.Sprintf("%016x%08x", uint64(t.Unix())^(1<<63), t.Nanosecond())
}

const orderLen = 16 + 8 + 16

// infraFields are the field/value pairs of in that are set, and the fields
// to delete because they are empty (only used by updates).
func infraFields(in store.Infra, withCreated bool) (set []any, del []any, err error) {
	if len(in.Description) != 0 && !json.Valid(in.Description) {
		return nil, nil, errors.New("description: invalid JSON")
	}
	if err := store.CheckOrigin(in.Origin); err != nil {
		return nil, nil, err
	}
	attached := "0"
	if in.Attached {
		attached = "1"
	}
	set = []any{fID, in.ID, fName, in.Name, fAttached, attached}
	opt := func(field, v string) {
		if v == "" {
			del = append(del, field)
		} else {
			set = append(set, field, v)
		}
	}
	opt(fDesc, string(in.Description))
	opt(fOrigin, in.Origin)
	var targets string
	if len(in.Targets) != 0 {
		b, err := json.Marshal(in.Targets)
		if err != nil {
			return nil, nil, fmt.Errorf("targets: %w", err)
		}
		targets = string(b)
	}
	opt(fTargets, targets)
	if withCreated {
		opt(fCreated, formatTime(in.CreatedAt))
	}
	opt(fUpdated, formatTime(in.UpdatedAt))
	return set, del, nil
}

func parseInfra(m map[string]string) (store.Infra, error) {
	in := store.Infra{
		ID:       m[fID],
		Name:     m[fName],
		Attached: m[fAttached] == "1",
		Origin:   m[fOrigin],
	}
	if d, ok := m[fDesc]; ok {
		in.Description = json.RawMessage(d)
	}
	if t, ok := m[fTargets]; ok {
		if err := json.Unmarshal([]byte(t), &in.Targets); err != nil {
			return in, fmt.Errorf("targets: %w", err)
		}
	}
	if n, ok := m[fNotify]; ok {
		in.Notify = json.RawMessage(n)
	}
	var err error
	if in.CreatedAt, err = parseTime(m[fCreated]); err != nil {
		return in, err
	}
	if in.UpdatedAt, err = parseTime(m[fUpdated]); err != nil {
		return in, err
	}
	if r, ok := m[fPassResult]; ok {
		in.LastPass.Result, in.LastPass.Error = r, m[fPassError]
		if in.LastPass.At, err = parseTime(m[fPassAt]); err != nil {
			return in, fmt.Errorf("pass status: %w", err)
		}
		if in.LastPass.Failures, err = strconv.Atoi(m[fPassFailures]); err != nil {
			return in, fmt.Errorf("pass status: failures: %w", err)
		}
	}
	return in, nil
}

// CreateInfra implements store.Store.
func (s *Store) CreateInfra(ctx context.Context, in store.Infra) error {
	set, _, err := infraFields(in, true)
	if err != nil {
		return fmt.Errorf("redis: create infra %s: %w", in.ID, err)
	}
	args := append([]any{orderKey(in.CreatedAt), in.ID}, set...)
	ok, err := s.run(ctx, createInfraScript, []string{s.kInfra(in.ID), s.kInfras(), s.kSeq("infra")}, args...).Int()
	if err != nil {
		return fmt.Errorf("redis: create infra %s: %w", in.ID, err)
	}
	if ok == 0 {
		return fmt.Errorf("redis: create infra %s: %w", in.ID, store.ErrExists)
	}
	return nil
}

// updateInfra runs updateInfraScript.
func (s *Store) updateInfra(ctx context.Context, id string, set, del []any, consumed []int64) (bool, error) {
	args := make([]any, 0, 2+len(set)+len(del)+len(consumed))
	args = append(args, len(set)/2)
	args = append(args, set...)
	args = append(args, len(del))
	args = append(args, del...)
	for _, c := range consumed {
		args = append(args, c)
	}
	ok, err := s.run(ctx, updateInfraScript, []string{s.kInfra(id), s.kScale(id)}, args...).Int()
	return ok == 1, err
}

// UpdateInfra implements store.Store. UpdatedAt is set from in.UpdatedAt,
// or to the current time when that is zero; CreatedAt is kept.
func (s *Store) UpdateInfra(ctx context.Context, in store.Infra) error {
	if in.UpdatedAt.IsZero() {
		in.UpdatedAt = time.Now()
	}
	set, del, err := infraFields(in, false)
	if err != nil {
		return fmt.Errorf("redis: update infra %s: %w", in.ID, err)
	}
	ok, err := s.updateInfra(ctx, in.ID, set, del, nil)
	if err != nil {
		return fmt.Errorf("redis: update infra %s: %w", in.ID, err)
	}
	if !ok {
		return fmt.Errorf("redis: update infra %s: %w", in.ID, store.ErrNotFound)
	}
	return nil
}

// UpdateTargets implements store.Store.
func (s *Store) UpdateTargets(ctx context.Context, infraID string, targets map[string]int, consumed []int64) error {
	set := []any{fUpdated, formatTime(time.Now())}
	var del []any
	if len(targets) == 0 {
		del = []any{fTargets}
	} else {
		b, err := json.Marshal(targets)
		if err != nil {
			return fmt.Errorf("redis: update targets %s: %w", infraID, err)
		}
		set = append(set, fTargets, string(b))
	}
	ok, err := s.updateInfra(ctx, infraID, set, del, consumed)
	if err != nil {
		return fmt.Errorf("redis: update targets %s: %w", infraID, err)
	}
	if !ok {
		return fmt.Errorf("redis: update targets %s: %w", infraID, store.ErrNotFound)
	}
	return nil
}

// Infra implements store.Store.
func (s *Store) Infra(ctx context.Context, id string) (store.Infra, error) {
	m, err := s.c.HGetAll(ctx, s.kInfra(id)).Result()
	if err != nil {
		return store.Infra{}, fmt.Errorf("redis: infra %s: %w", id, err)
	}
	if len(m) == 0 {
		return store.Infra{}, fmt.Errorf("redis: infra %s: %w", id, store.ErrNotFound)
	}
	in, err := parseInfra(m)
	if err != nil {
		return store.Infra{}, fmt.Errorf("redis: infra %s: %w", id, err)
	}
	return in, nil
}

// Infras implements store.Store. Ties in creation time keep insertion order.
func (s *Store) Infras(ctx context.Context) ([]store.Infra, error) {
	res, err := infrasScript.Run(ctx, s.c, []string{s.kInfras()}, s.kInfra(""), orderLen).Slice()
	if err != nil {
		return nil, fmt.Errorf("redis: infras: %w", err)
	}
	out := make([]store.Infra, 0, len(res))
	for _, r := range res {
		flat, ok := r.([]any)
		if !ok || len(flat)%2 != 0 {
			return nil, fmt.Errorf("redis: infras: unexpected reply %T", r)
		}
		if len(flat) == 0 {
			continue // member without record: not expected, skip
		}
		m := make(map[string]string, len(flat)/2)
		for i := 0; i < len(flat); i += 2 {
			k, _ := flat[i].(string)
			v, _ := flat[i+1].(string)
			m[k] = v
		}
		in, err := parseInfra(m)
		if err != nil {
			return nil, fmt.Errorf("redis: infras: %s: %w", m[fID], err)
		}
		out = append(out, in)
	}
	return out, nil
}

// DeleteInfra implements store.Store: the infra, its instances, its
// scaling requests and its events (its stream, and its entries in the
// stream of all events) go in one script.
func (s *Store) DeleteInfra(ctx context.Context, id string) error {
	keys := []string{s.kInfra(id), s.kInfras(), s.kInfraEvents(id), s.kEvents(), s.kEventInfras(),
		s.kInstances(id), s.kInstOrder(id), s.kScale(id)}
	ok, err := s.run(ctx, deleteInfraScript, keys, id).Int()
	if err != nil {
		return fmt.Errorf("redis: delete infra %s: %w", id, err)
	}
	if ok == 0 {
		return fmt.Errorf("redis: delete infra %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// setFieldsScript: KEYS infra hash; ARGV n, then n field/value pairs to
// set, then the fields to delete. Returns 0 when the infra is missing,
// else 1. One script, so the fields change together, and never on a
// record that is gone (HSET would make a new one).
var setFieldsScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = tonumber(ARGV[1])
if n > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, 2, 1 + 2 * n)) end
if #ARGV > 1 + 2 * n then redis.call('HDEL', KEYS[1], unpack(ARGV, 2 + 2 * n)) end
return 1
`)

// setFields runs setFieldsScript.
func (s *Store) setFields(ctx context.Context, id string, set []any, del ...any) (bool, error) {
	args := make([]any, 0, 1+len(set)+len(del))
	args = append(args, len(set)/2)
	args = append(args, set...)
	args = append(args, del...)
	ok, err := s.run(ctx, setFieldsScript, []string{s.kInfra(id)}, args...).Int()
	return ok == 1, err
}

// SetPassStatus implements store.Store: the four pass fields of the
// infra hash, in one script.
func (s *Store) SetPassStatus(ctx context.Context, id string, ps store.PassStatus) error {
	if err := ps.Check(); err != nil {
		return fmt.Errorf("redis: set pass status %s: %w", id, err)
	}
	if ps.At.IsZero() {
		ps.At = time.Now()
	}
	set := []any{fPassResult, ps.Result, fPassError, store.CutString(ps.Error, store.MaxPassError),
		fPassAt, formatTime(ps.At), fPassFailures, ps.Failures}
	ok, err := s.setFields(ctx, id, set)
	if err != nil {
		return fmt.Errorf("redis: set pass status %s: %w", id, err)
	}
	if !ok {
		return fmt.Errorf("redis: set pass status %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// SetNotify implements store.Store: the notify field of the infra hash,
// set or deleted by one script.
func (s *Store) SetNotify(ctx context.Context, id string, props json.RawMessage) error {
	props, err := store.CheckNotify(props)
	if err != nil {
		return fmt.Errorf("redis: set notify %s: %w", id, err)
	}
	var ok bool
	if props == nil {
		ok, err = s.setFields(ctx, id, nil, fNotify)
	} else {
		ok, err = s.setFields(ctx, id, []any{fNotify, string(props)})
	}
	if err != nil {
		return fmt.Errorf("redis: set notify %s: %w", id, err)
	}
	if !ok {
		return fmt.Errorf("redis: set notify %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// instRec is the stored form of an instance (the infra and node ids are
// the key and field). JSON documents are kept as strings, byte for byte.
type instRec struct {
	NodeName     string `json:"node_name,omitempty"`
	State        string `json:"state,omitempty"`
	Backend      string `json:"backend,omitempty"`
	Impl         int    `json:"impl,omitempty"`
	Resource     string `json:"resource,omitempty"`
	Handle       string `json:"handle,omitempty"`
	Address      string `json:"address,omitempty"`
	PrivAddress  string `json:"priv_address,omitempty"`
	FailingSince string `json:"failing_since,omitempty"`
	Error        string `json:"error,omitempty"`
	Owner        string `json:"owner,omitempty"`
	CreatedAt    string `json:"created_at,omitempty"`
	UpdatedAt    string `json:"updated_at,omitempty"`
}

func (s *Store) encodeInstance(in store.Instance) (string, error) {
	for field, m := range map[string]json.RawMessage{"resource": in.Resource, "handle": in.Handle} {
		if len(m) != 0 && !json.Valid(m) {
			return "", fmt.Errorf("%s: invalid JSON", field)
		}
	}
	b, err := json.Marshal(instRec{
		NodeName: in.NodeName, State: in.State, Backend: in.Backend, Impl: in.Impl,
		Resource: string(in.Resource), Handle: string(in.Handle),
		Address: in.Address, PrivAddress: in.PrivAddress, FailingSince: formatTime(in.FailingSince),
		Error: in.Error, Owner: in.Owner, CreatedAt: formatTime(in.CreatedAt), UpdatedAt: formatTime(in.UpdatedAt),
	})
	return string(b), err
}

func decodeInstance(infraID, nodeID, data string) (store.Instance, error) {
	var r instRec
	if err := json.Unmarshal([]byte(data), &r); err != nil {
		return store.Instance{}, err
	}
	in := store.Instance{
		InfraID: infraID, NodeID: nodeID, NodeName: r.NodeName, State: r.State, Backend: r.Backend,
		Impl: r.Impl, Resource: raw(r.Resource), Handle: raw(r.Handle), Address: r.Address,
		PrivAddress: r.PrivAddress, Error: r.Error, Owner: r.Owner,
	}
	var err error
	if in.FailingSince, err = parseTime(r.FailingSince); err != nil {
		return in, err
	}
	if in.CreatedAt, err = parseTime(r.CreatedAt); err != nil {
		return in, err
	}
	if in.UpdatedAt, err = parseTime(r.UpdatedAt); err != nil {
		return in, err
	}
	return in, nil
}

// putInstanceScript: KEYS infra hash, instances hash, instorder zset,
// seq:instance; ARGV node id, record. Returns 0 when the infra is missing.
var putInstanceScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then
	redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[4]), ARGV[1])
end
return 1
`)

// PutInstance implements store.Store. A replaced instance keeps its place
// among instances with the same creation time.
func (s *Store) PutInstance(ctx context.Context, in store.Instance) error {
	rec, err := s.encodeInstance(in)
	if err != nil {
		return fmt.Errorf("redis: put instance %s/%s: %w", in.InfraID, in.NodeID, err)
	}
	keys := []string{s.kInfra(in.InfraID), s.kInstances(in.InfraID), s.kInstOrder(in.InfraID), s.kSeq("instance")}
	ok, err := s.run(ctx, putInstanceScript, keys, in.NodeID, rec).Int()
	if err != nil {
		return fmt.Errorf("redis: put instance %s/%s: %w", in.InfraID, in.NodeID, err)
	}
	if ok == 0 {
		return fmt.Errorf("redis: put instance %s/%s: infra: %w", in.InfraID, in.NodeID, store.ErrNotFound)
	}
	return nil
}

// putInstancesScript is putInstanceScript and appendEventScript for many,
// in one script: atomic, and nothing is written when an infrastructure is
// missing. KEYS: instance seq, events, event seq, event infras, then
// (infra, instances, order) per instance, then the infra's events per
// event. ARGV: #instances, #events, (node id, record) per instance,
// (event, infra id) per event.
var putInstancesScript = goredis.NewScript(`
local ni, ne = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 0, ni - 1 do
	if redis.call('EXISTS', KEYS[5 + 3*i]) == 0 then return i + 1 end
end
for i = 0, ni - 1 do
	local node = ARGV[3 + 2*i]
	redis.call('HSET', KEYS[6 + 3*i], node, ARGV[4 + 2*i])
	if not redis.call('ZSCORE', KEYS[7 + 3*i], node) then
		redis.call('ZADD', KEYS[7 + 3*i], redis.call('INCR', KEYS[1]), node)
	end
end
for j = 0, ne - 1 do
	local ev, infra = ARGV[3 + 2*ni + 2*j], ARGV[4 + 2*ni + 2*j]
	local id = string.format('%d-0', redis.call('INCR', KEYS[3]))
	redis.call('XADD', KEYS[2], id, 'e', ev)
	redis.call('XADD', KEYS[5 + 3*ni + j], id, 'e', ev)
	redis.call('SADD', KEYS[4], infra)
end
return 0
`)

// PutInstances implements store.Store, in one Lua script.
func (s *Store) PutInstances(ctx context.Context, ins []store.Instance, evs []store.Event) error {
	if len(ins) == 0 && len(evs) == 0 {
		return nil
	}
	keys := []string{s.kSeq("instance"), s.kEvents(), s.kSeq("event"), s.kEventInfras()}
	args := []any{len(ins), len(evs)}
	for _, in := range ins {
		rec, err := s.encodeInstance(in)
		if err != nil {
			return fmt.Errorf("redis: put instance %s/%s: %w", in.InfraID, in.NodeID, err)
		}
		keys = append(keys, s.kInfra(in.InfraID), s.kInstances(in.InfraID), s.kInstOrder(in.InfraID))
		args = append(args, in.NodeID, rec)
	}
	for _, e := range evs {
		if len(e.Data) != 0 && !json.Valid(e.Data) {
			return fmt.Errorf("redis: put instances: event %s: data: invalid JSON", e.Kind)
		}
		if e.Time.IsZero() {
			e.Time = time.Now()
		}
		b, err := json.Marshal(eventRec{Time: formatTime(e.Time), InfraID: e.InfraID, NodeName: e.NodeName,
			NodeID: e.NodeID, Kind: e.Kind, From: e.From, To: e.To, Message: e.Message, Data: string(e.Data)})
		if err != nil {
			return fmt.Errorf("redis: put instances: event %s: %w", e.Kind, err)
		}
		keys = append(keys, s.kInfraEvents(e.InfraID))
		args = append(args, string(b), e.InfraID)
	}
	missing, err := putInstancesScript.Run(ctx, s.c, keys, args...).Int()
	if err != nil {
		return fmt.Errorf("redis: put instances: %w", err)
	}
	if missing > 0 {
		in := ins[missing-1]
		return fmt.Errorf("redis: put instance %s/%s: infra: %w", in.InfraID, in.NodeID, store.ErrNotFound)
	}
	return nil
}

// Instance implements store.Store.
func (s *Store) Instance(ctx context.Context, infraID, nodeID string) (store.Instance, error) {
	data, err := s.c.HGet(ctx, s.kInstances(infraID), nodeID).Result()
	if errors.Is(err, goredis.Nil) {
		return store.Instance{}, fmt.Errorf("redis: instance %s/%s: %w", infraID, nodeID, store.ErrNotFound)
	}
	if err != nil {
		return store.Instance{}, fmt.Errorf("redis: instance %s/%s: %w", infraID, nodeID, err)
	}
	in, err := decodeInstance(infraID, nodeID, data)
	if err != nil {
		return store.Instance{}, fmt.Errorf("redis: instance %s/%s: %w", infraID, nodeID, err)
	}
	return in, nil
}

// Instances implements store.Store: by creation time, ties in order of
// first insertion.
func (s *Store) Instances(ctx context.Context, infraID string) ([]store.Instance, error) {
	var all *goredis.MapStringStringCmd
	var order *goredis.ZSliceCmd
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		all = p.HGetAll(ctx, s.kInstances(infraID))
		order = p.ZRangeWithScores(ctx, s.kInstOrder(infraID), 0, -1)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redis: instances %s: %w", infraID, err)
	}
	seq := make(map[string]float64, len(order.Val()))
	for _, z := range order.Val() {
		if m, ok := z.Member.(string); ok {
			seq[m] = z.Score
		}
	}
	out := make([]store.Instance, 0, len(all.Val()))
	for nodeID, data := range all.Val() {
		in, err := decodeInstance(infraID, nodeID, data)
		if err != nil {
			return nil, fmt.Errorf("redis: instances %s: %s: %w", infraID, nodeID, err)
		}
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b store.Instance) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		if sa, sb := seq[a.NodeID], seq[b.NodeID]; sa != sb {
			if sa < sb {
				return -1
			}
			return 1
		}
		return strings.Compare(a.NodeID, b.NodeID)
	})
	return out, nil
}

// DeleteInstance implements store.Store.
func (s *Store) DeleteInstance(ctx context.Context, infraID, nodeID string) error {
	del := func(p goredis.Pipeliner) error {
		p.HDel(ctx, s.kInstances(infraID), nodeID)
		p.ZRem(ctx, s.kInstOrder(infraID), nodeID)
		return nil
	}
	err := s.fenced(ctx, func(c goredis.Cmdable) error {
		if p, ok := c.(goredis.Pipeliner); ok { // fenced: in its MULTI already
			return del(p)
		}
		_, err := c.TxPipelined(ctx, del)
		return err
	})
	if err != nil {
		return fmt.Errorf("redis: delete instance %s/%s: %w", infraID, nodeID, err)
	}
	return nil
}

// scaleRec is the stored form of a scaling request (id and infra are the
// field and key).
type scaleRec struct {
	NodeName  string `json:"node_name,omitempty"`
	Delta     int    `json:"delta,omitempty"`
	Set       *int   `json:"set,omitempty"`
	Victim    string `json:"victim,omitempty"`
	CreatedAt string `json:"created_at,omitempty"`
}

// addScaleScript: KEYS infra hash, scale hash, seq:scale; ARGV record.
// Returns the new id, or 0 when the infra is missing.
var addScaleScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local id = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[2], id, ARGV[1])
return id
`)

// AddScaleRequest implements store.Store. The infrastructure must exist
// (ErrNotFound otherwise).
func (s *Store) AddScaleRequest(ctx context.Context, r store.ScaleRequest) (store.ScaleRequest, error) {
	b, err := json.Marshal(scaleRec{NodeName: r.NodeName, Delta: r.Delta, Set: r.Set, Victim: r.Victim,
		CreatedAt: formatTime(r.CreatedAt)})
	if err != nil {
		return store.ScaleRequest{}, fmt.Errorf("redis: add scale request %s: %w", r.InfraID, err)
	}
	keys := []string{s.kInfra(r.InfraID), s.kScale(r.InfraID), s.kSeq("scale")}
	id, err := s.run(ctx, addScaleScript, keys, string(b)).Int64()
	if err != nil {
		return store.ScaleRequest{}, fmt.Errorf("redis: add scale request %s: %w", r.InfraID, err)
	}
	if id == 0 {
		return store.ScaleRequest{}, fmt.Errorf("redis: add scale request %s: infra: %w", r.InfraID, store.ErrNotFound)
	}
	r.ID = id
	return r, nil
}

// ScaleRequests implements store.Store.
func (s *Store) ScaleRequests(ctx context.Context, infraID string) ([]store.ScaleRequest, error) {
	all, err := s.c.HGetAll(ctx, s.kScale(infraID)).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: scale requests %s: %w", infraID, err)
	}
	out := make([]store.ScaleRequest, 0, len(all))
	for field, data := range all {
		id, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redis: scale requests %s: bad id %q", infraID, field)
		}
		var rec scaleRec
		if err := json.Unmarshal([]byte(data), &rec); err != nil {
			return nil, fmt.Errorf("redis: scale requests %s: %d: %w", infraID, id, err)
		}
		r := store.ScaleRequest{ID: id, InfraID: infraID, NodeName: rec.NodeName, Delta: rec.Delta,
			Set: rec.Set, Victim: rec.Victim}
		if r.CreatedAt, err = parseTime(rec.CreatedAt); err != nil {
			return nil, fmt.Errorf("redis: scale requests %s: %d: %w", infraID, id, err)
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b store.ScaleRequest) int { return cmpInt(a.ID, b.ID) })
	return out, nil
}

// DeleteScaleRequests implements store.Store. Unknown ids are ignored.
func (s *Store) DeleteScaleRequests(ctx context.Context, infraID string, ids []int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis: delete scale requests %s: %w", infraID, err)
	}
	if len(ids) == 0 {
		return nil
	}
	fields := make([]string, len(ids))
	for i, id := range ids {
		fields[i] = strconv.FormatInt(id, 10)
	}
	if err := s.fenced(ctx, func(c goredis.Cmdable) error { return c.HDel(ctx, s.kScale(infraID), fields...).Err() }); err != nil {
		return fmt.Errorf("redis: delete scale requests %s: %w", infraID, err)
	}
	return nil
}

// eventRec is the stored form of an event (Seq is the stream entry id).
type eventRec struct {
	Time     string `json:"time"`
	InfraID  string `json:"infra_id,omitempty"`
	NodeName string `json:"node_name,omitempty"`
	NodeID   string `json:"node_id,omitempty"`
	Kind     string `json:"kind,omitempty"`
	From     string `json:"from,omitempty"`
	To       string `json:"to,omitempty"`
	Message  string `json:"message,omitempty"`
	Data     string `json:"data,omitempty"`
}

// appendEventScript: KEYS events stream, infra events stream, seq:event,
// eventinfras; ARGV record, infra id. Both streams get entry id <seq>-0.
var appendEventScript = goredis.NewScript(`
local id = string.format('%d-0', redis.call('INCR', KEYS[3]))
redis.call('XADD', KEYS[1], id, 'e', ARGV[1])
redis.call('XADD', KEYS[2], id, 'e', ARGV[1])
redis.call('SADD', KEYS[4], ARGV[2])
return id
`)

// AppendEvent implements store.Store.
func (s *Store) AppendEvent(ctx context.Context, e store.Event) error {
	if len(e.Data) != 0 && !json.Valid(e.Data) {
		return fmt.Errorf("redis: append event %s: data: invalid JSON", e.Kind)
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	b, err := json.Marshal(eventRec{Time: formatTime(e.Time), InfraID: e.InfraID, NodeName: e.NodeName,
		NodeID: e.NodeID, Kind: e.Kind, From: e.From, To: e.To, Message: e.Message, Data: string(e.Data)})
	if err != nil {
		return fmt.Errorf("redis: append event %s: %w", e.Kind, err)
	}
	keys := []string{s.kEvents(), s.kInfraEvents(e.InfraID), s.kSeq("event"), s.kEventInfras()}
	if err := s.run(ctx, appendEventScript, keys, string(b), e.InfraID).Err(); err != nil {
		return fmt.Errorf("redis: append event %s: %w", e.Kind, err)
	}
	return nil
}

// Events implements store.Store.
func (s *Store) Events(ctx context.Context, infraID string, after int64, limit int) ([]store.Event, error) {
	key := s.kEvents()
	if infraID != "" {
		key = s.kInfraEvents(infraID)
	}
	// Entry ids are <seq>-0, so <after>-1 is the first id past after.
	start := strconv.FormatInt(max(after, 0), 10) + "-1"
	var (
		msgs []goredis.XMessage
		err  error
	)
	if limit > 0 {
		msgs, err = s.c.XRangeN(ctx, key, start, "+", int64(limit)).Result()
	} else {
		msgs, err = s.c.XRange(ctx, key, start, "+").Result()
	}
	if err != nil {
		return nil, fmt.Errorf("redis: events %s: %w", infraID, err)
	}
	out := make([]store.Event, 0, len(msgs))
	for _, m := range msgs {
		seqStr, _, _ := strings.Cut(m.ID, "-")
		seq, err := strconv.ParseInt(seqStr, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redis: events %s: bad entry id %q", infraID, m.ID)
		}
		data, _ := m.Values["e"].(string)
		var r eventRec
		if err := json.Unmarshal([]byte(data), &r); err != nil {
			return nil, fmt.Errorf("redis: events %s: %d: %w", infraID, seq, err)
		}
		e := store.Event{Seq: seq, InfraID: r.InfraID, NodeName: r.NodeName, NodeID: r.NodeID, Kind: r.Kind,
			From: r.From, To: r.To, Message: r.Message, Data: raw(r.Data)}
		if e.Time, err = parseTime(r.Time); err != nil {
			return nil, fmt.Errorf("redis: events %s: %d: %w", infraID, seq, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// pruneBatch bounds the entries one script of PruneEvents removes or
// examines, so that the server is never blocked long and the script's
// memory (XRANGE returns whole entries) stays small. A variable for tests.
var pruneBatch = 100

// pruneCountScript: KEYS infra events stream, events stream, eventinfras;
// ARGV keep, batch, infra id. Removes the oldest entries beyond keep, at
// most batch, from both streams; returns how many. An id whose stream is
// gone leaves eventinfras.
var pruneCountScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
	redis.call('SREM', KEYS[3], ARGV[3])
	return 0
end
local excess = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[1])
if excess <= 0 then return 0 end
local page = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', math.min(excess, tonumber(ARGV[2])))
local ids = {}
for i, e in ipairs(page) do ids[i] = e[1] end
redis.call('XDEL', KEYS[2], unpack(ids))
redis.call('XDEL', KEYS[1], unpack(ids))
return #ids
`)

// pruneAgeScript: KEYS infra events stream, events stream, eventinfras;
// ARGV cutoff (see ageKey), batch, first entry id, infra id. Examines at
// most batch entries from the first id on and removes from both streams
// those whose time is before the cutoff; deletes the infra stream once
// empty, and its id from eventinfras. Returns how many it removed and the
// id to go on from ("" at the end). The time is read from the start of the
// JSON record, where eventRec puts it, and brought to the fixed width of
// ageKey; a record without one (none are written) is kept.
var pruneAgeScript = goredis.NewScript(luaNextID + `
local batch = tonumber(ARGV[2])
local page = redis.call('XRANGE', KEYS[1], ARGV[3], '+', 'COUNT', batch)
local ids = {}
for _, e in ipairs(page) do
	local f = e[2]
	for i = 1, #f, 2 do
		if f[i] == 'e' then
			local base, frac = string.match(f[i + 1], '^{"time":"(%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d)%.?(%d*)Z"')
			if base and #frac <= 9 and base .. '.' .. frac .. string.rep('0', 9 - #frac) < ARGV[1] then
				ids[#ids + 1] = e[1]
			end
		end
	end
end
if #ids > 0 then
	redis.call('XDEL', KEYS[2], unpack(ids))
	redis.call('XDEL', KEYS[1], unpack(ids))
end
if redis.call('XLEN', KEYS[1]) == 0 then
	redis.call('DEL', KEYS[1])
	redis.call('SREM', KEYS[3], ARGV[4])
end
local next = ''
if #page == batch then next = nextID(page[#page][1]) end
return {#ids, next}
`)

// ageKey is the form of a time the age script compares: UTC, fixed width
// (years 0000-9999), so that text order is time order.
func ageKey(t time.Time) string {
	switch {
	case t.Year() < 0:
		t = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	case t.Year() > 9999:
		t = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000000")
}

// PruneEvents implements store.Store. The infrastructures with events are
// the members of eventinfras (read with SSCAN); each one's stream is cut,
// first to keepPerInfra entries, then by age, by scripts of at most
// pruneBatch entries that remove each entry from both streams together.
// The age pass reads every remaining entry of the stream (on the server,
// the start of each record only), so its cost follows the number of
// events kept.
func (s *Store) PruneEvents(ctx context.Context, olderThan time.Time, keepPerInfra int) (int, error) {
	if keepPerInfra < 0 {
		return 0, fmt.Errorf("redis: prune events: keepPerInfra %d < 0", keepPerInfra)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("redis: prune events: %w", err)
	}
	if olderThan.IsZero() && keepPerInfra == 0 {
		return 0, nil
	}
	var ids []string
	it := s.c.SScan(ctx, s.kEventInfras(), 0, "", 1000).Iterator()
	for it.Next(ctx) {
		ids = append(ids, it.Val())
	}
	if err := it.Err(); err != nil {
		return 0, fmt.Errorf("redis: prune events: %w", err)
	}
	// SSCAN may return a member twice.
	slices.Sort(ids)
	ids = slices.Compact(ids)
	removed := 0
	for _, id := range ids {
		keys := []string{s.kInfraEvents(id), s.kEvents(), s.kEventInfras()}
		for keepPerInfra > 0 {
			n, err := pruneCountScript.Run(ctx, s.c, keys, keepPerInfra, pruneBatch, id).Int()
			if err != nil {
				return removed, fmt.Errorf("redis: prune events %s: %w", id, err)
			}
			removed += n
			if n < pruneBatch {
				break
			}
		}
		if olderThan.IsZero() {
			continue
		}
		for start := "-"; start != ""; {
			res, err := pruneAgeScript.Run(ctx, s.c, keys, ageKey(olderThan), pruneBatch, start, id).Slice()
			if err != nil {
				return removed, fmt.Errorf("redis: prune events %s: %w", id, err)
			}
			if len(res) != 2 {
				return removed, fmt.Errorf("redis: prune events %s: unexpected reply %v", id, res)
			}
			n, ok1 := res[0].(int64)
			next, ok2 := res[1].(string)
			if !ok1 || !ok2 {
				return removed, fmt.Errorf("redis: prune events %s: unexpected reply %v", id, res)
			}
			removed += int(n)
			start = next
		}
	}
	return removed, nil
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

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q: %w", s, err)
	}
	return t, nil
}

func raw(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}
